package sources

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileOps is every file system operation the local commit protocol, the
// run journal and recovery use. All names are single path components
// relative to a directory descriptor (never a path with a "/"), so no
// operation can follow a symlink or ".." out of the destination root. The
// production implementation is unixOps; the crash tests substitute a
// recording, crash-simulating one and check that every prefix of the
// recorded operations leaves a recoverable state.
type fileOps interface {
	// openRoot opens the destination root itself (a user-given path,
	// symlinks in it followed) as a directory.
	openRoot(path string) (int, error)
	// openDir opens the directory name inside dir without following a
	// symlink; with create it makes it first (mode 0777 &^ umask) and
	// reports whether it did.
	openDir(dir int, name string, create bool) (fd int, created bool, err error)
	// openTmp creates an unnamed file in dir (O_TMPFILE) with mode
	// (less the umask or a default ACL: callers check with fstat);
	// errNoTmpfile where the file system cannot.
	openTmp(dir int, mode uint32) (int, error)
	// createExcl creates name in dir (O_EXCL|O_NOFOLLOW), write-only.
	createExcl(dir int, name string, mode uint32) (int, error)
	// openFile opens name in dir with flags plus O_NOFOLLOW.
	openFile(dir int, name string, flags int, mode uint32) (int, error)
	write(fd int, p []byte) (int, error)
	pread(fd int, p []byte, off int64) (int, error)
	fsync(fd int) error
	// writeback starts writing n bytes of fd from off to the disk without
	// waiting (sync_file_range SYNC_FILE_RANGE_WRITE): a hint that makes
	// the later fsync or syncfs shorter; it makes nothing durable and its
	// failure changes nothing.
	writeback(fd int, off, n int64)
	// datasync makes fd's data durable (fdatasync): what a large output
	// has written so far, ahead of its commit (see durableChunk).
	datasync(fd int) error
	// syncfs makes everything on fd's file system durable.
	syncfs(fd int) error
	fchmod(fd int, mode uint32) error
	ftruncate(fd int, n int64) error
	fstat(fd int) (fileStat, error)
	// lstat stats name in dir without following a symlink.
	lstat(dir int, name string) (fileStat, error)
	// link gives the unnamed file fd the name name in dir, failing with
	// EEXIST if the name is taken.
	link(fd int, dir int, name string) error
	// rename is renameat2: flags 0, unix.RENAME_NOREPLACE or
	// unix.RENAME_EXCHANGE.
	rename(olddir int, oldname string, newdir int, newname string, flags uint) error
	unlink(dir int, name string) error
	// readDir lists the names in dir.
	readDir(dir int) ([]string, error)
	// flock takes an exclusive lock on fd without blocking
	// (EWOULDBLOCK if another open file description holds it).
	flock(fd int) error
	dup(fd int) (int, error)
	close(fd int) error
}

var errNoTmpfile = errors.New("O_TMPFILE not supported")

// fileStat is what the protocol compares: identity, size and times.
type fileStat struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
	ctimeNs  int64
	mode     uint32 // unix mode bits including the type
	sys      unix.Stat_t
}

// ident is the part of a fileStat the journal keeps: small, because the
// provenance index holds one per output.
type ident struct {
	dev, ino         uint64
	size             int64
	mtimeNs, ctimeNs int64
}

func (s fileStat) ident() ident {
	return ident{dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs}
}

func (i ident) fileStat() fileStat {
	return fileStat{dev: i.dev, ino: i.ino, size: i.size, mtimeNs: i.mtimeNs, ctimeNs: i.ctimeNs}
}

func (s fileStat) isReg() bool { return s.mode&unix.S_IFMT == unix.S_IFREG }
func (s fileStat) isDir() bool { return s.mode&unix.S_IFMT == unix.S_IFDIR }

// sameVersion reports whether two stats are one inode with unchanged
// size and mtime. ctime is left out on purpose: rename and link update
// it, so it cannot be compared across a commit.
func (s fileStat) sameVersion(o fileStat) bool {
	return s.dev == o.dev && s.ino == o.ino && s.size == o.size && s.mtimeNs == o.mtimeNs
}

func statOf(st *unix.Stat_t) fileStat {
	return fileStat{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtimeNs: st.Mtim.Nano(), ctimeNs: st.Ctim.Nano(), mode: st.Mode, sys: *st}
}

type unixOps struct{}

func (unixOps) openRoot(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func (unixOps) openDir(dir int, name string, create bool) (int, bool, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dir, name, flags, 0)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		return fd, false, err
	}
	created := true
	if err := unix.Mkdirat(dir, name, 0o777); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return -1, false, err
		}
		created = false
	}
	fd, err = unix.Openat(dir, name, flags, 0)
	return fd, created && err == nil, err
}

func (unixOps) openTmp(dir int, mode uint32) (int, error) {
	fd, err := unix.Openat(dir, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, mode)
	if err != nil && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT)) {
		return -1, errNoTmpfile
	}
	return fd, err
}

func (unixOps) createExcl(dir int, name string, mode uint32) (int, error) {
	return unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
}

func (unixOps) openFile(dir int, name string, flags int, mode uint32) (int, error) {
	return unix.Openat(dir, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
}

func (unixOps) write(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(fd, p[n:])
		if m > 0 {
			n += m
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (unixOps) pread(fd int, p []byte, off int64) (int, error) { return unix.Pread(fd, p, off) }
func (unixOps) fsync(fd int) error                             { return unix.Fsync(fd) }
func (unixOps) datasync(fd int) error                          { return unix.Fdatasync(fd) }
func (unixOps) syncfs(fd int) error                            { return unix.Syncfs(fd) }
func (unixOps) fchmod(fd int, mode uint32) error               { return unix.Fchmod(fd, mode) }
func (unixOps) ftruncate(fd int, n int64) error                { return unix.Ftruncate(fd, n) }

func (unixOps) fstat(fd int) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileStat{}, err
	}
	return statOf(&st), nil
}

func (unixOps) lstat(dir int, name string) (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileStat{}, err
	}
	return statOf(&st), nil
}

func (unixOps) link(fd int, dir int, name string) error {
	// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc/self/fd
	// spelling does the same for any process (linkat(2)).
	err := unix.Linkat(fd, "", dir, name, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), dir, name, unix.AT_SYMLINK_FOLLOW)
	}
	return err
}

func (unixOps) rename(olddir int, oldname string, newdir int, newname string, flags uint) error {
	return unix.Renameat2(olddir, oldname, newdir, newname, flags)
}

func (unixOps) unlink(dir int, name string) error { return unix.Unlinkat(dir, name, 0) }

func (unixOps) readDir(dir int) ([]string, error) {
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

func (unixOps) flock(fd int) error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }
func (unixOps) close(fd int) error { return unix.Close(fd) }

func (unixOps) dup(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// statInfo presents a fileStat as an fs.FileInfo whose Sys is a
// *syscall.Stat_t, so LocalFingerprint reads it as it reads an os.Lstat.
type statInfo struct {
	name string
	st   fileStat
}

// unix.Stat_t mirrors the kernel's struct stat exactly as syscall.Stat_t
// does; the conversion below relies on it.
var _ [unsafe.Sizeof(unix.Stat_t{}) - unsafe.Sizeof(syscall.Stat_t{})]struct{}
var _ [unsafe.Sizeof(syscall.Stat_t{}) - unsafe.Sizeof(unix.Stat_t{})]struct{}

func (i statInfo) Name() string       { return i.name }
func (i statInfo) Size() int64        { return i.st.size }
func (i statInfo) ModTime() time.Time { return time.Unix(0, i.st.mtimeNs) }
func (i statInfo) IsDir() bool        { return i.st.isDir() }
func (i statInfo) Sys() any {
	st := i.st.sys
	return (*syscall.Stat_t)(unsafe.Pointer(&st))
}
func (i statInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.st.mode & 0o777)
	switch i.st.mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if i.st.mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.st.mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.st.mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (unixOps) writeback(fd int, off, n int64) {
	unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}
