package sources

import "sync/atomic"

// writebackChunk is how much of a large output is written before the
// disk is asked to start writing it back: the commit's sync then waits
// for the last few MiB, not for the whole file, the disk working while
// the engine does (a 1 GiB output would otherwise sit dirty in memory
// until its commit, all of it on the commit's critical path).
const writebackChunk = 8 << 20

// backgroundWriteback asks the disk to write back an output's bytes as
// they are written, on a goroutine of its own: sync_file_range blocks
// while the disk's queue is full, and the writer must not (it would stall
// the encryption behind the disk instead of filling the page cache while
// the disk catches up). It is a hint only: durability still comes from
// the commit's syncfs or fsync, and whatever it has not reached by then
// the sync writes.
//
// Contract: advance(n) says the first n bytes are written (n grows);
// stop, called once before fd is closed, waits for the goroutine to end.
type backgroundWriteback struct {
	ops  fileOps
	fd   int
	upto atomic.Int64
	kick chan struct{}
	done chan struct{}
}

func startWriteback(ops fileOps, fd int) *backgroundWriteback {
	b := &backgroundWriteback{ops: ops, fd: fd, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *backgroundWriteback) loop() {
	defer close(b.done)
	var from int64
	for range b.kick {
		if to := b.upto.Load(); to > from {
			b.ops.writeback(b.fd, from, to-from)
			from = to
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

func (b *backgroundWriteback) stop() {
	close(b.kick)
	<-b.done
}
