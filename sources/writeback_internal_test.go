package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// failingDatasync is unixOps whose data syncs fail with EIO, as a disk's
// failed writeback does; it counts them.
type failingDatasync struct {
	unixOps
	calls atomic.Int32
}

func (f *failingDatasync) datasync(fd int) error {
	f.calls.Add(1)
	return unix.EIO
}

// TestDatasyncErrorFailsCommit: a large output is made durable as it is
// written (a data sync every durableChunk, on the writeback goroutine);
// when one of those fails, the commit fails with that error under every
// sync mode that syncs, and no output appears: the commit's own fsync
// would not see a writeback error already reported to the data sync.
func TestDatasyncErrorFailsCommit(t *testing.T) {
	ctx := context.Background()
	chunk := make([]byte, 1<<20+3)
	for _, mode := range []SyncMode{SyncGroup, SyncEach} {
		root := t.TempDir()
		abs, _ := filepath.Abs(root)
		ops := &failingDatasync{}
		d := newLocalDest(newRootState(abs, ops), LocalDestOptions{Sync: mode})
		w, err := d.Create(ctx, "out", CreateOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		for written := 0; written < durableChunk+2*writebackChunk; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		err = w.Commit(ctx)
		if !errors.Is(err, unix.EIO) {
			t.Fatalf("mode %v: commit after a failed data sync: %v, want EIO", mode, err)
		}
		if ops.calls.Load() == 0 {
			t.Fatalf("mode %v: no data sync was made for a %d MiB output", mode, (durableChunk+2*writebackChunk)>>20)
		}
		if _, err := os.Stat(filepath.Join(root, "out")); !os.IsNotExist(err) {
			t.Fatalf("mode %v: output after a failed commit: %v", mode, err)
		}
		d.st.closeAll()
	}
}
