package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// TempPrefix starts the name of the temporary files a local Destination
// names (where it cannot use an unnamed O_TMPFILE), followed by the run's
// random id. A name with this prefix proves nothing: sources list such
// files as ordinary items, and only the run journal in StateDir lets
// Cleanup remove one.
const TempPrefix = ".encjob-tmp-"

// SourceOptions tune a Source.
type SourceOptions struct {
	Filter *Filter // nil: everything
	// FollowSymlinks follows symbolic links anywhere (loops are detected
	// and reported as skipped items). Without it every symlink below the
	// root is reported as skipped; a root that is itself a symlink is
	// always followed.
	FollowSymlinks bool
}

// LocalSource lists a file, a directory tree or a glob.
type LocalSource struct {
	loc     Location
	opt     SourceOptions
	glob    *Pattern
	rootDir atomic.Bool // the root was seen to be a directory (rootIsFile)
}

// NewLocalSource returns the source for a Kind Local location. The path
// is not touched until List, Stat or Open.
func NewLocalSource(loc Location, o SourceOptions) (*LocalSource, error) {
	if loc.Kind != Local {
		return nil, fmt.Errorf("sources: %s is not a local location", loc.Raw)
	}
	glob, err := locationGlob(loc)
	if err != nil {
		return nil, err
	}
	return &LocalSource{loc: loc, opt: o, glob: glob}, nil
}

func (s *LocalSource) String() string { return s.loc.Raw }

func (s *LocalSource) match(key string) bool {
	if s.glob != nil && !s.glob.Match(key) {
		return false
	}
	return s.opt.Filter.Match(key)
}

// List walks the tree in byte-wise lexicographic key order.
func (s *LocalSource) List(ctx context.Context, fn func(Item) error) error {
	return globList(s.loc, fn, func(fn func(Item) error) error { return s.list(ctx, fn) })
}

func (s *LocalSource) list(ctx context.Context, fn func(Item) error) error {
	root := s.loc.Path
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("source %s: %w", s.loc.Raw, err)
	}
	if !fi.IsDir() {
		if s.glob != nil {
			return fmt.Errorf("source %s: %s is not a directory", s.loc.Raw, root)
		}
		it := Item{Key: filepath.Base(root), IsSingle: true}
		if fi.Mode().IsRegular() {
			fillLocal(&it, fi)
		} else {
			it.Skipped = skipReason(fi.Mode())
		}
		return fn(it)
	}
	return s.walk(ctx, root, "", []fileID{idOf(fi)}, fn)
}

type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), uint64(st.Ino)}
	}
	return fileID{}
}

type walkEntry struct {
	name string
	sort string // name, or name+"/" for directories: gives global key order
	info fs.FileInfo
	link bool // reached through a followed symlink
	err  error
	skip string
}

func (s *LocalSource) walk(ctx context.Context, dir, rel string, ancestors []fileID, fn func(Item) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		if rel == "" {
			return fmt.Errorf("source %s: %w", s.loc.Raw, err)
		}
		return fn(Item{Key: strings.TrimSuffix(rel, "/"), Err: fmt.Errorf("list %s: %w", dir, err)})
	}
	ents := make([]walkEntry, 0, len(des))
	for _, de := range des {
		e := walkEntry{name: de.Name(), sort: de.Name()}
		p := filepath.Join(dir, e.name)
		switch {
		case de.Type()&fs.ModeSymlink != 0:
			if !s.opt.FollowSymlinks {
				e.skip = "symlink not followed"
				break
			}
			e.link = true
			e.info, e.err = os.Stat(p)
			if e.err == nil && e.info.IsDir() {
				e.sort += "/"
			}
		case de.IsDir():
			e.sort += "/"
			e.info, e.err = de.Info()
			if e.name == StateDir && isStateDir(p) {
				e.skip = stateSkip
			}
		default:
			e.info, e.err = de.Info()
		}
		ents = append(ents, e)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].sort < ents[j].sort })
	for _, e := range ents {
		key := rel + e.name
		p := filepath.Join(dir, e.name)
		var it Item
		switch {
		case e.err != nil:
			it = Item{Key: key, Err: statErr(p, e.err)}
		case e.skip != "":
			it = Item{Key: key, Skipped: e.skip}
		case e.info.IsDir():
			id := idOf(e.info)
			loop := false
			for _, a := range ancestors {
				loop = loop || a == id
			}
			if loop {
				it = Item{Key: key, Skipped: "symlink loop"}
				break
			}
			if err := s.walk(ctx, p, key+"/", append(ancestors, id), fn); err != nil {
				return err
			}
			continue
		case e.info.Mode().IsRegular():
			it = Item{Key: key}
			fillLocal(&it, e.info)
		default:
			it = Item{Key: key, Skipped: skipReason(e.info.Mode())}
		}
		if it.Err == nil && !s.match(key) {
			continue
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	return nil
}

// isStateDir reports whether the directory p is an encjob state directory
// (it holds the marker file; a user's directory of that name does not).
func isStateDir(p string) bool {
	fi, err := os.Lstat(filepath.Join(p, stateMarker))
	return err == nil && fi.Mode().IsRegular()
}

func skipReason(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (fifo)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symlink not followed"
	case m.IsDir():
		return "directory"
	}
	return "not a regular file"
}

func fillLocal(it *Item, fi fs.FileInfo) {
	it.Size = fi.Size()
	it.ModTime = fi.ModTime()
	it.Mode = fi.Mode().Perm()
	it.Print = LocalFingerprint(fi)
}

// LocalFingerprint is "local:dev:inode:mtime-ns:ctime-ns:size" of fi.
// The ctime is what makes it trustworthy: cp -p, rsync -t, tar x and
// touch -r all set the mtime back, but the kernel sets the ctime to "now"
// on every change of content or metadata and no system call sets it to
// an earlier value, so a restored file never gets an old print back.
func LocalFingerprint(fi fs.FileInfo) Fingerprint {
	if si, ok := fi.(statInfo); ok {
		var b [printBufLen]byte
		return Fingerprint(si.st.appendPrint(b[:0]))
	}
	id := idOf(fi)
	var ctime int64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return Fingerprint(fmt.Sprintf("local:%d:%d:%d:%d:%d", id.dev, id.ino, fi.ModTime().UnixNano(), ctime, fi.Size()))
}

// printBufLen holds any local fingerprint: "local:" and five decimal
// numbers of at most 20 digits with their separators.
const printBufLen = 6 + 5*21

// appendPrint appends st's LocalFingerprint, byte for byte what
// LocalFingerprint formats, without allocating: a pinned read compares
// it with the planned fingerprint three times per item.
func (st *fileStat) appendPrint(b []byte) []byte {
	b = append(b, "local:"...)
	b = strconv.AppendUint(b, st.dev, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, st.ino, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, st.mtimeNs, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, st.ctimeNs, 10)
	b = append(b, ':')
	return strconv.AppendInt(b, st.size, 10)
}

// hasPrint reports whether st's fingerprint is want.
func (st *fileStat) hasPrint(want Fingerprint) bool {
	var b [printBufLen]byte
	return string(st.appendPrint(b[:0])) == string(want)
}

// path maps a listed key to its file.
func (s *LocalSource) path(key string) (string, error) {
	if s.rootIsFile() {
		if key != filepath.Base(s.loc.Path) {
			return "", fmt.Errorf("source %s: key %q: %w", s.loc.Raw, key, ErrNotFound)
		}
		return s.loc.Path, nil
	}
	if err := CheckKey(key); err != nil {
		return "", fmt.Errorf("source %s: %w", s.loc.Raw, err)
	}
	return filepath.Join(s.loc.Path, filepath.FromSlash(key)), nil
}

// rootIsFile reports whether the source names a single file rather than
// a directory. Once it was seen to be a directory it is taken to stay
// one: every later open goes through a path below it, which fails by
// itself if it stopped being a directory (and a stat per item to ask
// again was a syscall for nothing).
func (s *LocalSource) rootIsFile() bool {
	if s.rootDir.Load() {
		return false
	}
	fi, err := os.Stat(s.loc.Path)
	if err == nil && fi.IsDir() {
		s.rootDir.Store(true)
	}
	return err == nil && !fi.IsDir()
}

// Stat returns the item at key.
func (s *LocalSource) Stat(ctx context.Context, key string) (Item, error) {
	p, err := s.path(key)
	if err != nil {
		return Item{}, err
	}
	fi, err := os.Lstat(p)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return Item{}, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 && (s.opt.FollowSymlinks || p == s.loc.Path) {
		fi, err = os.Stat(p)
	}
	if err != nil {
		return Item{}, err
	}
	it := Item{Key: key, IsSingle: p == s.loc.Path}
	if !fi.Mode().IsRegular() {
		it.Skipped = skipReason(fi.Mode())
		return it, nil
	}
	fillLocal(&it, fi)
	return it, nil
}

// Open opens key for reading. It refuses anything but a regular file and
// never blocks on a fifo.
func (s *LocalSource) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	return openLocal(p, !s.opt.FollowSymlinks && p != s.loc.Path)
}

// openLocal opens a regular file for reading (O_NONBLOCK, so a fifo
// cannot block the open; O_NOFOLLOW when asked) and keeps the fstat that
// proved it regular. It is read with plain read(2) on its descriptor, not
// through an *os.File: that would try to register every file with the
// network poller (a failing epoll_ctl per item) for nothing.
func openLocal(p string, noFollow bool) (*localFile, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if noFollow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(p, flags, 0)
	for errors.Is(err, unix.EINTR) {
		fd, err = unix.Open(p, flags, 0)
	}
	if err != nil {
		err = &fs.PathError{Op: "open", Path: p, Err: syscall.Errno(err.(unix.Errno))}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", p, ErrNotFound)
		}
		return nil, err
	}
	f := &localFile{fd: fd, name: p}
	st, err := f.fstat()
	if err == nil && !st.isReg() {
		err = fmt.Errorf("open %s: %s", p, skipReason(f.info(st).Mode()))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	f.opened = st
	return f, nil
}

// sequentialBytes is the size from which an input read whole is read
// with a larger read-ahead (see readsWhole).
const sequentialBytes = writebackChunk

// readsWhole says the file is about to be read whole, in order: a large
// one gets the doubled read-ahead window (FADV_SEQUENTIAL). A cold 256 MiB
// input read 1 MiB at a time came in 12-190% faster with it (6 of 6
// interleaved pairs on the benchmark VM, whose kernel reclaims page cache
// untouched for a minute). A hint: its failure changes nothing; small
// files skip the system call.
func (f *localFile) readsWhole() {
	if f.opened.size >= sequentialBytes {
		unix.Fadvise(f.fd, 0, 0, unix.FADV_SEQUENTIAL)
	}
}

// localFile is a regular file open for reading.
type localFile struct {
	fd     int
	name   string
	opened fileStat // fstat right after the open
}

func (f *localFile) Name() string { return f.name }

func (f *localFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(f.fd, p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Stat fstats the open file.
func (f *localFile) Stat() (fs.FileInfo, error) {
	st, err := f.fstat()
	if err != nil {
		return nil, err
	}
	return f.info(st), nil
}

func (f *localFile) fstat() (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return fileStat{}, &fs.PathError{Op: "fstat", Path: f.name, Err: err}
	}
	return statOf(&st), nil
}

func (f *localFile) info(st fileStat) statInfo { return statInfo{name: filepath.Base(f.name), st: st} }

func (f *localFile) Close() error {
	if f.fd < 0 {
		return fs.ErrClosed
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return err
}

// OpenHeader is Open: a local reader costs nothing beyond what is read.
func (s *LocalSource) OpenHeader(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.Open(ctx, key)
}

var _ Source = (*LocalSource)(nil)

// statErr names the path of a failed stat once: an *fs.PathError from
// os.Stat or DirEntry.Info already says "stat <path>: ..." (wrapping it
// again gave "stat x: stat x: ...").
func statErr(p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("stat %s: %w", p, err)
}
