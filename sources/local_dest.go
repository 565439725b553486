package sources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SyncMode says how a LocalDestination makes outputs durable.
type SyncMode int

const (
	// SyncGroup (the default): group commit, one syncfs(2) per batch of
	// concurrent commits, then one fsync per affected directory.
	SyncGroup SyncMode = iota
	// SyncEach: fsync the file, rename, fsync the directory, per file.
	SyncEach
	// SyncNone: rename without syncing (tests, benchmarks, tmpfs).
	SyncNone
)

// LocalDestOptions tune a LocalDestination.
type LocalDestOptions struct {
	Sync SyncMode
}

// LocalDestination writes files below a root directory (created on first
// use). Keys are slash-separated paths below the root; a key that would
// leave the root, or pass through a symlinked directory, fails with
// ErrEscapes.
type LocalDestination struct {
	root string
	opt  LocalDestOptions

	dirMu   sync.Mutex
	dirsOK  map[string]bool // directories verified or created below root
	newDirs map[string]bool // created dirs whose parent still needs an fsync

	gc groupCommitter
}

// NewLocalDestination returns a destination rooted at root.
func NewLocalDestination(root string, o LocalDestOptions) *LocalDestination {
	d := &LocalDestination{root: filepath.Clean(root), opt: o, dirsOK: map[string]bool{}, newDirs: map[string]bool{}}
	d.gc.d = d
	return d
}

func (d *LocalDestination) String() string { return d.root }

// Path maps a key to its file, or fails with *EscapeError.
func (d *LocalDestination) Path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Stat returns the item at key (ErrNotFound if missing).
func (d *LocalDestination) Stat(ctx context.Context, key string) (Item, error) {
	p, err := d.Path(key)
	if err != nil {
		return Item{}, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Item{}, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return Item{}, err
	}
	it := Item{Key: key}
	if !fi.Mode().IsRegular() {
		it.Skipped = skipReason(fi.Mode())
		return it, nil
	}
	fillLocal(&it, fi)
	return it, nil
}

// ensureDir creates dir (below root) and checks that no component is a
// symlink, so a key cannot be steered out of the root.
func (d *LocalDestination) ensureDir(key, dir string) error {
	d.dirMu.Lock()
	defer d.dirMu.Unlock()
	if d.dirsOK[dir] {
		return nil
	}
	if _, err := os.Stat(d.root); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(d.root, 0o755); err != nil {
			return fmt.Errorf("create destination %s: %w", d.root, err)
		}
		d.newDirs[d.root] = true
	}
	rel, err := filepath.Rel(d.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return &EscapeError{Key: key, Reason: "outside the destination root"}
	}
	cur := d.root
	if rel != "." {
		for _, seg := range strings.Split(rel, string(filepath.Separator)) {
			cur = filepath.Join(cur, seg)
			if d.dirsOK[cur] {
				continue
			}
			fi, err := os.Lstat(cur)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("create directory %s: %w", cur, err)
				}
				d.newDirs[cur] = true
			case err != nil:
				return fmt.Errorf("stat %s: %w", cur, err)
			case fi.Mode()&fs.ModeSymlink != 0:
				return &EscapeError{Key: key, Reason: "passes through symlink " + cur}
			case !fi.IsDir():
				return fmt.Errorf("key %q: %s is not a directory", key, cur)
			}
			d.dirsOK[cur] = true
		}
	}
	d.dirsOK[dir] = true
	return nil
}

// takeNewDirs returns the parents of directories created since the last
// call: their entries must be synced before files inside are durable.
func (d *LocalDestination) takeNewDirs() []string {
	d.dirMu.Lock()
	defer d.dirMu.Unlock()
	var out []string
	for dir := range d.newDirs {
		out = append(out, filepath.Dir(dir))
		delete(d.newDirs, dir)
	}
	return out
}

// Create starts a temporary file next to the final name.
func (d *LocalDestination) Create(ctx context.Context, key string, o CreateOptions) (Writer, error) {
	final, err := d.Path(key)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(final)
	if err := d.ensureDir(key, dir); err != nil {
		return nil, err
	}
	mode := o.Mode.Perm()
	fi, statErr := os.Lstat(final)
	switch {
	case o.IfMatch != "":
		if err := checkPrint(key, final, o.IfMatch); err != nil {
			return nil, err
		}
		if mode == 0 {
			mode = fi.Mode().Perm()
		}
	case statErr == nil && fi.IsDir():
		return nil, fmt.Errorf("create %s: is a directory", final)
	case statErr == nil && o.Overwrite == OverwriteNever:
		return nil, &ConflictError{Key: key, Reason: ConflictExists}
	}
	if mode == 0 {
		mode = 0o644
	}
	// The writer's PID in the name lets Cleanup tell a crashed run's
	// leftovers from a live run's files.
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", final, err)
	}
	return &localWriter{d: d, f: f, key: key, final: final, mode: mode, opt: o}, nil
}

// checkPrint fails with ConflictChanged unless final has fingerprint want.
func checkPrint(key, final string, want Fingerprint) error {
	fi, err := os.Lstat(final)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &ConflictError{Key: key, Reason: ConflictChanged, Want: want}
		}
		return fmt.Errorf("stat %s: %w", final, err)
	}
	if got := LocalFingerprint(fi); got != want || !fi.Mode().IsRegular() {
		return &ConflictError{Key: key, Reason: ConflictChanged, Want: want, Got: got}
	}
	return nil
}

type localWriter struct {
	d     *LocalDestination
	f     *os.File
	key   string
	final string
	mode  fs.FileMode
	opt   CreateOptions
	done  bool
	err   error
}

func (w *localWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: writer already committed or aborted", w.final)
	}
	n, err := w.f.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove temporary file %s: %w", w.f.Name(), err)
	}
	return nil
}

func (w *localWriter) Commit(ctx context.Context) error {
	if err := w.stage(ctx); err != nil {
		return err
	}
	if w.d.opt.Sync == SyncGroup {
		return w.d.gc.commit(w)
	}
	return w.placeNow()
}

// CommitAsync stages the output and returns at once; the channel yields
// Commit's result when the file is durable under its final name (or the
// commit failed). Under SyncGroup a single caller can thus keep many
// files in one sync batch. It implements AsyncCommitter.
func (w *localWriter) CommitAsync(ctx context.Context) <-chan error {
	ch := make(chan error, 1)
	if err := w.stage(ctx); err != nil {
		ch <- err
		return ch
	}
	if w.d.opt.Sync != SyncGroup {
		ch <- w.placeNow()
		return ch
	}
	r := w.d.gc.submit(w)
	go func() { <-r.done; ch <- r.err }()
	return ch
}

// stage closes the temporary file with its final mode (fsynced under
// SyncEach).
func (w *localWriter) stage(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("commit %s: writer already committed or aborted", w.final)
	}
	if w.err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.final, w.err)
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return err
	}
	err := w.f.Chmod(w.mode)
	if err == nil && w.d.opt.Sync == SyncEach {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.done = true
		os.Remove(w.f.Name())
		return fmt.Errorf("commit %s: %w", w.final, err)
	}
	w.done = true
	return nil
}

func (w *localWriter) placeNow() error {
	if err := w.place(); err != nil {
		return err
	}
	if w.d.opt.Sync == SyncEach {
		for _, dir := range append(w.d.takeNewDirs(), filepath.Dir(w.final)) {
			if err := syncDir(dir); err != nil {
				return fmt.Errorf("commit %s: %w", w.final, err)
			}
		}
	}
	return nil
}

// place renames the closed temporary file to its final name under the
// overwrite policy, removing the temporary file on failure.
func (w *localWriter) place() error {
	tmp := w.f.Name()
	var err error
	switch {
	case w.opt.IfMatch != "":
		// The window between this check and the rename is a few
		// microseconds; a writer landing in it is not detected.
		if err = checkPrint(w.key, w.final, w.opt.IfMatch); err == nil {
			err = os.Rename(tmp, w.final)
		}
	case w.opt.Overwrite == OverwriteAlways:
		err = os.Rename(tmp, w.final)
	default:
		err = renameNoReplace(tmp, w.final)
		if errors.Is(err, fs.ErrExist) {
			err = &ConflictError{Key: w.key, Reason: ConflictExists}
		}
	}
	if err != nil {
		os.Remove(tmp)
		var ce *ConflictError
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("commit %s: %w", w.final, err)
	}
	return nil
}

// renameNoReplace renames unless newpath exists (fs.ErrExist): with
// renameat2(RENAME_NOREPLACE), or link+unlink where the file system lacks it.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	if err := os.Link(oldpath, newpath); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Remove(oldpath)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Cleanup removes temporary files (TempPrefix) below root left by a
// crashed run: those whose writer process (the PID in the name) is gone,
// and those older than olderThan; pass
// 0 only when no other run can be writing below root. It returns the
// removed paths.
func Cleanup(ctx context.Context, root string, olderThan time.Duration) ([]string, error) {
	cutoff := time.Now().Add(-olderThan)
	var removed []string
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !de.Type().IsRegular() || !strings.HasPrefix(de.Name(), TempPrefix) {
			return nil
		}
		fi, err := de.Info()
		if err != nil || (!fi.ModTime().Before(cutoff) && !orphaned(de.Name())) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cleanup %s: %w", p, err)
		}
		removed = append(removed, p)
		return nil
	})
	return removed, err
}

var (
	_ Destination    = (*LocalDestination)(nil)
	_ AsyncCommitter = (*localWriter)(nil)
)

// tempPattern names temporary files after this process (see orphaned).
var tempPattern = TempPrefix + strconv.Itoa(os.Getpid()) + "-*"

// orphaned reports whether a temporary file's writer (the PID in its
// name) is no longer running.
func orphaned(name string) bool {
	rest := strings.TrimPrefix(name, TempPrefix)
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
