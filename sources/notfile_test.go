package sources_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/encjob/encjob/sources"
)

// notFiles makes, in dir, one entry of every kind that is not a regular
// file and returns name -> the mode type it must keep. A character device
// (what /dev/null is) needs root to create; without root the kinds that
// do not are still checked.
func notFiles(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	kinds := map[string]os.FileMode{}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	kinds["fifo"] = os.ModeNamedPipe
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	t.Cleanup(func() { l.Close() })
	kinds["sock"] = os.ModeSocket
	if err := os.Symlink("elsewhere", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	kinds["link"] = os.ModeSymlink
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
		kinds["null"] = os.ModeDevice | os.ModeCharDevice
	} else {
		t.Logf("no character device (mknod: %v): checking fifo, socket and symlink", err)
	}
	return kinds
}

// TestCreateNeverReplacesANonRegularFile: an output name that holds a
// device (/dev/null), a fifo, a socket or a symlink is refused with
// ConflictNotFile under every overwrite mode, at Create or, if it appeared
// after Create, at Commit; the entry is left as it was. Outputs are
// committed by rename, which would replace the entry itself: that is how
// `encjob encrypt -o /dev/null` once replaced /dev/null by a regular file.
func TestCreateNeverReplacesANonRegularFile(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	kinds := notFiles(t, root)
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	check := func(name string, err error) {
		t.Helper()
		var ce *sources.ConflictError
		if !errors.As(err, &ce) || ce.Reason != sources.ConflictNotFile {
			t.Errorf("%s: %v, want a ConflictNotFile conflict", name, err)
		}
		fi, lerr := os.Lstat(filepath.Join(root, name))
		if lerr != nil || fi.Mode().Type() != kinds[name] {
			t.Errorf("%s: now %v (%v), want it unchanged (%v)", name, fi.Mode(), lerr, kinds[name])
		}
	}
	for name := range kinds {
		for _, ow := range []sources.Overwrite{sources.OverwriteAlways, sources.OverwriteNever} {
			w, err := d.Create(ctx, name, sources.CreateOptions{Overwrite: ow})
			if err == nil {
				w.Write([]byte("data"))
				err = w.Commit(ctx)
			}
			check(name, err)
		}
	}
	// Appearing between Create and Commit.
	w, err := d.Create(ctx, "late", sources.CreateOptions{Overwrite: sources.OverwriteAlways})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := unix.Mkfifo(filepath.Join(root, "late"), 0o644); err != nil {
		t.Fatal(err)
	}
	kinds["late"] = os.ModeNamedPipe
	check("late", w.Commit(ctx))
}

// TestCreateNeverOverADirectory: a new output (never overwriting) whose
// name is a directory fails at the latest at Commit, with the error
// Create used to give, and the directory and its content stay.
func TestCreateNeverOverADirectory(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dir", "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	w, err := d.Create(ctx, "dir", sources.CreateOptions{Overwrite: sources.OverwriteNever})
	if err == nil {
		w.Write([]byte("data"))
		err = w.Commit(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("commit over a directory: %v, want an \"is a directory\" error", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "dir", "keep")); err != nil || string(b) != "k" {
		t.Fatalf("directory content after the refused commit: %q, %v", b, err)
	}
}
