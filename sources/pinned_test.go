package sources_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// TestLocalFingerprintSeesRestores: every way a restore tool or a user
// puts other content under an old timestamp changes the fingerprint,
// because the ctime (which nothing can set back) is part of it.
func TestLocalFingerprintSeesRestores(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	write(t, p, "version 1")
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	print := func() sources.Fingerprint {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return sources.LocalFingerprint(fi)
	}
	p1 := print()
	if f := strings.Split(string(p1), ":"); len(f) != 6 || f[0] != "local" {
		t.Fatalf("fingerprint %q is not local:dev:inode:mtime-ns:ctime-ns:size", p1)
	}
	if p1 != print() {
		t.Fatal("fingerprint not stable")
	}
	time.Sleep(10 * time.Millisecond) // a ctime tick on coarse-clock file systems
	// Same size, same inode, same mtime: only the ctime tells.
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("version 2")
	f.Close()
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	p2 := print()
	if p2 == p1 {
		t.Fatalf("rewritten in place with the old mtime, same fingerprint %s", p1)
	}
	// A metadata-only change (chmod) is a change too: safe, never stale.
	time.Sleep(10 * time.Millisecond)
	os.Chmod(p, 0o600)
	if print() == p2 {
		t.Fatal("chmod not seen")
	}
}

// TestLocalPinnedOpen: the version read is proved to be the planned one,
// whatever happens to the file during the read.
func TestLocalPinnedOpen(t *testing.T) {
	ctx := context.Background()
	for name, change := range map[string]func(t *testing.T, p string){
		"append": func(t *testing.T, p string) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("more")
			f.Close()
		},
		"rewrite same size, mtime restored": func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			f, _ := os.OpenFile(p, os.O_WRONLY, 0)
			f.WriteString("XXXX")
			f.Close()
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		},
		"truncate": func(t *testing.T, p string) { os.Truncate(p, 3) },
		"renamed over": func(t *testing.T, p string) {
			write(t, p+".new", "other content")
			if err := os.Rename(p+".new", p); err != nil {
				t.Fatal(err)
			}
		},
		"removed": func(t *testing.T, p string) { os.Remove(p) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			write(t, p, "the planned content")
			s := newLocal(t, dir, sources.SourceOptions{})
			it, err := s.Stat(ctx, "f")
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.OpenPinned(ctx, "f", it.Print)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			io.ReadAll(io.LimitReader(r, 4))
			time.Sleep(10 * time.Millisecond)
			change(t, p)
			io.ReadAll(r)
			err = r.Recheck()
			var ce *sources.SourceChangedError
			if !errors.As(err, &ce) || !errors.Is(err, sources.ErrSourceChanged) || !sources.IsRetryable(err) {
				t.Fatalf("Recheck after %s: %v, want a retryable *SourceChangedError", name, err)
			}
			if !strings.Contains(err.Error(), "f: source changed while it was read") {
				t.Errorf("message: %v", err)
			}
			// Opening with the old print now fails before reading (unless
			// the file is gone, which is not-found).
			_, err = s.OpenPinned(ctx, "f", it.Print)
			if name == "removed" {
				if !errors.Is(err, sources.ErrNotFound) {
					t.Fatalf("open removed: %v", err)
				}
				return
			}
			if !errors.Is(err, sources.ErrSourceChanged) || !strings.Contains(err.Error(), "before it was read") {
				t.Fatalf("OpenPinned with the planned print after %s: %v", name, err)
			}
		})
	}
	// A pinned read stops at the planned size without a read to find the
	// end (pinnedFile.Read): bytes appended meanwhile are not read, and
	// Recheck refuses the version.
	t.Run("grown before the read", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		write(t, p, "the planned content")
		s := newLocal(t, dir, sources.SourceOptions{})
		it, _ := s.Stat(ctx, "f")
		r, err := s.OpenPinned(ctx, "f", it.Print)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(" and more")
		f.Close()
		if b, _ := io.ReadAll(r); string(b) != "the planned content" {
			t.Fatalf("read %q, want the planned bytes only", b)
		}
		if err := r.Recheck(); !errors.Is(err, sources.ErrSourceChanged) || !strings.Contains(err.Error(), "while it was read") {
			t.Fatalf("Recheck after an append: %v, want source changed", err)
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "f"), "the planned content")
		s := newLocal(t, dir, sources.SourceOptions{})
		it, _ := s.Stat(ctx, "f")
		r, err := s.OpenPinned(ctx, "f", it.Print)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if b, _ := io.ReadAll(r); string(b) != "the planned content" {
			t.Fatalf("read %q", b)
		}
		if err := r.Recheck(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestS3PinnedOpen: a GET conditional on the planned ETag (and version):
// a replaced object is refused before a byte is read.
func TestS3PinnedOpen(t *testing.T) {
	srv := s3test.Start(t)
	b := newBucket(t, srv)
	ctx := context.Background()
	put(t, srv.Client, b, "dir/o", []byte("version 1"))
	s, err := sources.NewS3Source(s3Loc(t, "s3://"+b+"/dir/"), sources.S3Options{Client: srv.Client})
	if err != nil {
		t.Fatal(err)
	}
	var listed sources.Item
	s.List(ctx, func(it sources.Item) error { listed = it; return nil })
	r, err := s.OpenPinned(ctx, "o", listed.Print)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "version 1" || r.Recheck() != nil {
		t.Fatalf("read %q, recheck %v", got, r.Recheck())
	}
	put(t, srv.Client, b, "dir/o", []byte("version 2"))
	_, err = s.OpenPinned(ctx, "o", listed.Print)
	if !errors.Is(err, sources.ErrSourceChanged) || !sources.IsRetryable(err) {
		t.Fatalf("open of a replaced object: %v, want a retryable ErrSourceChanged", err)
	}
	if _, err := s.OpenPinned(ctx, "gone", listed.Print); !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("open of a missing object: %v", err)
	}
}
