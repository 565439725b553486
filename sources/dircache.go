package sources

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// maxCachedDirs bounds the directory descriptors a destination keeps open
// between outputs.
const maxCachedDirs = 256

// dirCache keeps the output directories of a LocalDestination open between
// outputs, so that writing a file into a directory already used costs one
// lstat per path component instead of a dup, an openat and a close per
// component (a small-file run writes thousands of files into each
// directory).
//
// Confinement is exactly that of walking the path afresh: a cached
// directory is used only after every component of its path was checked,
// from the root down and without following symlinks, to still be the very
// directory (device and inode) the cache opened through a confined walk. A
// component that was replaced - by a symlink, another directory, a file -
// makes the entry stale: it is dropped and the path walked again, which
// then fails or succeeds as a first walk would.
//
// Entries are reference counted: a writer holds its directory from Create
// to release, and every entry holds its parent. The cache closes
// unreferenced entries beyond maxCachedDirs, and all of them when the
// destination is garbage collected.
type dirCache struct {
	mu      sync.Mutex
	ops     fileOps
	entries map[string]*dirEntry
}

type dirEntry struct {
	dk       string // "" is the root
	fd       int
	dev, ino uint64
	parent   *dirEntry
	refs     int
	dead     bool // no longer in the map; closed when refs reach 0
}

func newDirCache(ops fileOps) *dirCache {
	return &dirCache{ops: ops, entries: map[string]*dirEntry{}}
}

// get returns the directory dk below the root rootFD (creating missing
// components with create; the parent of every directory it made is
// appended to *created as a new descriptor the caller closes). The caller
// releases the entry with put.
func (c *dirCache) get(rootFD int, dk string, create bool, created *[]int) (*dirEntry, error) {
	if dk == "" {
		// The root descriptor is fixed once the destination is locked
		// and is not the cache's to close.
		return &dirEntry{fd: rootFD, refs: 1}, nil
	}
	c.mu.Lock()
	e := c.entries[dk]
	if e != nil {
		e.refs++
	}
	c.mu.Unlock()
	if e != nil {
		if c.valid(e) {
			return e, nil
		}
		c.drop(e)
		c.put(e)
	}
	return c.open(rootFD, dk, create, created)
}

// valid checks, from the root down, that each component of e's path is
// still the directory the cache opened.
func (c *dirCache) valid(e *dirEntry) bool {
	if e.parent == nil {
		return true // the root itself
	}
	if !c.valid(e.parent) {
		return false
	}
	st, err := c.ops.lstat(e.parent.fd, baseKey(e.dk))
	return err == nil && st.isDir() && st.dev == e.dev && st.ino == e.ino
}

// open walks to dk through its (cached) parent, one confined openat, and
// caches the result.
func (c *dirCache) open(rootFD int, dk string, create bool, created *[]int) (*dirEntry, error) {
	parent, err := c.get(rootFD, dirKey(dk), create, created)
	if err != nil {
		return nil, err
	}
	seg := baseKey(dk)
	fd, made, err := c.ops.openDir(parent.fd, seg, create)
	if err != nil {
		c.put(parent)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, &EscapeError{Key: dk, Reason: "passes through " + seg + ", which is a symlink or not a directory"}
		}
		return nil, err
	}
	if made && created != nil {
		if pfd, err := c.ops.dup(parent.fd); err == nil {
			*created = append(*created, pfd)
		}
	}
	st, err := c.ops.fstat(fd)
	if err != nil {
		c.ops.close(fd)
		c.put(parent)
		return nil, err
	}
	e := &dirEntry{dk: dk, fd: fd, dev: st.dev, ino: st.ino, parent: parent, refs: 1}
	c.mu.Lock()
	if old := c.entries[dk]; old != nil {
		c.dropLocked(old)
	}
	c.entries[dk] = e
	c.evictLocked()
	c.mu.Unlock()
	return e, nil
}

// put releases a reference taken by get.
func (c *dirCache) put(e *dirEntry) {
	if e == nil || e.dk == "" {
		return
	}
	c.mu.Lock()
	c.putLocked(e)
	c.mu.Unlock()
}

func (c *dirCache) putLocked(e *dirEntry) {
	for e != nil && e.dk != "" {
		e.refs--
		if e.refs > 0 || !e.dead {
			return
		}
		c.ops.close(e.fd)
		e.fd = -1
		e = e.parent // the reference e held on its parent
	}
}

// drop takes a stale entry out of the cache.
func (c *dirCache) drop(e *dirEntry) {
	c.mu.Lock()
	c.dropLocked(e)
	c.mu.Unlock()
}

func (c *dirCache) dropLocked(e *dirEntry) {
	if e.dead {
		return
	}
	e.dead = true
	if c.entries[e.dk] == e {
		delete(c.entries, e.dk)
	}
	// The cache's own reference: closing waits for the holders.
	e.refs++
	c.putLocked(e)
}

// evictLocked closes unreferenced entries once the cache is over its
// bound (entries in use, or parents of entries, stay).
func (c *dirCache) evictLocked() {
	if len(c.entries) <= maxCachedDirs {
		return
	}
	for _, e := range c.entries {
		if e.refs == 0 {
			c.dropLocked(e)
		}
	}
}

// closeAll closes every cached descriptor (the destination is gone).
func (c *dirCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dk, e := range c.entries {
		if e.fd >= 0 {
			c.ops.close(e.fd)
			e.fd = -1
		}
		delete(c.entries, dk)
	}
}
