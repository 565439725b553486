package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyOverlapped is the fastest plain copy of one large file the I/O path
// allows, what the pipelined executor's I/O can at best reach (issue 19,
// the I/O limit of the large signed rows): one goroutine reads 1 MiB
// blocks while another writes them, and as the executor's local writer
// does (sources/writeback.go), a third asks the disk to write back every
// 8 MiB and makes the data durable (fdatasync) every 32 MiB; the copy
// ends with fsync, so the commit's durability is the same.
func copyOverlapped(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	const depth, block, writeback = 4, 1 << 20, 8 << 20
	full, free := make(chan []byte, depth), make(chan []byte, depth)
	for range depth {
		free <- make([]byte, block)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		for b := range free {
			n, err := io.ReadFull(in, b)
			if n > 0 {
				full <- b[:n]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = nil
				break
			}
			if err != nil {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	kick, synced := make(chan int64, 1), make(chan error, 1)
	go func() {
		var from, durable int64
		var err error
		for to := range kick {
			unix.SyncFileRange(int(out.Fd()), from, to-from, unix.SYNC_FILE_RANGE_WRITE)
			if from = to; to-durable >= 32<<20 && err == nil {
				err, durable = unix.Fdatasync(int(out.Fd())), to
			}
		}
		synced <- err
	}()
	var total, started int64
	var werr error
	for b := range full {
		if werr == nil {
			_, werr = out.Write(b)
			total += int64(len(b))
			if total-started >= writeback {
				select {
				case kick <- total:
					started = total
				default: // busy: the range merges into the next one
				}
			}
		}
		free <- b[:cap(b)]
	}
	close(kick)
	if serr := <-synced; werr == nil {
		werr = serr
	}
	err = <-readErr
	if err == nil {
		err = werr
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return total, err
}
