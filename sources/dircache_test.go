package sources_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/sources"
)

// The destination keeps output directories open between files; a
// directory renamed away or replaced between two files must not receive
// the second one: every file lands at its path as a fresh walk would
// place it.
func TestDirCacheFollowsReplacedDirs(t *testing.T) {
	root := t.TempDir()
	d := sources.NewRunDestination(root, sources.LocalDestOptions{Sync: sources.SyncGroup})
	defer sources.EndRun(d)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(commitFile(t, d, "a/x/1", "one", sources.CreateOptions{}))
	must(os.Rename(filepath.Join(root, "a"), filepath.Join(root, "moved")))
	must(commitFile(t, d, "a/x/2", "two", sources.CreateOptions{}))
	if _, err := os.Stat(filepath.Join(root, "a", "x", "2")); err != nil {
		t.Fatalf("second file not at its path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "moved", "x", "2")); err == nil {
		t.Fatal("second file went into the renamed-away directory")
	}
	// Replace only the inner directory with a new one.
	must(os.Rename(filepath.Join(root, "a", "x"), filepath.Join(root, "x-old")))
	must(os.Mkdir(filepath.Join(root, "a", "x"), 0o755))
	must(commitFile(t, d, "a/x/3", "three", sources.CreateOptions{}))
	if b, err := os.ReadFile(filepath.Join(root, "a", "x", "3")); err != nil || string(b) != "three" {
		t.Fatalf("third file: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "x-old")); len(ents) != 1 {
		t.Fatalf("the replaced directory holds %d files, want only its own", len(ents))
	}
	// A parent swapped for a symlink: refused, nothing placed outside.
	outside := t.TempDir()
	must(os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a2")))
	must(os.Symlink(outside, filepath.Join(root, "a")))
	if err := commitFile(t, d, "a/x/4", "four", sources.CreateOptions{}); err == nil {
		t.Fatal("wrote through a symlinked parent")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("%d entries placed outside the root", len(ents))
	}
}

// Writing into many directories keeps a bounded number of descriptors.
func TestDirCacheBounded(t *testing.T) {
	root := t.TempDir()
	d := sources.NewRunDestination(root, sources.LocalDestOptions{Sync: sources.SyncNone})
	defer sources.EndRun(d)
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	before := fds()
	for i := range 1000 {
		if err := commitFile(t, d, fmt.Sprintf("d%04d/f", i), "x", sources.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := fds() - before; n > 300 {
		t.Fatalf("%d descriptors more after writing into 1000 directories", n)
	}
}
