package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// StdinKey is the key of the one item a StdinSource lists.
const StdinKey = "-"

// StdinSource is "-" as a source: one item, readable once.
type StdinSource struct {
	r    io.Reader
	once sync.Once
}

// NewStdinSource wraps r (normally os.Stdin).
func NewStdinSource(r io.Reader) *StdinSource { return &StdinSource{r: r} }

func (s *StdinSource) String() string { return "-" }

// List yields the single item "-" of unknown size (-1).
func (s *StdinSource) List(ctx context.Context, fn func(Item) error) error {
	return fn(Item{Key: StdinKey, Size: -1, IsSingle: true})
}

// Stat describes the single item.
func (s *StdinSource) Stat(ctx context.Context, key string) (Item, error) {
	if key != StdinKey {
		return Item{}, fmt.Errorf("stdin: key %q: %w", key, ErrNotFound)
	}
	return Item{Key: StdinKey, Size: -1, IsSingle: true}, nil
}

// Open returns the stream; only the first Open (or OpenHeader) succeeds,
// since stdin cannot be read twice. A planner that peeks at the header
// must buffer what it read and hand it on.
func (s *StdinSource) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if key != StdinKey {
		return nil, fmt.Errorf("stdin: key %q: %w", key, ErrNotFound)
	}
	var rc io.ReadCloser
	s.once.Do(func() { rc = io.NopCloser(s.r) })
	if rc == nil {
		return nil, errors.New("stdin: already read")
	}
	return rc, nil
}

// OpenHeader is Open.
func (s *StdinSource) OpenHeader(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.Open(ctx, key)
}

// StdoutDestination is "-" as a destination. Output is streamed as it is
// written: Commit cannot make it atomic and Abort cannot take back what
// was written (callers that must not emit unverified plaintext buffer
// before writing). Keys are ignored.
type StdoutDestination struct {
	mu sync.Mutex
	w  io.Writer
}

// NewStdoutDestination wraps w (normally os.Stdout).
func NewStdoutDestination(w io.Writer) *StdoutDestination { return &StdoutDestination{w: w} }

func (d *StdoutDestination) String() string { return "-" }

// Create returns a writer straight to the stream; one at a time.
func (d *StdoutDestination) Create(ctx context.Context, key string, o CreateOptions) (Writer, error) {
	d.mu.Lock()
	return &stdoutWriter{d: d}, nil
}

// Stat always reports ErrNotFound: stdout has no existing outputs.
func (d *StdoutDestination) Stat(ctx context.Context, key string) (Item, error) {
	return Item{}, fmt.Errorf("stdout: %w", ErrNotFound)
}

type stdoutWriter struct {
	d    *StdoutDestination
	done bool
}

func (w *stdoutWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("stdout: writer already committed or aborted")
	}
	return w.d.w.Write(p)
}

func (w *stdoutWriter) finish() {
	if !w.done {
		w.done = true
		w.d.mu.Unlock()
	}
}

func (w *stdoutWriter) Commit(ctx context.Context) error {
	if w.done {
		return errors.New("stdout: writer already committed or aborted")
	}
	w.finish()
	return nil
}

func (w *stdoutWriter) Abort() error { w.finish(); return nil }

var (
	_ Source      = (*StdinSource)(nil)
	_ Destination = (*StdoutDestination)(nil)
)
