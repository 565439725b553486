package sources

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListStatErrorNamedOnce: an entry that cannot be stat'ed (a dangling
// symlink the source follows) is an errored item whose error names the
// path once, not "stat x: stat x: ...".
func TestListStatErrorNamedOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	loc, err := Parse(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(loc, SourceOptions{FollowSymlinks: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []Item
	if err := src.List(context.Background(), func(it Item) error { got = append(got, it); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Err == nil {
		t.Fatalf("items %+v, want one errored item", got)
	}
	msg := got[0].Err.Error()
	if p := filepath.Join(dir, "dangling"); strings.Count(msg, p) != 1 {
		t.Fatalf("error %q names %s %d times, want once", msg, p, strings.Count(msg, p))
	}
}
