package sources

import "sync/atomic"

// writebackChunk is how much of a large output is written before the
// disk is asked to start writing it back: the commit's sync then waits
// for the last few MiB, not for the whole file, the disk working while
// the engine does (a 1 GiB output would otherwise sit dirty in memory
// until its commit, all of it on the commit's critical path).
const writebackChunk = 8 << 20

// durableChunk is how much of a large output is written back between two
// data syncs (fdatasync) of the writeback goroutine. Writing back is not
// enough: a disk with a volatile write cache (a virtual disk whose host
// caches writes) acknowledges the writes and makes them durable only at
// the commit's cache flush, which then waited for all of them (on the
// 2-vCPU benchmark machine, a traced 256 MiB encrypt spent 0.29 s + 0.17 s
// in the commit's fsync and syncfs after its last byte; on disk the row
// took 0.48 s longer than with its output on tmpfs). Flushed as it goes,
// the commit's sync waits for at most the last chunk. 32 MiB keeps the
// flushes few (8 per 256 MiB, a few ms each) and their wait off the writer.
const durableChunk = 32 << 20

// backgroundWriteback asks the disk to write back an output's bytes as
// they are written, and every durableChunk to make them durable, on a
// goroutine of its own: sync_file_range and fdatasync block while the
// disk works, and the writer must not (it would stall the encryption
// behind the disk instead of filling the page cache while the disk
// catches up). The writeback is a hint and the data syncs make nothing
// final: the commit's syncfs or fsync still decides durability, and
// whatever they have not reached by then the commit's sync writes. A data
// sync's error, though, is kept and fails the commit: Linux reports a
// failed writeback to one fsync per open file only, so the commit's own
// fsync could no longer see it.
//
// Contract: advance(n) says the first n bytes are written (n grows);
// stop, called once before fd is closed, waits for the goroutine to end
// and returns the first data sync error.
type backgroundWriteback struct {
	ops  fileOps
	fd   int
	upto atomic.Int64
	kick chan struct{}
	done chan struct{}
	err  error // written by loop, read after done
}

func startWriteback(ops fileOps, fd int) *backgroundWriteback {
	b := &backgroundWriteback{ops: ops, fd: fd, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *backgroundWriteback) loop() {
	defer close(b.done)
	var from, synced int64
	for range b.kick {
		to := b.upto.Load()
		if to <= from {
			continue
		}
		b.ops.writeback(b.fd, from, to-from)
		from = to
		if to-synced >= durableChunk && b.err == nil {
			b.err = b.ops.datasync(b.fd)
			synced = to
		}
	}
}

// advance never blocks: while a writeback runs, later ranges merge into
// the next one.
func (b *backgroundWriteback) advance(n int64) {
	b.upto.Store(n)
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *backgroundWriteback) stop() error {
	close(b.kick)
	<-b.done
	return b.err
}
