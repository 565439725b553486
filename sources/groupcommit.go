package sources

import "sync"

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
type groupCommitter struct {
	d        *LocalDestination
	mu       sync.Mutex
	pending  []*commitReq
	running  bool
	noSyncfs bool // touched only by the committing goroutine

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

func (g *groupCommitter) loop() {
	var held *placedBatch // placed, its links waiting for the next syncfs
	for {
		g.mu.Lock()
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
