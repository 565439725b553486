package sources

import (
	"sync"

	"golang.org/x/sys/unix"
)

// fdTableReserve is how many descriptors the process's descriptor table
// is grown to hold before a local destination is used.
const fdTableReserve = 4096

var fdTableOnce sync.Once

// reserveFDTable grows the process's descriptor table once, up front, to
// fdTableReserve entries. A group commit keeps every staged output's
// descriptor open until its batch is synced, so a run of small files
// holds hundreds at once (610 in a 2,500-file bench row, over 1,000 on
// a loaded machine, whose syncfs takes longer). The kernel doubles the
// table as descriptors are needed (64, 128, ..., 1024, 2048), and in a
// multi-threaded process each doubling waits for an RCU grace period
// while every other thread opening a file waits for it (sched_switch:
// expand_files and synchronize_rcu, 120-220 ms off-CPU in a 0.4-1 s
// apply). Growing it once, before the run, pays one grace period instead
// of four or five, at a time no worker waits. Tables never shrink; the
// cost is 4096 pointers (32 KiB).
func reserveFDTable() {
	fdTableOnce.Do(func() {
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2 {
			return
		}
		fd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		// F_DUPFD gives the lowest free descriptor >= the argument,
		// growing the table to hold it.
		if hi, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, int(min(fdTableReserve, lim.Cur)-1)); err == nil {
			unix.Close(hi)
		}
	})
}
