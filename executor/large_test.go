package executor_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// TestLargeSignedGatesOutput: a file large enough to take the pipelined
// path (its frames are opened on one core while other goroutines hash and
// write) round-trips, and when its signature, a frame or its end is
// damaged the item fails with nothing under the output name and no
// temporary left: the plaintext written before the footer was checked
// never becomes visible.
func TestLargeSignedGatesOutput(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in"), filepath.Join(dir, "enc")
	want := writeTree(t, in, map[string]int{"big": 17<<20 + 12345})["big"]
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "k")}
	if r := run(t, jobFor(t, env)); !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	msg, err := os.ReadFile(filepath.Join(enc, "big.encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	decrypt := func(name string, m []byte) runOut {
		src := filepath.Join(dir, "src-"+name)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "big.encrypted"), m, 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"OP": "decrypt", "IN": src, "OUT": filepath.Join(dir, "dec-"+name), "KEY": filepath.Join(dir, "k")}
		return run(t, jobFor(t, env))
	}
	r := decrypt("good", msg)
	if got, err := os.ReadFile(filepath.Join(dir, "dec-good", "big")); !r.sum.OK() || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("round trip: %v %v", r.sum.Failed, err)
	}
	flip := func(at int) []byte { b := bytes.Clone(msg); b[at] ^= 0x40; return b }
	for name, bad := range map[string][]byte{
		"signature": flip(len(msg) - 10),
		"frame":     flip(len(msg) / 2),
		"truncated": msg[:len(msg)-1],
		"trailing":  append(bytes.Clone(msg), 0),
	} {
		r := decrypt(name, bad)
		if len(r.sum.Failed) != 1 || r.sum.Done[planner.Decrypt] != 0 {
			t.Fatalf("%s: want the item failed: %+v %v", name, r.sum.Done, r.sum.Failed)
		}
		entries, _ := os.ReadDir(filepath.Join(dir, "dec-"+name))
		for _, e := range entries {
			if e.Name() != sources.StateDir {
				t.Fatalf("%s: %s left in the output directory", name, e.Name())
			}
		}
	}
}
