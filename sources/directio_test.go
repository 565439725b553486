package sources

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// directSupported reports whether dir's file system takes O_DIRECT writes
// (tmpfs before Linux 6.6 does not).
func directSupported(t *testing.T, dir string) bool {
	p := filepath.Join(dir, ".probe")
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	defer os.Remove(p)
	defer unix.Close(fd)
	b := newDirectBuf()
	_, err = unix.Write(fd, b.b[:directAlign])
	return err == nil
}

// writeLarge writes data through a new writer in chunks of n bytes and
// reports whether the writer was in O_DIRECT mode once the data passed
// directFrom by a buffer, then commits.
func writeLarge(t *testing.T, d *LocalDestination, key string, data []byte, n int) (wasDirect bool) {
	t.Helper()
	ctx := context.Background()
	wr, err := d.Create(ctx, key, CreateOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	w := wr.(*localWriter)
	for off := 0; off < len(data); off += n {
		if _, err := w.Write(data[off:min(off+n, len(data))]); err != nil {
			t.Fatal(err)
		}
		if w.written > directFrom+directBufBytes && w.dio != nil {
			wasDirect = true
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if w.dio != nil {
		t.Fatal("the writer still holds its O_DIRECT buffer after the commit")
	}
	return wasDirect
}

// TestLargeOutputDirect: past directFrom bytes a local output is written
// with O_DIRECT, whatever the sizes of the writes (a threshold crossed
// mid-block, writes larger than the buffer, a last partial block), and
// the committed file holds exactly the bytes written.
func TestLargeOutputDirect(t *testing.T) {
	root := t.TempDir()
	supported := directSupported(t, root)
	d := NewLocalDestination(root, LocalDestOptions{})
	for _, c := range []struct {
		name  string
		size  int
		chunk int
	}{
		{"64 KiB writes, a partial last block", directFrom + 3*directBufBytes + 777, 64 << 10},
		{"odd writes cross the threshold unaligned", directFrom + 2*directBufBytes + 5, 1<<20 + 3},
		{"writes larger than the buffer", directFrom + 5*directBufBytes, 3 << 20},
		{"block-aligned end", directFrom + 2*directBufBytes + 8*directAlign, 4096},
		{"tiny writes", directFrom + directBufBytes + 100, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := make([]byte, c.size)
			rand.Read(data)
			key := filepath.Base(t.Name())
			direct := writeLarge(t, d, key, data, c.chunk)
			if direct != supported {
				t.Errorf("written with O_DIRECT: %v, want %v (the file system takes it: %v)", direct, supported, supported)
			}
			got, err := os.ReadFile(filepath.Join(root, key))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("committed %d bytes differ from the %d written", len(got), len(data))
			}
		})
	}
}

// TestDirectRefused: a file system that refuses O_DIRECT, at the flag or
// at the first write (EINVAL), gets the same bytes buffered.
func TestDirectRefused(t *testing.T) {
	root := t.TempDir()
	d := NewLocalDestination(root, LocalDestOptions{})
	data := make([]byte, directFrom+3*directBufBytes+123)
	rand.Read(data)
	refuse := func(_ *localWriter, _ []byte) error { return unix.EINVAL }
	for name, set := range map[string]func() func(){
		"flag": func() func() {
			setDirectFlag = func(int, bool) error { return unix.EINVAL }
			return func() { setDirectFlag = setDirect }
		},
		"first write": func() func() {
			directWrite = refuse
			return func() { directWrite = (*localWriter).writeAll }
		},
	} {
		t.Run(name, func(t *testing.T) {
			undo := set()
			direct := writeLarge(t, d, name, data, 64<<10)
			undo()
			if direct {
				t.Error("still in O_DIRECT mode after the refusal")
			}
			got, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("committed %d bytes differ from the %d written", len(got), len(data))
			}
		})
	}
}

// TestDirectWriteErrorFailsCommit: an error of a direct write (the disk's
// EIO) fails the commit and leaves no output.
func TestDirectWriteErrorFailsCommit(t *testing.T) {
	root := t.TempDir()
	if !directSupported(t, root) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s takes no O_DIRECT writes: this test needs a file system that does (ext4, xfs, tmpfs on Linux 6.6+)", root)
		}
		t.Skipf("%s takes no O_DIRECT writes", root)
	}
	d := NewLocalDestination(root, LocalDestOptions{})
	ctx := context.Background()
	w, err := d.Create(ctx, "out", CreateOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	directWrite = func(*localWriter, []byte) error { return unix.EIO }
	defer func() { directWrite = (*localWriter).writeAll }()
	chunk := make([]byte, 64<<10)
	var werr error
	for n := 0; n < directFrom+2*directBufBytes && werr == nil; n += len(chunk) {
		_, werr = w.Write(chunk)
	}
	if !errors.Is(werr, unix.EIO) {
		t.Fatalf("write: %v, want EIO", werr)
	}
	if err := w.Commit(ctx); !errors.Is(err, unix.EIO) {
		t.Fatalf("commit after a failed write: %v, want EIO", err)
	}
	if _, err := os.Stat(filepath.Join(root, "out")); !os.IsNotExist(err) {
		t.Fatalf("output after a failed commit: %v", err)
	}
}

// TestDirectFromSizeHint: an output announced large (CreateOptions.Size)
// is written with O_DIRECT from its first byte; one announced large that
// turns out small still holds exactly its bytes.
func TestDirectFromSizeHint(t *testing.T) {
	root := t.TempDir()
	supported := directSupported(t, root)
	d := NewLocalDestination(root, LocalDestOptions{})
	ctx := context.Background()
	for _, size := range []int{directBufBytes + 5000, 5000, directAlign, 0} {
		key := fmt.Sprint("hinted-", size)
		data := make([]byte, size)
		rand.Read(data)
		wr, err := d.Create(ctx, key, CreateOptions{Size: 2 * directFrom})
		if err != nil {
			t.Fatal(err)
		}
		w := wr.(*localWriter)
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if size > 0 && (w.dio != nil) != supported {
			t.Errorf("%d bytes announced as %d: in O_DIRECT mode %v, want %v", size, 2*directFrom, w.dio != nil, supported)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, key))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: committed %d bytes (%v), not the ones written", size, len(got), err)
		}
	}
}
