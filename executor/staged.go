package executor

import (
	"sync"
	"time"
)

// stagedQueue records the items whose outputs wait for a group commit, in
// the order they were staged, on one goroutine per run. A goroutine per
// item waiting on its commit was created, parked and woken for every
// small file (a batch's commit woke a few hundred of them at once); the
// queue's goroutine is woken once per batch and finds the results of the
// rest of it already delivered. Commits of one destination complete in
// staging order, so the first item still waiting is the one whose
// result comes next.
type stagedQueue struct {
	t      *tally
	mu     sync.Mutex
	items  []stagedItem
	closed bool
	more   chan struct{} // 1-buffered: items were added or the queue closed
	done   chan struct{} // closed when every item is recorded
}

type stagedItem struct {
	r       Result
	pending <-chan error
	started time.Time
}

func newStagedQueue(t *tally) *stagedQueue {
	q := &stagedQueue{t: t, more: make(chan struct{}, 1), done: make(chan struct{})}
	go q.run()
	return q
}

// add queues an item whose output is staged; pending reports its commit.
func (q *stagedQueue) add(r Result, pending <-chan error, started time.Time) {
	q.mu.Lock()
	q.items = append(q.items, stagedItem{r: r, pending: pending, started: started})
	q.mu.Unlock()
	q.signal()
}

// wait records every queued item and returns once they are.
func (q *stagedQueue) wait() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
	<-q.done
}

func (q *stagedQueue) signal() {
	select {
	case q.more <- struct{}{}:
	default:
	}
}

func (q *stagedQueue) run() {
	defer close(q.done)
	var batch []stagedItem
	for {
		q.mu.Lock()
		batch, q.items = q.items, batch[:0]
		closed := q.closed
		q.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-q.more
			continue
		}
		for i := range batch {
			s := &batch[i]
			if err := <-s.pending; err != nil {
				s.r.Err = commitError(err)
			}
			s.r.Duration = time.Since(s.started)
			q.t.finish(s.r)
			*s = stagedItem{} // the result holds headers: do not keep them
		}
	}
}
