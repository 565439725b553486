package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/encjob/encjob/planner"
)

// inPlaceTree encrypts in/ into tree/ and returns the args of an in-place
// re-encryption of tree/.
func inPlaceTree(t *testing.T) (dir string, re []string) {
	t.Helper()
	dir, _ = setup(t)
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc", "-r", rawKey, "-S")...), 0)
	re = args("reencrypt", "-i", "enc", "-o", "enc", "-r", "--source-wrapping-keys", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=test",
		rawKey, "-c", "rotated=yes", "--no-progress")
	return dir, re
}

// TestE2EInPlaceNeedsApproval: replacing sources in place without a
// terminal needs --auto-approve (exit 2, nothing changed, before any
// item); with it the run proceeds.
func TestE2EInPlaceNeedsApproval(t *testing.T) {
	dir, re := inPlaceTree(t)
	before := snapshot(t, filepath.Join(dir, "enc"))
	r := encjob(t, dir, nil, re...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "--auto-approve") || !strings.Contains(r.stderr, "no terminal to confirm on") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	if after := snapshot(t, filepath.Join(dir, "enc")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("the tree changed without approval")
	}
	r = encjob(t, dir, nil, append(re, "--auto-approve")...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "3 re-encrypted") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	// A spec with inPlace: true, the same.
	writeFile(t, filepath.Join(dir, "inplace.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: rotate}
spec:
  operation: reencrypt
  keyGroups:
    k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  decrypt: {keyGroup: k}
  encrypt: {keyGroup: k}
  reencrypt: {add: {again: "yes"}}
  sources: [{path: enc}]
  output: {inPlace: true}
`), 0o644)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "inplace.yaml", "--no-progress"), 2)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "inplace.yaml", "--no-progress", "--auto-approve"), 0)
	// Nothing to change: no approval needed.
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "inplace.yaml", "--no-progress"), 0)
}

// TestConfirmOnTerminal: on a terminal the plan is shown and only "yes"
// proceeds (in-process, the terminal question injected).
func TestConfirmOnTerminal(t *testing.T) {
	p := &planner.Plan{Name: "rotate"}
	for i := 0; i < maxPlanLines+5; i++ {
		p.Items = append(p.Items, planner.Item{Action: planner.Reencrypt, Input: fmt.Sprintf("tree/f%02d", i), Output: fmt.Sprintf("tree/f%02d", i)})
	}
	p.Items = append(p.Items, planner.Item{Action: planner.Unchanged, Input: "tree/same", Output: "tree/same"})
	for _, tc := range []struct {
		answer bool
		code   int
	}{{true, 0}, {false, 1}} {
		var se bytes.Buffer
		asked := ""
		e := &env{stdout: &bytes.Buffer{}, stderr: &se, getenv: func(string) string { return "" },
			confirm: func(q string) (bool, error) { asked = q; return tc.answer, nil }}
		err := confirmApply(e, &console{w: &se}, p, false, "replace the sources in place")
		if codeOf(err) != tc.code {
			t.Fatalf("answer %v: %v", tc.answer, err)
		}
		if !strings.Contains(asked, "Only 'yes' will be accepted") || !strings.Contains(asked, "25 items") {
			t.Errorf("question: %q", asked)
		}
		out := se.String()
		if !strings.Contains(out, "~ tree/f00 -> tree/f00") || strings.Contains(out, "tree/same") || !strings.Contains(out, "… and 5 more") {
			t.Errorf("listing:\n%s", out)
		}
	}
}

// TestE2EPlanListsChanges: plain plan lists the items that change, not
// the unchanged ones, capped with "… and N more"; -v lists all; no colour
// without a terminal.
func TestE2EPlanListsChanges(t *testing.T) {
	dir, _ := setup(t)
	for i := 0; i < maxPlanLines+3; i++ {
		writeFile(t, filepath.Join(dir, "in", fmt.Sprintf("many/%02d.txt", i)), []byte("x"), 0o644)
	}
	writeFile(t, filepath.Join(dir, "job.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: many}
spec:
  operation: encrypt
  keyGroups:
    k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  encrypt: {keyGroup: k}
  sources: [{path: in}]
  output: {path: enc}
`), 0o644)
	r := encjob(t, dir, nil, "plan", "-f", "job.yaml")
	wantCode(t, r, 0)
	if n := strings.Count(r.stdout, "\n+ "); n != maxPlanLines-1 && n != maxPlanLines {
		t.Errorf("plan lists %d items, want %d:\n%s", n, maxPlanLines, r.stdout)
	}
	if !strings.Contains(r.stdout, "… and 6 more") || strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("plan:\n%s", r.stdout)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "job.yaml", "--no-progress"), 0)
	writeFile(t, filepath.Join(dir, "in", "new.txt"), []byte("new"), 0o644)
	r = encjob(t, dir, nil, "plan", "-f", "job.yaml")
	if !strings.Contains(r.stdout, "/in/new.txt -> ") || strings.Contains(r.stdout, "\n= ") || strings.HasPrefix(r.stdout, "= ") {
		t.Errorf("plan after apply lists unchanged items or misses the new one:\n%s", r.stdout)
	}
	r = encjob(t, dir, nil, "plan", "-f", "job.yaml", "-v")
	if !strings.Contains(r.stdout, "/in/a.txt -> ") || !strings.Contains(r.stdout, "\n= ") {
		t.Errorf("plan -v lacks unchanged items:\n%s", r.stdout)
	}
}

func TestPaletteHonoursNoColor(t *testing.T) {
	on := palette{on: true}
	if got := on.symbol("+"); got != "\x1b[32m+\x1b[0m" {
		t.Errorf("coloured +: %q", got)
	}
	e := &env{getenv: func(k string) string {
		if k == "NO_COLOR" {
			return "1"
		}
		return ""
	}}
	if p := newPalette(e, os.Stdout); p.on {
		t.Error("NO_COLOR set, palette on")
	}
	if p := newPalette(&env{getenv: func(string) string { return "" }}, nil); p.on {
		t.Error("no terminal, palette on")
	}
}

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		done, total      int
		read, totalBytes int64
		el               time.Duration
		want             string
	}{
		// One big item still running: bytes move, items do not.
		{0, 2, 50 << 20, 100 << 20, 10 * time.Second, "0/2 items, 50.0 MiB of 100.0 MiB (50%), 5.0 MiB/s, ETA 10s"},
		{1, 2, 75 << 20, 100 << 20, 1500 * time.Millisecond, "1/2 items, 75.0 MiB of 100.0 MiB (75%), 50.0 MiB/s, ETA 1s"},
		// Retries re-read bytes: capped at the total.
		{2, 2, 120 << 20, 100 << 20, 10 * time.Second, "2/2 items, 100.0 MiB of 100.0 MiB (100%), 10.0 MiB/s, ETA 0s"},
		// Sizes unknown: by items.
		{1, 4, 0, 0, 3 * time.Second, "1/4 items, 0 B of 0 B (25%), 0 B/s, ETA 9s"},
	} {
		if got := progressLine(tc.done, tc.total, 0, tc.read, tc.totalBytes, tc.el); got != tc.want {
			t.Errorf("progressLine = %q, want %q", got, tc.want)
		}
	}
	if got := fmtETA(61*time.Second + 400*time.Millisecond); got != "1m1s" {
		t.Errorf("fmtETA = %q", got)
	}
}

// TestE2EApplyJSON: apply --json prints one machine-readable summary.
func TestE2EApplyJSON(t *testing.T) {
	dir, _ := setup(t)
	writeFile(t, filepath.Join(dir, "job.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: j}
spec:
  operation: encrypt
  keyGroups:
    k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  encrypt: {keyGroup: k}
  sources: [{path: in}]
  output: {path: enc}
`), 0o644)
	r := encjob(t, dir, nil, "apply", "-f", "job.yaml", "--json")
	wantCode(t, r, 0)
	var js jsonSummary
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if js.Name != "j" || js.ExitCode != 0 || js.Done["encrypt"] != 3 || js.Items != 3 || len(js.Failed) != 0 || js.BytesIn != 75000 {
		t.Fatalf("summary %+v", js)
	}
	r = encjob(t, dir, nil, "apply", "-f", "job.yaml", "--json")
	wantCode(t, r, 0)
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || js.Done["unchanged"] != 3 {
		t.Fatalf("second run: %v %+v", err, js)
	}
}

// TestE2EInterruptNotStarted: after SIGINT, items that never began are
// recorded "not started", not failed.
func TestE2EInterruptNotStarted(t *testing.T) {
	dir, _ := setup(t)
	big := make([]byte, 4<<20)
	for i := 0; i < 40; i++ {
		writeFile(t, filepath.Join(dir, "in", fmt.Sprintf("big/%02d.bin", i)), big, 0o644)
	}
	cmd := exec.Command(binPath, args("encrypt", "-i", "in", "-o", "enc", "-r", rawKey, "--metadata-output", "m.jsonl", "--concurrency", "1")...)
	cmd.Dir, cmd.Env = dir, cleanEnv()
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(dir, "m.jsonl")); bytes.Count(b, []byte("\n")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no progress")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 130 {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), se.String())
	}
	status := map[string]int{}
	for _, rec := range readMetadata(t, filepath.Join(dir, "m.jsonl")) {
		status[rec["status"].(string)]++
	}
	if status["not started"] == 0 || status["failed"] > 1 {
		t.Fatalf("statuses %v: want not-started items and at most the one in flight failed\n%s", status, se.String())
	}
	if !strings.Contains(se.String(), "not started") {
		t.Errorf("summary lacks not started: %s", se.String())
	}
}
