package sources

import "sync"

// groupCommitter batches commits: a single goroutine takes everything
// queued and runs the commit protocol (LocalDestination.commitBatch) on
// it, so the whole batch shares one syncfs(2) (or, where that fails as
// unsupported, an fsync per file), then wakes the committers. Commits
// arriving while a batch is being synced form the next batch. The
// goroutine exits when the queue is empty, so a destination needs no
// Close.
type groupCommitter struct {
	d        *LocalDestination
	mu       sync.Mutex
	pending  []*commitReq
	running  bool
	noSyncfs bool // touched only by the committing goroutine

	// Stats for tests and benchmarks: batches run and files committed.
	batches, files int
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
	for {
		g.mu.Lock()
		batch := g.pending
		g.pending = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.batches++
		g.files += len(batch)
		g.mu.Unlock()
		ws := make([]*localWriter, len(batch))
		for i, r := range batch {
			ws[i] = r.w
		}
		errs := g.d.commitBatch(ws)
		for i, r := range batch {
			r.res <- errs[i]
		}
	}
}
