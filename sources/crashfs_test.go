package sources

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// crashFS is an in-memory file system implementing fileOps that records
// every mutating operation and keeps, beside the live state, what a crash
// would leave: file contents and metadata only as of their last fsync or
// syncfs, directory entries as of their directory's last fsync or syncfs
// ("pessimistic") or as of now ("eager": every namespace operation
// durable at once, file data still only when synced). After crashAt
// mutating operations it plays dead: every call fails with EIO and
// changes nothing, as if the process had been killed there.
type crashFS struct {
	mu      sync.Mutex
	inodes  map[uint64]*cnode
	fds     map[int]*cfd
	nextIno uint64
	nextFD  int
	clock   int64
	rootIno uint64

	noTmpfile bool
	crashAt   int // -1: never

	// raceName, when set, is replaced by another writer (a new, synced
	// inode holding "EXTERNAL") right before encjob's first exchange
	// with it; raced tells that it happened.
	raceName string
	raced    bool

	// nfsFlock makes flock on a directory fail with EBADF, as NFS's
	// emulation with write locks does.
	nfsFlock bool
	ops      []string
}

type cnode struct {
	ino     uint64
	dir     bool
	data    []byte
	mode    uint32
	mtime   int64
	ctime   int64
	entries map[string]uint64

	// durable copies
	durData    []byte
	durMode    uint32
	durMtime   int64
	durCtime   int64
	durEntries map[string]uint64

	lockedBy int // fd holding flock, 0 for none
}

type cfd struct {
	ino    uint64
	append bool
}

const crashDev = 42

func newCrashFS() *crashFS {
	f := &crashFS{inodes: map[uint64]*cnode{}, fds: map[int]*cfd{}, nextIno: 100, nextFD: 3, crashAt: -1}
	r := f.newNode(true, 0o755)
	f.rootIno = r.ino
	return f
}

func (f *crashFS) newNode(dir bool, mode uint32) *cnode {
	f.nextIno++
	f.clock++
	n := &cnode{ino: f.nextIno, dir: dir, mode: mode, mtime: f.clock, ctime: f.clock,
		durMode: mode, durMtime: f.clock, durCtime: f.clock}
	if dir {
		n.entries, n.durEntries = map[string]uint64{}, map[string]uint64{}
	}
	f.inodes[n.ino] = n
	return n
}

var errCrashed = unix.EIO

// step records a mutating op; false once the crash point is reached.
func (f *crashFS) step(format string, a ...any) bool {
	if f.crashAt >= 0 && len(f.ops) >= f.crashAt {
		return false
	}
	f.ops = append(f.ops, fmt.Sprintf(format, a...))
	return true
}

func (f *crashFS) dead() bool { return f.crashAt >= 0 && len(f.ops) >= f.crashAt }

func (f *crashFS) node(fd int) (*cnode, error) {
	d, ok := f.fds[fd]
	if !ok {
		return nil, unix.EBADF
	}
	return f.inodes[d.ino], nil
}

func (f *crashFS) dirNode(fd int) (*cnode, error) {
	n, err := f.node(fd)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, unix.ENOTDIR
	}
	return n, nil
}

func (f *crashFS) open(ino uint64, app bool) int {
	f.nextFD++
	f.fds[f.nextFD] = &cfd{ino: ino, append: app}
	return f.nextFD
}

func (f *crashFS) stat(n *cnode) fileStat {
	mode := n.mode
	if n.dir {
		mode |= unix.S_IFDIR
	} else {
		mode |= unix.S_IFREG
	}
	st := fileStat{dev: crashDev, ino: n.ino, size: int64(len(n.data)), mtimeNs: n.mtime, ctimeNs: n.ctime, mode: mode}
	st.sys.Dev, st.sys.Ino, st.sys.Size, st.sys.Mode = crashDev, n.ino, st.size, mode
	st.sys.Mtim = unix.NsecToTimespec(n.mtime)
	st.sys.Ctim = unix.NsecToTimespec(n.ctime)
	return st
}

func (f *crashFS) tick(n *cnode) { f.clock++; n.mtime, n.ctime = f.clock, f.clock }

func (f *crashFS) openRoot(path string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return -1, errCrashed
	}
	return f.open(f.rootIno, false), nil
}

func (f *crashFS) openDir(dir int, name string, create bool) (int, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return -1, false, errCrashed
	}
	d, err := f.dirNode(dir)
	if err != nil {
		return -1, false, err
	}
	if ino, ok := d.entries[name]; ok {
		if !f.inodes[ino].dir {
			return -1, false, unix.ENOTDIR
		}
		return f.open(ino, false), false, nil
	}
	if !create {
		return -1, false, unix.ENOENT
	}
	if !f.step("mkdir %d/%s", d.ino, name) {
		return -1, false, errCrashed
	}
	n := f.newNode(true, 0o755)
	d.entries[name] = n.ino
	f.tick(d)
	return f.open(n.ino, false), true, nil
}

func (f *crashFS) openTmp(dir int, mode uint32) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return -1, errCrashed
	}
	if f.noTmpfile {
		return -1, errNoTmpfile
	}
	if _, err := f.dirNode(dir); err != nil {
		return -1, err
	}
	if !f.step("tmpfile") {
		return -1, errCrashed
	}
	n := f.newNode(false, mode&0o7777)
	return f.open(n.ino, false), nil
}

func (f *crashFS) createExcl(dir int, name string, mode uint32) (int, error) {
	return f.openFile(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, mode)
}

func (f *crashFS) openFile(dir int, name string, flags int, mode uint32) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return -1, errCrashed
	}
	d, err := f.dirNode(dir)
	if err != nil {
		return -1, err
	}
	ino, ok := d.entries[name]
	switch {
	case ok && flags&unix.O_EXCL != 0:
		return -1, unix.EEXIST
	case !ok && flags&unix.O_CREAT == 0:
		return -1, unix.ENOENT
	case !ok:
		if !f.step("create %d/%s", d.ino, name) {
			return -1, errCrashed
		}
		n := f.newNode(false, mode&0o777)
		d.entries[name] = n.ino
		f.tick(d)
		ino = n.ino
	}
	if f.inodes[ino].dir {
		return -1, unix.EISDIR
	}
	if ok && flags&unix.O_TRUNC != 0 {
		if !f.step("truncate %d", ino) {
			return -1, errCrashed
		}
		f.inodes[ino].data = nil
		f.tick(f.inodes[ino])
	}
	return f.open(ino, flags&unix.O_APPEND != 0 || flags&unix.O_ACCMODE != unix.O_RDONLY), nil
}

func (f *crashFS) write(fd int, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.node(fd)
	if err != nil {
		return 0, err
	}
	if !f.step("write %d %d", n.ino, len(p)) {
		return 0, errCrashed
	}
	n.data = append(n.data, p...)
	f.tick(n)
	return len(p), nil
}

func (f *crashFS) pread(fd int, p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return 0, errCrashed
	}
	n, err := f.node(fd)
	if err != nil {
		return 0, err
	}
	if off >= int64(len(n.data)) {
		return 0, nil
	}
	return copy(p, n.data[off:]), nil
}

func (f *crashFS) syncNode(n *cnode) {
	n.durData = append([]byte(nil), n.data...)
	n.durMode, n.durMtime, n.durCtime = n.mode, n.mtime, n.ctime
	if n.dir {
		n.durEntries = map[string]uint64{}
		for k, v := range n.entries {
			n.durEntries[k] = v
		}
	}
}

// writeback is a hint that makes nothing durable: no step of the model.
func (f *crashFS) writeback(fd int, off, n int64) {}

// datasync makes a file's bytes durable, not its mode or times.
func (f *crashFS) datasync(fd int) error {
	return f.syncFD(fd, "fdatasync", func(n *cnode) { n.durData = append([]byte(nil), n.data...) })
}

func (f *crashFS) fsync(fd int) error { return f.syncFD(fd, "fsync", f.syncNode) }

// syncFD is one step named op that makes what sync says of fd's inode durable.
func (f *crashFS) syncFD(fd int, op string, sync func(*cnode)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.node(fd)
	if err != nil {
		return err
	}
	if !f.step(op+" %d", n.ino) {
		return errCrashed
	}
	sync(n)
	return nil
}

func (f *crashFS) syncfs(fd int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.step("syncfs") {
		return errCrashed
	}
	for _, n := range f.inodes {
		f.syncNode(n)
	}
	return nil
}

func (f *crashFS) fchmod(fd int, mode uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.node(fd)
	if err != nil {
		return err
	}
	if !f.step("fchmod %d %o", n.ino, mode) {
		return errCrashed
	}
	n.mode = mode & 0o7777
	f.clock++
	n.ctime = f.clock
	return nil
}

func (f *crashFS) ftruncate(fd int, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.node(fd)
	if err != nil {
		return err
	}
	if !f.step("ftruncate %d", n.ino) {
		return errCrashed
	}
	n.data = n.data[:min(int64(len(n.data)), size)]
	f.tick(n)
	return nil
}

func (f *crashFS) fstat(fd int) (fileStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return fileStat{}, errCrashed
	}
	n, err := f.node(fd)
	if err != nil {
		return fileStat{}, err
	}
	return f.stat(n), nil
}

func (f *crashFS) lstat(dir int, name string) (fileStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return fileStat{}, errCrashed
	}
	d, err := f.dirNode(dir)
	if err != nil {
		return fileStat{}, err
	}
	ino, ok := d.entries[name]
	if !ok {
		return fileStat{}, unix.ENOENT
	}
	return f.stat(f.inodes[ino]), nil
}

func (f *crashFS) link(fd int, dir int, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.node(fd)
	if err != nil {
		return err
	}
	d, err := f.dirNode(dir)
	if err != nil {
		return err
	}
	if _, ok := d.entries[name]; ok {
		return unix.EEXIST
	}
	if !f.step("link %d -> %d/%s", n.ino, d.ino, name) {
		return errCrashed
	}
	d.entries[name] = n.ino
	f.tick(d)
	return nil
}

func (f *crashFS) rename(od int, on string, nd int, nn string, flags uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.dirNode(od)
	if err != nil {
		return err
	}
	n, err := f.dirNode(nd)
	if err != nil {
		return err
	}
	src, ok := o.entries[on]
	if !ok {
		return unix.ENOENT
	}
	if flags == unix.RENAME_EXCHANGE && nn == f.raceName && !f.raced && !f.dead() {
		f.raced = true
		x := f.newNode(false, 0o644)
		x.data = []byte("EXTERNAL")
		f.syncNode(x)
		n.entries[nn] = x.ino
		f.syncNode(n)
	}
	dst, exists := n.entries[nn]
	switch flags {
	case unix.RENAME_NOREPLACE:
		if exists {
			return unix.EEXIST
		}
	case unix.RENAME_EXCHANGE:
		if !exists {
			return unix.ENOENT
		}
	}
	if !f.step("rename %d/%s -> %d/%s flags %d", o.ino, on, n.ino, nn, flags) {
		return errCrashed
	}
	if flags == unix.RENAME_EXCHANGE {
		o.entries[on], n.entries[nn] = dst, src
	} else {
		delete(o.entries, on)
		n.entries[nn] = src
	}
	f.tick(o)
	f.tick(n)
	return nil
}

func (f *crashFS) unlink(dir int, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.dirNode(dir)
	if err != nil {
		return err
	}
	if _, ok := d.entries[name]; !ok {
		return unix.ENOENT
	}
	if !f.step("unlink %d/%s", d.ino, name) {
		return errCrashed
	}
	delete(d.entries, name)
	f.tick(d)
	return nil
}

func (f *crashFS) readDir(dir int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return nil, errCrashed
	}
	d, err := f.dirNode(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range d.entries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (f *crashFS) flock(fd int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return errCrashed
	}
	n, err := f.node(fd)
	if err != nil {
		return err
	}
	if n.dir && f.nfsFlock {
		return unix.EBADF
	}
	if n.lockedBy != 0 && n.lockedBy != fd {
		if _, open := f.fds[n.lockedBy]; open {
			return unix.EWOULDBLOCK
		}
	}
	n.lockedBy = fd
	return nil
}

func (f *crashFS) dup(fd int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead() {
		return -1, errCrashed
	}
	d, ok := f.fds[fd]
	if !ok {
		return -1, unix.EBADF
	}
	return f.open(d.ino, d.append), nil
}

func (f *crashFS) close(fd int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fds, fd)
	return nil
}

// image is the file system a reboot after the crash would show: what is
// reachable from the root through durable (or, eager, all) directory
// entries, with durable file contents; open files, unnamed files and
// locks are gone. Inode numbers are kept (the journal records them).
func (f *crashFS) image(eager bool) *crashFS {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &crashFS{inodes: map[uint64]*cnode{}, fds: map[int]*cfd{}, nextIno: f.nextIno, nextFD: 3,
		clock: f.clock + 1000, rootIno: f.rootIno, noTmpfile: f.noTmpfile, crashAt: -1}
	var walk func(ino uint64)
	walk = func(ino uint64) {
		if _, done := g.inodes[ino]; done {
			return
		}
		n := f.inodes[ino]
		c := &cnode{ino: ino, dir: n.dir, data: append([]byte(nil), n.durData...), mode: n.durMode,
			mtime: n.durMtime, ctime: n.durCtime}
		if n.dir {
			ents := n.durEntries
			if eager {
				ents = n.entries
			}
			c.entries = map[string]uint64{}
			for k, v := range ents {
				c.entries[k] = v
			}
		}
		g.inodes[ino] = c
		g.syncNode(c)
		for _, v := range c.entries {
			walk(v)
		}
	}
	walk(f.rootIno)
	return g
}

// files lists every regular file by path with its content.
func (f *crashFS) files() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	var walk func(ino uint64, prefix string)
	walk = func(ino uint64, prefix string) {
		for name, c := range f.inodes[ino].entries {
			p := prefix + name
			if f.inodes[c].dir {
				walk(c, p+"/")
			} else {
				out[p] = string(f.inodes[c].data)
			}
		}
	}
	walk(f.rootIno, "")
	return out
}

// put creates a file (and its directories) durably, before the test run.
func (f *crashFS) put(path, data string, mode uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.inodes[f.rootIno]
	parts := strings.Split(path, "/")
	for _, seg := range parts[:len(parts)-1] {
		ino, ok := d.entries[seg]
		if !ok {
			n := f.newNode(true, 0o755)
			d.entries[seg] = n.ino
			ino = n.ino
		}
		d = f.inodes[ino]
	}
	n := f.newNode(false, mode)
	n.data = []byte(data)
	d.entries[parts[len(parts)-1]] = n.ino
	for _, x := range f.inodes {
		f.syncNode(x)
	}
}

var _ fileOps = (*crashFS)(nil)
var _ = errors.New
