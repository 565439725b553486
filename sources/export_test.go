package sources

import (
	"io/fs"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// GroupCommitStats exposes the committer's counters to tests.
func GroupCommitStats(d *LocalDestination) (batches, files int) {
	d.gc.mu.Lock()
	defer d.gc.mu.Unlock()
	return d.gc.batches, d.gc.files
}

// UseFsyncBatch makes the group committer fsync each file of a batch
// instead of calling syncfs (the fallback path).
func UseFsyncBatch(d *LocalDestination) { d.gc.noSyncfs = true }

// Umask is the umask outputs are created under.
func Umask() fs.FileMode { return fs.FileMode(processUmask()) }

// NewRunDestination returns a destination with its own lock, journal and
// run id on root, as another process (another pod) would have.
func NewRunDestination(root string, o LocalDestOptions) *LocalDestination {
	abs, _ := filepath.Abs(root)
	return newLocalDest(newRootState(abs, unixOps{}), o)
}

// EndRun closes d's descriptors, releasing its lock as a process exit does.
func EndRun(d *LocalDestination) { d.st.closeAll() }

// SetUmaskForTest sets the process umask and makes destinations read it
// again; it returns the old one.
func SetUmaskForTest(m int) int {
	old := unix.Umask(m)
	umaskMu.Lock()
	umaskOK = false
	umaskMu.Unlock()
	return old
}

// hookOps runs a hook before the first RENAME_EXCHANGE.
type hookOps struct {
	unixOps
	once   sync.Once
	before func()
}

func (h *hookOps) rename(od int, on string, nd int, nn string, flags uint) error {
	if flags == unix.RENAME_EXCHANGE {
		h.once.Do(h.before)
	}
	return h.unixOps.rename(od, on, nd, nn, flags)
}

// NewExchangeHookDestination returns a run destination that calls before
// right before its first in-place exchange (after the last check).
func NewExchangeHookDestination(root string, o LocalDestOptions, before func()) *LocalDestination {
	abs, _ := filepath.Abs(root)
	return newLocalDest(newRootState(abs, &hookOps{before: before}), o)
}

// DeclineCopyFileRange makes copy_file_range fail with EXDEV (as across
// file systems) until restore is called.
func DeclineCopyFileRange() (restore func()) {
	old := copyFileRange
	copyFileRange = func(int, *int64, int, *int64, int, int) (int, error) { return 0, unix.EXDEV }
	return func() { copyFileRange = old }
}

// BatchInterval is the least time between two batches' syncs.
const BatchInterval = batchInterval
