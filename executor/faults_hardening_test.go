package executor_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
)

// TestFaultSourceDeletedAfterPlan: a source removed between planning and
// its turn fails that item with an error naming it and the cause, writes
// no output, and the other items complete; the metadata log says which.
func TestFaultSourceDeletedAfterPlan(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	sum, recs, files := encryptChangedAfterPlan(t, dir, map[string]int{"gone.bin": 10000, "stays.bin": 10, "sub/also.bin": 5000}, func(in string) {
		if err := os.Remove(filepath.Join(in, "gone.bin")); err != nil {
			t.Fatal(err)
		}
	})
	if len(sum.Failed) != 1 || sum.Failed[0].Item.Key != "gone.bin" {
		t.Fatalf("want only gone.bin to fail: %+v", sum.Failed)
	}
	msg := sum.Failed[0].Err.Error()
	if !strings.Contains(msg, "gone.bin") || !strings.Contains(msg, "not found") {
		t.Errorf("error does not name the item and the cause: %s", msg)
	}
	if done, failed := checkOutputs(t, dir, recs); done != 2 || failed != 1 {
		t.Fatalf("metadata log: %d done %d failed, want 2 and 1", done, failed)
	}
	for _, r := range recs {
		if r.Status == "failed" && !strings.Contains(r.Input, "gone.bin") {
			t.Errorf("log blames %s", r.Input)
		}
	}
	for _, name := range []string{"stays.bin", "sub/also.bin"} {
		if got, _ := os.ReadFile(filepath.Join(in, name)); !bytes.Equal(got, files[name]) {
			t.Errorf("%s changed", name)
		}
	}
}

// TestFaultSourceTruncatedAfterPlan: a source that shrinks after planning
// (here to nothing) never produces a message of the planned length from
// other content: the retry plans it again and encrypts the empty file.
func TestFaultSourceTruncatedAfterPlan(t *testing.T) {
	dir := t.TempDir()
	sum, recs, _ := encryptChangedAfterPlan(t, dir, map[string]int{"shrinks.bin": 100000, "stays.bin": 10}, func(in string) {
		if err := os.Truncate(filepath.Join(in, "shrinks.bin"), 0); err != nil {
			t.Fatal(err)
		}
	})
	if !sum.OK() {
		t.Fatalf("failures: %+v", sum.Failed)
	}
	for _, r := range recs {
		if strings.HasSuffix(r.Input, "shrinks.bin") && (r.Attempts != 2 || r.BytesIn != 0 || r.Fingerprint == "") {
			t.Fatalf("shrinks.bin: %d attempts, %d bytes read, print %q; want the retry to read the empty file", r.Attempts, r.BytesIn, r.Fingerprint)
		}
	}
	if done, failed := checkOutputs(t, dir, recs); done != 2 || failed != 0 {
		t.Fatalf("metadata log: %d done %d failed", done, failed)
	}
}

// TestFaultOutputNotWritable: an output directory that cannot be created
// (a regular file stands where it should be; this works as root too, where
// permission bits would not stop a write) fails the items below it only,
// leaves the file as it was, and no temporary file behind.
func TestFaultOutputNotWritable(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in"), filepath.Join(dir, "enc")
	writeTree(t, in, map[string]int{"top.bin": 100, "blocked/a.bin": 2000, "blocked/deep/b.bin": 3000})
	if err := os.MkdirAll(enc, 0o755); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(enc, "blocked")
	if err := os.WriteFile(blocker, []byte("a file, not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "k")}
	r, recs := applyWith(t, jobFor(t, env), planner.Options{}, executor.Options{})
	if len(r.sum.Failed) != 2 || r.sum.Done[planner.Encrypt] != 1 {
		t.Fatalf("want 2 failures and 1 done: %d done, %+v", r.sum.Done[planner.Encrypt], r.sum.Failed)
	}
	for _, f := range r.sum.Failed {
		if msg := f.Err.Error(); !strings.Contains(msg, "blocked") || !strings.Contains(msg, "not a directory") {
			t.Errorf("error does not name the output and the cause: %s", msg)
		}
	}
	if b, _ := os.ReadFile(blocker); string(b) != "a file, not a directory" {
		t.Fatal("the file in the way was changed")
	}
	if done, failed := checkOutputs(t, dir, recs); done != 1 || failed != 2 {
		t.Fatalf("metadata log: %d done %d failed", done, failed)
	}
	if os.Geteuid() != 0 {
		// Not root: a directory without write permission is refused too.
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
		env["OUT"] = ro
		r, recs := applyWith(t, jobFor(t, env), planner.Options{}, executor.Options{})
		if len(r.sum.Failed) != 3 {
			t.Fatalf("read-only output directory: %d failures", len(r.sum.Failed))
		}
		checkOutputs(t, dir, recs)
	}
}
