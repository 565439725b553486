package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
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

// StdoutDestination is "-" as a destination. Nothing reaches the stream
// before Commit: a writer stages its output (in memory up to
// StdoutMemory bytes, beyond that in an unlinked 0600 temporary file in
// $TMPDIR) and Commit copies it out, so a message whose last frame or
// signature does not verify releases no plaintext at all (the executor
// commits only after the whole message verified). Abort discards the
// staged bytes. Keys are ignored; one writer at a time.
type StdoutDestination struct {
	mu sync.Mutex
	w  io.Writer
	// TempDir is where staged output spills ("" = os.TempDir(), which
	// honours $TMPDIR).
	TempDir string
}

// StdoutMemory is how much output a stdout writer holds in memory before
// spilling to a temporary file.
const StdoutMemory = 16 << 20

// NewStdoutDestination wraps w (normally os.Stdout).
func NewStdoutDestination(w io.Writer) *StdoutDestination { return &StdoutDestination{w: w} }

func (d *StdoutDestination) String() string { return "-" }

// Create returns a staging writer; the stream is written on Commit.
func (d *StdoutDestination) Create(ctx context.Context, key string, o CreateOptions) (Writer, error) {
	d.mu.Lock()
	return &stdoutWriter{d: d}, nil
}

// Stat always reports ErrNotFound: stdout has no existing outputs.
func (d *StdoutDestination) Stat(ctx context.Context, key string) (Item, error) {
	return Item{}, fmt.Errorf("stdout: %w", ErrNotFound)
}

type stdoutWriter struct {
	d     *StdoutDestination
	mem   []byte
	spill *os.File // nil until mem would exceed StdoutMemory
	done  bool
	err   error
}

func (w *stdoutWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("stdout: writer already committed or aborted")
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.spill == nil && len(w.mem)+len(p) > StdoutMemory {
		f, err := spillFile(w.d.TempDir)
		if err != nil {
			w.err = fmt.Errorf("stdout: staging the output: %w", err)
			return 0, w.err
		}
		w.spill = f
		if _, err := f.Write(w.mem); err != nil {
			w.err = fmt.Errorf("stdout: staging the output in a temporary file: %w", err)
			return 0, w.err
		}
		clear(w.mem)
		w.mem = nil
	}
	if w.spill != nil {
		n, err := w.spill.Write(p)
		if err != nil {
			w.err = fmt.Errorf("stdout: staging the output in a temporary file: %w", err)
		}
		return n, w.err
	}
	w.mem = append(w.mem, p...)
	return len(p), nil
}

// spillFile returns a 0600 temporary file that has no name: O_TMPFILE
// where the filesystem supports it, else a named file unlinked at once,
// so the plaintext it holds vanishes with the process whatever happens.
func spillFile(dir string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(encjob stdout staging)")), nil
	}
	f, err := os.CreateTemp(dir, "encjob-stdout-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (w *stdoutWriter) finish() {
	if !w.done {
		w.done = true
		if w.spill != nil {
			w.spill.Close()
		}
		clear(w.mem)
		w.mem = nil
		w.d.mu.Unlock()
	}
}

// Commit writes the staged output to the stream.
func (w *stdoutWriter) Commit(ctx context.Context) error {
	if w.done {
		return errors.New("stdout: writer already committed or aborted")
	}
	defer w.finish()
	if w.err != nil {
		return w.err
	}
	if w.spill != nil {
		if _, err := w.spill.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("stdout: %w", err)
		}
		if _, err := io.Copy(w.d.w, w.spill); err != nil {
			return fmt.Errorf("stdout: %w", err)
		}
		return nil
	}
	if _, err := w.d.w.Write(w.mem); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	return nil
}

// Abort discards the staged output: nothing was written to the stream.
func (w *stdoutWriter) Abort() error { w.finish(); return nil }

var (
	_ Source      = (*StdinSource)(nil)
	_ Destination = (*StdoutDestination)(nil)
)
