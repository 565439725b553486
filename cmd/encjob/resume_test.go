package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestResumeAfterSIGKILL really kills an in-place re-encryption with
// SIGKILL at random points, several times, then lets it finish. Every
// item must end up re-encrypted under the new key with its content intact,
// no item may be done twice, and no temporary file may remain.
func TestResumeAfterSIGKILL(t *testing.T) { resumeAfterSIGKILL(t, false) }

// resumeAfterSIGKILL is TestResumeAfterSIGKILL, for a rewrap too
// (encjob reencrypt --rewrap), which must also keep every body byte; with
// a suite, the tree is encrypted with it (an unsigned one makes every
// rewrap copy its body in storage, which the metadata log must show).
func resumeAfterSIGKILL(t *testing.T, rewrap bool, suite ...string) {
	dir := t.TempDir()
	for _, k := range []string{"old.key", "new.key"} {
		b := make([]byte, 32)
		rand.Read(b)
		os.WriteFile(filepath.Join(dir, k), b, 0o600)
	}
	const n = 300
	files := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("d%d/f%03d.bin", i%7, i)
		b := make([]byte, 20000+i*37)
		rand.Read(b)
		p := filepath.Join(dir, "plain", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
		files[name] = b
	}
	old := []string{"provider=raw-aes", "key-file=old.key", "namespace=encjob", "name=old"}
	nw := []string{"provider=raw-aes", "key-file=new.key", "namespace=encjob", "name=new"}
	os.Mkdir(filepath.Join(dir, "tree"), 0o755)
	os.Mkdir(filepath.Join(dir, "check"), 0o755)
	enc := args("encrypt", "-r", "-i", "plain", "-o", "tree", "-w", old, "-c", "tenant=acme", "-S")
	if len(suite) > 0 {
		enc = append(enc, "--algorithm", suite[0])
	}
	r := encjob(t, dir, nil, enc...)
	wantCode(t, r, 0)

	re := args("reencrypt", "--auto-approve", "-r", "-i", "tree", "-o", "tree", "--source-wrapping-keys", old, "-w", nw,
		"--metadata-output", "meta.jsonl", "--no-progress", "-q")
	var bodies map[string][]byte
	if rewrap {
		re = append(re, "--rewrap", "--rewrap-allow-header-nonce-reuse")
		if len(suite) > 1 {
			re = append(re, suite[1:]...) // more reencrypt flags
		}
		bodies = treeBodies(t, filepath.Join(dir, "tree"))
	}
	// A run that finishes before its kill while none was killed yet
	// leaves nothing to kill: the tree is put back as it was and the
	// delays are halved (a fast machine can re-encrypt 300 small files
	// before the longest delay).
	if out, err := exec.Command("cp", "-a", filepath.Join(dir, "tree"), filepath.Join(dir, "tree.orig")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	maxDelay := 270 * time.Millisecond
	kills := 0
	for iter := 0; iter < 6; iter++ {
		cmd := exec.Command(binPath, re...)
		cmd.Dir, cmd.Env = dir, cleanEnv()
		var se bytes.Buffer
		cmd.Stderr = &se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := maxDelay/14 + time.Duration(mrand.Int64N(int64(maxDelay*13/14)))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			t.Logf("iteration %d: finished before the kill at %v", iter, delay)
			if kills == 0 && maxDelay > 4*time.Millisecond {
				os.RemoveAll(filepath.Join(dir, "tree"))
				os.Remove(filepath.Join(dir, "meta.jsonl"))
				if out, err := exec.Command("cp", "-a", filepath.Join(dir, "tree.orig"), filepath.Join(dir, "tree")).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v: %s", err, out)
				}
				maxDelay /= 2
				iter = -1 // start over
			}
		case <-time.After(delay):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
	r = encjob(t, dir, nil, re...)
	wantCode(t, r, 0)
	r = encjob(t, dir, nil, re...) // a completed job changes nothing
	wantCode(t, r, 0)

	// Count, across every run, how often each item was re-encrypted.
	doneCount := map[string]int{}
	b, _ := os.ReadFile(filepath.Join(dir, "meta.jsonl"))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"status":"done"`) {
			i := strings.Index(line, `"input":"`)
			in := line[i+9:]
			doneCount[in[:strings.IndexByte(in, '"')]]++
		}
	}
	for in, c := range doneCount {
		if c > 1 {
			t.Errorf("%s re-encrypted %d times", in, c)
		}
	}
	if rewrap {
		if strings.Contains(string(b), `"action":"reencrypt"`) || !strings.Contains(string(b), `"action":"rewrap"`) {
			t.Error("the metadata log does not record every item as rewrap")
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(suite) > 0 && strings.Contains(line, `"status":"done"`) && !strings.Contains(line, `"bytes_copied_in_storage":`) {
				t.Fatalf("a rewrap of an unsigned message streamed its body: %s", line)
			}
			if len(suite) > 1 && strings.Contains(line, `"status":"done"`) && !strings.Contains(line, `"header_rewritten_in_place":true`) {
				t.Fatalf("--rewrap-header-in-place, but a header was not rewritten in place: %s", line)
			}
		}
		after := treeBodies(t, filepath.Join(dir, "tree"))
		for name, body := range bodies {
			if !bytes.Equal(after[name], body) {
				t.Fatalf("%s: body bytes changed by the rewrap", name)
			}
		}
	}
	r = encjob(t, dir, nil, args("decrypt", "-r", "-i", "tree", "-o", "check", "-w", nw, "-c", "tenant", "-S", "--strip-suffix")...)
	wantCode(t, r, 0)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, "check", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: lost or corrupted after %d kills: %v", name, kills, err)
		}
	}
	filepath.Walk(filepath.Join(dir, "tree"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".encjob-tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	t.Logf("%d items, %d SIGKILLs, %d re-encryptions recorded; all items intact under the new key", n, kills, len(doneCount))
	if kills == 0 {
		t.Fatal("no run was killed; the test proved nothing")
	}
}
