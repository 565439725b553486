package sources

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// groupCommitter batches commits: a single goroutine takes everything
// queued, makes it durable with one syncfs(2) (or, where that fails as
// unsupported, an fsync per file), renames each file into place, fsyncs
// the affected directories and wakes the committers. Commits arriving
// while a batch is being synced form the next batch. The goroutine exits
// when the queue is empty, so a destination needs no Close.
type groupCommitter struct {
	d        *LocalDestination
	mu       sync.Mutex
	pending  []*commitReq
	running  bool
	noSyncfs bool

	// Stats for tests and benchmarks: batches run and files committed.
	batches, files int
}

type commitReq struct {
	w    *localWriter
	err  error
	done chan struct{}
}

func (g *groupCommitter) commit(w *localWriter) error {
	r := g.submit(w)
	<-r.done
	return r.err
}

func (g *groupCommitter) submit(w *localWriter) *commitReq {
	r := &commitReq{w: w, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	return r
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
		g.run(batch)
	}
}

func (g *groupCommitter) run(batch []*commitReq) {
	if err := g.syncData(batch); err != nil {
		for _, r := range batch {
			os.Remove(r.w.f.Name())
			r.err = fmt.Errorf("commit %s: %w", r.w.final, err)
			close(r.done)
		}
		return
	}
	dirs := map[string]bool{}
	for _, dir := range g.d.takeNewDirs() {
		dirs[dir] = true
	}
	var ok []*commitReq
	for _, r := range batch {
		if r.err = r.w.place(); r.err != nil {
			close(r.done)
			continue
		}
		dirs[filepath.Dir(r.w.final)] = true
		ok = append(ok, r)
	}
	var dirErr error
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			dirErr = err
		}
	}
	for _, r := range ok {
		if dirErr != nil {
			r.err = fmt.Errorf("commit %s: renamed but not durable: %w", r.w.final, dirErr)
		}
		close(r.done)
	}
}

// syncData makes the content of every staged file durable.
func (g *groupCommitter) syncData(batch []*commitReq) error {
	if !g.noSyncfs {
		fd, err := unix.Open(g.d.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open destination %s: %w", g.d.root, err)
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("syncfs %s: %w", g.d.root, err)
		}
		g.noSyncfs = true
	}
	// Concurrent fsyncs share the file system's journal commits.
	errs := make(chan error, len(batch))
	sem := make(chan struct{}, 32)
	for _, r := range batch {
		sem <- struct{}{}
		go func(p string) { errs <- fsyncPath(p); <-sem }(r.w.f.Name())
	}
	var first error
	for range batch {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return nil
}
