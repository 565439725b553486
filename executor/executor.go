// Package executor applies a plan: every changing item is encrypted,
// decrypted or re-encrypted in one streaming pass, in parallel under a
// concurrency limit, and committed atomically - a failed or cancelled item
// leaves no output and never touches its source.
package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// Options configures Apply.
type Options struct {
	Concurrency int  // default (0): the job's execution.concurrency
	FailFast    bool // default (false): the job's execution.onError
	// Retries is the number of attempts after the first for an item that
	// failed retryably; nil: the job's execution.retries (Retry(0): none).
	// A pointer, so that the zero Options means the job's settings.
	Retries  *int
	Metadata *MetadataLog
	// Progress is called once per finished item (from several goroutines).
	Progress func(Result)
	Shard    string // recorded in metadata records
	// StdoutName, when set, is the output name metadata records give an
	// item written to the runtime's Stdout instead of "<stdout>": the
	// device or pipe a CLI copies that stream into (-o /dev/null), named
	// as aws-encryption-cli names it.
	StdoutName string
	// Fatal, when set, says whether an item's error will fail every other
	// item too (no credentials, a key that is denied or gone): the run
	// then stops as with fail-fast, whatever execution.onError says, and
	// Apply returns that error.
	Fatal func(error) bool
	// BytesRead, when set, is told every read of an input as it happens
	// (live progress of items still running; from several goroutines).
	BytesRead func(n int)
}

// Result is the outcome of one item.
type Result struct {
	Item     *planner.Item
	Err      error
	BytesIn  int64
	BytesOut int64
	// BytesInStorage is how many of BytesOut the storage copied without
	// them passing through this process (a rewrap's body, see
	// sources.RangeCopier).
	BytesInStorage int64
	// HeaderInPlace: a rewrap overwrote the file's header in place
	// (sources.HeaderRewriter); BytesInStorage is then the body the
	// storage kept without copying it.
	HeaderInPlace bool
	Duration      time.Duration
	Attempts      int
	// NotStarted: the run stopped (interrupted, fail-fast, a fatal error)
	// before this item began; Err is nil and NotStartedWhy says why.
	NotStarted    bool
	NotStartedWhy string
	// Header is the header of the message written (encrypt, reencrypt) or
	// read (decrypt); InputHeader the header a reencrypt replaced.
	Header, InputHeader *crypto.Header
}

// Summary is the outcome of a run.
type Summary struct {
	Done     map[planner.Action]int // items whose action completed (unchanged/skip/conflict counted as planned)
	Failed   []Result
	BytesIn  int64
	BytesOut int64
	Elapsed  time.Duration
	Items    int
	// MetadataUnwritten counts items whose metadata record could not be
	// written (MetadataErr is the first such error). Their outcome above
	// stands: an output committed stays done.
	MetadataUnwritten int
	MetadataErr       error
	// NotStarted counts changing items never begun because the run
	// stopped early; they are neither done nor failed.
	NotStarted int
}

// OK reports whether every item succeeded.
func (s *Summary) OK() bool { return len(s.Failed) == 0 }

// Apply executes the plan's changing items and records every item in the
// metadata log.
func Apply(ctx context.Context, rt *planner.Runtime, p *planner.Plan, o Options) (*Summary, error) {
	set := rt.Settings
	if o.Concurrency <= 0 {
		o.Concurrency = set.Concurrency
	}
	o.FailFast = o.FailFast || set.FailFast
	retries := set.Retries
	if o.Retries != nil {
		retries = max(0, *o.Retries)
	}
	// A plan cannot be edited into a write the job did not ask for: every
	// item is checked against the job and its sources before any is run.
	if err := planner.VerifyPlan(ctx, rt, p); err != nil {
		return nil, err
	}
	if p.HasChanges() {
		// Planning never writes; the key files a spec asks to generate
		// are made by the apply that needs them (a no-op when the
		// caller already did, as the CLI does to report them).
		if _, err := rt.GenerateKeys(); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	defer holdExtraP(p)()
	cleanStale(ctx, p)
	t := &tally{sum: &Summary{Done: map[planner.Action]int{}, Items: len(p.Items)}, mode: set.Mode, o: &o}
	// A fixed set of workers takes the changing items in plan order: a
	// goroutine per item would grow a fresh stack through the engine and
	// the destination for every small file.
	g, gctx := errgroup.WithContext(ctx)
	commits := newStagedQueue(t)
	work := make(chan *planner.Item)
	for range o.Concurrency {
		g.Go(func() error {
			for it := range work {
				if err := t.run(ctx, gctx, rt, it, retries, commits); err != nil {
					return err // gctx is cancelled: the feeder stops sending
				}
			}
			return nil
		})
	}
	for i := range p.Items {
		it := &p.Items[i]
		switch {
		case !it.Action.Changes():
			r := Result{Item: it}
			if it.Action == planner.Error {
				r.Err = errors.New(it.Reason)
			}
			if it.Action == planner.Skip && (it.MissingContextKeys != nil || it.MissingContextPairs != nil) {
				r.Header = skippedHeader(ctx, rt, it)
			}
			t.finish(r)
		case gctx.Err() != nil:
			t.finish(Result{Item: it, NotStarted: true, NotStartedWhy: notStartedWhy(ctx)})
		default:
			select {
			case work <- it:
			case <-gctx.Done():
				t.finish(Result{Item: it, NotStarted: true, NotStartedWhy: notStartedWhy(ctx)})
			}
		}
	}
	close(work)
	err := g.Wait()
	commits.wait()
	sum := t.sum
	sum.BytesIn, sum.BytesOut = t.bytesIn.Load(), t.bytesOut.Load()
	sum.Elapsed = time.Since(start)
	if err != nil && ctx.Err() == nil && o.Fatal != nil && o.Fatal(err) {
		return sum, &FatalError{Err: err}
	}
	if err != nil && ctx.Err() == nil && o.FailFast {
		return sum, fmt.Errorf("stopped at the first failure (onError: fail-fast): %w", err)
	}
	return sum, ctx.Err()
}

// tally records finished items: one metadata record each, the summary,
// the progress callback. Safe for concurrent use.
type tally struct {
	mu                sync.Mutex
	sum               *Summary
	mode              string
	o                 *Options
	bytesIn, bytesOut atomic.Int64
}

// finish records one result.
func (t *tally) finish(r Result) {
	// A log write that fails does not undo the item: its output is
	// committed (or it failed for its own reason). Both facts are
	// reported: the item's outcome, and the unwritten record. Without a
	// log the record is not even built (it is most of an item's
	// allocations outside the engine).
	var logErr error
	if t.o.Metadata.enabled() {
		logErr = t.o.Metadata.Write(record(t.mode, &r, t.o.Shard, t.o.StdoutName))
	}
	t.bytesIn.Add(r.BytesIn)
	t.bytesOut.Add(r.BytesOut)
	t.mu.Lock()
	sum := t.sum
	if logErr != nil {
		if sum.MetadataUnwritten == 0 {
			sum.MetadataErr = fmt.Errorf("writing the record of %s: %w", r.Item.Input, logErr)
		}
		sum.MetadataUnwritten++
	}
	switch {
	case r.NotStarted:
		sum.NotStarted++
	case r.Err != nil:
		sum.Failed = append(sum.Failed, r)
	default:
		sum.Done[r.Item.Action]++
	}
	t.mu.Unlock()
	if t.o.Progress != nil {
		t.o.Progress(r)
	}
}

// run processes one changing item in its errgroup slot. The error it
// returns stops the run (fail-fast, a fatal error).
func (t *tally) run(ctx, gctx context.Context, rt *planner.Runtime, it *planner.Item, retries int, commits *stagedQueue) error {
	started := time.Now()
	if gctx.Err() != nil {
		// Stopped while this item waited for a slot.
		t.finish(Result{Item: it, NotStarted: true, NotStartedWhy: notStartedWhy(ctx)})
		return nil
	}
	r, pending := runItemRecovered(gctx, rt, it, retries, t.o.BytesRead)
	if pending == nil {
		t.finish(r)
		if r.Err != nil && (t.o.FailFast || t.o.Fatal != nil && t.o.Fatal(r.Err)) {
			return r.Err
		}
		return nil
	}
	// The output is staged; it becomes durable and visible with the next
	// group commit. Record the item only then.
	commits.add(r, pending, started)
	return nil
}

// commitError says a commit failed, once: destinations that name the
// commit themselves ("commit <path>: ...") are not wrapped again.
func commitError(err error) error {
	if strings.HasPrefix(err.Error(), "commit ") {
		return err
	}
	return fmt.Errorf("commit: %w", err)
}

// Retry returns n for Options.Retries.
func Retry(n int) *int { return &n }

// FatalError is the error that stopped a run because it would have failed
// every other item too (Options.Fatal).
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// notStartedWhy says why the run stopped before an item began.
func notStartedWhy(parent context.Context) string {
	if parent.Err() != nil {
		return "not started: interrupted"
	}
	return "not started: the run stopped at an earlier failure"
}

var (
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}
	bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
)

// retryable reports whether an error is worth another attempt: storage
// and KMS errors that say so (throttling, 5xx, connection resets).
func retryable(err error) bool {
	if sources.IsRetryable(err) {
		return true
	}
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

// PanicError is an item whose processing panicked: a bug, reported as
// the item's error (with the stack for the debug log) so that one item
// cannot take down the run. The panicking attempt's output was aborted by
// process's deferred cleanup.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error: panic: %v", e.Value) }

// runItemRecovered is runItem with a panic turned into a *PanicError.
func runItemRecovered(ctx context.Context, rt *planner.Runtime, it *planner.Item, retries int, onRead func(int)) (r Result, pending <-chan error) {
	defer func() {
		if v := recover(); v != nil {
			r, pending = Result{Item: it, Attempts: 1, Err: &PanicError{Value: v, Stack: debug.Stack()}}, nil
		}
	}()
	return runItem(ctx, rt, it, retries, onRead)
}

// runItem processes one item with retries. When the output is staged for
// a group commit it returns the channel that reports the commit.
func runItem(ctx context.Context, rt *planner.Runtime, it *planner.Item, retries int, onRead func(int)) (Result, <-chan error) {
	start := time.Now()
	var r Result
	for attempt := 0; ; attempt++ {
		r = Result{Item: it, Attempts: attempt + 1}
		pending, err := process(ctx, rt, it, &r, onRead)
		r.Err = err
		r.Duration = time.Since(start)
		if err == nil {
			return r, pending
		}
		if attempt >= retries || !retryable(err) || ctx.Err() != nil || it.Input == "<stdin>" {
			return r, nil
		}
		backoff := time.Duration(50<<attempt) * time.Millisecond
		backoff += time.Duration(rand.Int64N(int64(backoff)))
		select {
		case <-ctx.Done():
			return r, nil
		case <-time.After(backoff):
		}
		if errors.Is(err, sources.ErrSourceChanged) {
			// What was planned is gone: plan the item again from the
			// version there now, which may need another action.
			*it = rt.Redecide(ctx, it)
			if !it.Action.Changes() {
				r = Result{Item: it, Attempts: attempt + 1, Duration: time.Since(start)}
				if it.Action == planner.Error {
					r.Err = errors.New(it.Reason)
				}
				return r, nil
			}
		}
	}
}

// counter counts bytes through a reader or writer.
type counter struct {
	r      io.Reader
	w      io.Writer
	n      int64
	h      hash.Hash
	onRead func(int) // Options.BytesRead
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.onRead != nil && n > 0 {
		c.onRead(n)
	}
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// skippedHeader reads the header of a message skipped for its encryption
// context, for its metadata line: aws-encryption-cli writes header and
// header_auth on such lines. The header is parsed, not authenticated (the
// skip needs no key, so no KMS call is made for it); nil when the source
// cannot be read again, which leaves the line without them.
func skippedHeader(ctx context.Context, rt *planner.Runtime, it *planner.Item) *crypto.Header {
	rc, _, err := openInput(ctx, rt.Sources[it.SourceIndex], it)
	if err != nil {
		return nil
	}
	defer rc.Close()
	h, err := crypto.ParseHeaderLimits(planner.InputReader(rc, it.InputEncoding),
		crypto.HeaderLimits{MaxEncryptedDataKeys: rt.Settings.MaxEncryptedDataKeys})
	if err != nil {
		return nil
	}
	return h
}

// sourceUnchanged re-checks the source after an attempt read it: a source
// that changed meanwhile never yields a committed output, and the item
// fails retryably (sources.ErrSourceChanged) - also when the change is
// what made the attempt fail (an append overrunning the planned length,
// a truncation cutting a message short).
func sourceUnchanged(err error, recheck func() error) error {
	cerr := recheck()
	switch {
	case cerr == nil:
		return err
	case err == nil:
		return fmt.Errorf("re-checking input: %w", cerr)
	case errors.Is(cerr, sources.ErrSourceChanged):
		return fmt.Errorf("%w (the attempt failed: %v)", cerr, err)
	default:
		return err // the attempt's own error says more than a failed stat
	}
}

// commit makes an output visible: staged for the next group commit when
// the destination supports it (the channel reports when it is durable),
// else committed now.
func commit(ctx context.Context, w sources.Writer, committed *bool) (<-chan error, error) {
	if ac, ok := w.(sources.AsyncCommitter); ok {
		*committed = true
		return ac.CommitAsync(ctx), nil
	}
	if err := w.Commit(ctx); err != nil {
		return nil, commitError(err)
	}
	*committed = true
	return nil, nil
}

// cleanStale removes temporary files a crashed earlier run left in the
// local output directories of the plan.
func cleanStale(ctx context.Context, p *planner.Plan) {
	seen := map[string]bool{}
	for _, it := range p.Items {
		root := it.OutRoot
		if !it.Action.Changes() || seen[root] || root == "-" || root == "" || strings.HasPrefix(root, "s3://") {
			continue
		}
		seen[root] = true
		sources.Cleanup(ctx, root)
	}
}
