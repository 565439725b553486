package sources

import (
	"sync"
	"time"
)

// groupCommitter batches commits: a single goroutine takes everything
// queued and runs the commit protocol (LocalDestination.commitBatch) on
// it, so the whole batch shares one syncfs(2) (or, where that fails as
// unsupported, an fsync per file), then wakes the committers. Commits
// arriving while a batch is being synced form the next batch. The
// goroutine exits when the queue is empty, so a destination needs no
// Close.
//
// Batches are pipelined: a batch placed after a syncfs is held, its links
// not yet durable, until the next batch's syncfs makes them so (it syncs
// everything on the file system); only then are its committers woken.
// The directory fsyncs of step 4 are paid only when no batch follows
// (the queue ran empty) or the sync was not a syncfs. Each of the two
// syncs flushed the disk's cache, the slowest part of a batch on a
// virtual disk: a stream of small files paid two flushes per batch.
//
// A batch's sync starts at least batchInterval after the previous one
// began, unless batchMax commits wait. Commits are asynchronous for the
// executor (its workers go on while a batch waits), so the wait costs a
// file's durability latency, not throughput; what it saves is syncs.
// When crypto, not storage, sets the pace (0x0578, one signature per
// file) files arrived a few at a time, and each syncfs - a walk of the
// file system's dirty inodes, writeback and a flush of the disk's cache,
// whatever the batch's size - served about five of them: 510 syncfs for
// 2,500 files of 4 KiB. A syncfs itself is not shortened by the wait.
type groupCommitter struct {
	d        *LocalDestination
	mu       sync.Mutex
	pending  []*commitReq
	running  bool
	noSyncfs bool // touched only by the committing goroutine
	// lastSync is when the committing goroutine last started a batch
	// (touched only by it; it outlives the goroutine, so a committer
	// started anew right after a batch waits too).
	lastSync time.Time

	// Stats for tests and benchmarks: batches run, files committed, and
	// batches whose links the next batch's syncfs made durable.
	batches, files, pipelined int
}

type commitReq struct {
	w   *localWriter
	res chan error // buffered: receives the commit's result once
}

func (g *groupCommitter) commit(w *localWriter) error {
	return <-g.submit(w)
}

// submit queues w; the channel yields its result when the batch is done.
func (g *groupCommitter) submit(w *localWriter) chan error {
	r := &commitReq{w: w, res: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return r.res
}

// batchInterval and batchMax bound the wait of a batch (see
// groupCommitter): 5 ms is a few syncfs of a virtual disk (1-3 ms each
// here), long enough to let signed small files gather into batches of
// 20 and more, short next to any run worth batching; 512 staged files
// hold 512 descriptors, an eighth of the table reserved for them
// (fdTableReserve).
const (
	batchInterval = 5 * time.Millisecond
	batchMax      = 512
)

// wait reports how long the batch of n queued commits should still wait
// before its sync starts: 0 to go now.
func (g *groupCommitter) wait(n int, now time.Time) time.Duration {
	if n == 0 || n >= batchMax || g.noSyncfs || g.d.opt.Sync != SyncGroup {
		// Nothing to gather, or no syncfs to save: an fsync per file
		// costs the same in any batch.
		return 0
	}
	return max(0, batchInterval-now.Sub(g.lastSync))
}

func (g *groupCommitter) loop() {
	var held *placedBatch // placed, its links waiting for the next syncfs
	for {
		g.mu.Lock()
		if w := g.wait(len(g.pending), time.Now()); w > 0 {
			g.mu.Unlock()
			time.Sleep(w)
			continue
		}
		batch := g.pending
		g.pending = nil
		if len(batch) == 0 && held == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		if len(batch) > 0 {
			g.batches++
			g.files += len(batch)
		}
		g.mu.Unlock()
		if len(batch) > 0 {
			g.lastSync = time.Now()
		}
		held = g.commitNext(held, batch)
	}
}

// commitNext commits batch and settles held, the batch placed before it;
// it returns the batch left waiting for the next one's syncfs, if any.
// An empty batch settles held with step 4's directory fsyncs.
func (g *groupCommitter) commitNext(held *placedBatch, batch []*commitReq) *placedBatch {
	if len(batch) == 0 {
		if held != nil {
			held.settle(g.d, g.d.syncDirs(held.ws, held.errs))
		}
		return nil
	}
	p := &placedBatch{reqs: batch, ws: make([]*localWriter, len(batch))}
	for i, r := range batch {
		p.ws[i] = r.w
	}
	var whole bool
	p.errs, whole = g.d.syncAndPlace(p.ws)
	if held != nil {
		var err error
		if whole {
			g.mu.Lock()
			g.pipelined++
			g.mu.Unlock()
		} else {
			err = g.d.syncDirs(held.ws, held.errs)
		}
		held.settle(g.d, err)
	}
	if whole {
		return p
	}
	p.settle(g.d, g.d.syncDirs(p.ws, p.errs))
	return nil
}

// placedBatch is a batch past step 3 of the commit protocol.
type placedBatch struct {
	reqs []*commitReq
	ws   []*localWriter
	errs []error
}

// settle ends the batch (LocalDestination.settle) and wakes its
// committers.
func (p *placedBatch) settle(d *LocalDestination, durErr error) {
	d.settle(p.ws, p.errs, durErr)
	for i, r := range p.reqs {
		r.res <- p.errs[i]
	}
}
