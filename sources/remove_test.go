package sources_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// testRemover: Remove deletes a committed output, a missing key is no
// error, and keys are confined as for Create.
func testRemover(t *testing.T, d sources.Destination) {
	t.Helper()
	ctx := context.Background()
	r, ok := d.(sources.Remover)
	if !ok {
		t.Fatalf("%T is not a Remover", d)
	}
	for _, key := range []string{"top", "a/b/deep"} {
		if err := commitFile(t, d, key, "data", sources.CreateOptions{Overwrite: sources.OverwriteAlways}); err != nil {
			t.Fatal(err)
		}
		if err := r.Remove(ctx, key); err != nil {
			t.Fatalf("Remove(%s): %v", key, err)
		}
		if _, err := d.Stat(ctx, key); !errors.Is(err, sources.ErrNotFound) {
			t.Fatalf("after Remove(%s), Stat: %v", key, err)
		}
		if err := r.Remove(ctx, key); err != nil {
			t.Fatalf("Remove(%s) again: %v", key, err)
		}
	}
	if err := r.Remove(ctx, "no/such/dir/key"); err != nil {
		t.Fatalf("Remove of a key under a missing directory: %v", err)
	}
	for _, key := range []string{"../x", "/abs", "a/../../x", sources.StateDir + "/lock", sources.StateDir} {
		if err := r.Remove(ctx, key); !errors.Is(err, sources.ErrEscapes) {
			t.Errorf("Remove(%q): %v, want ErrEscapes", key, err)
		}
	}
}

func TestLocalRemove(t *testing.T) {
	root := t.TempDir()
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{Sync: sources.SyncNone})
	testRemover(t, d)
	// A symlinked directory is not followed: the file behind it stays.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "f"), []byte("keep"), 0o644)
	os.Symlink(outside, filepath.Join(root, "link"))
	if err := d.Remove(context.Background(), "link/f"); !errors.Is(err, sources.ErrEscapes) {
		t.Errorf("Remove through a symlink: %v, want ErrEscapes", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "f")); err != nil {
		t.Fatalf("the file behind the symlink: %v", err)
	}
	// A directory is not removed.
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	if err := d.Remove(context.Background(), "dir"); err == nil {
		t.Error("Remove of a directory succeeded")
	}
}

func TestS3Remove(t *testing.T) {
	srv := s3test.Start(t)
	bucket := newBucket(t, srv)
	for _, prefix := range []string{"", "runs/x/"} {
		d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/"+prefix), sources.S3Options{Client: srv.Client})
		if err != nil {
			t.Fatal(err)
		}
		testRemover(t, d)
	}
}
