package sources

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A large output is written past the page cache. From directFrom bytes
// on (from the first byte when CreateOptions.Size says it will have that
// many), a local output's descriptor is switched to O_DIRECT and its
// bytes are gathered in an aligned buffer of directBufBytes, written to
// the disk whole; the last partial block goes through the page cache again
// at the commit (O_DIRECT writes whole blocks only).
//
// Why: a buffered write of a large file costs a fresh page-cache page per
// 4 KiB, its copy, and the kernel's writeback later, all on the cores the
// engine needs. On the 2-vCPU benchmark VM fresh pages are dearer still
// (each first touch of guest memory is a fault in the host): dd of
// 256 MiB took 0.61-0.71 s of system time buffered into fresh pages,
// 0.05-0.07 s into just-freed ones and 0.03-0.05 s with oflag=direct;
// a signed 256 MiB decrypt ran at 250-410 MB/s to disk against 440-480
// to tmpfs, the hash core losing its time to the writes' kernel work. A
// bulk job's outputs are not read back soon, so keeping them out of the
// page cache also leaves the cache to the inputs.
//
// Durability is unchanged: O_DIRECT bypasses the page cache, not the
// disk's volatile cache, and makes no metadata durable; the commit's
// syncfs or fsync still flushes both before the file is named. A file
// system that refuses O_DIRECT (EINVAL, as tmpfs before Linux 6.6 and
// some FUSE and network file systems do) keeps the buffered writes.
const (
	directFrom     = 8 << 20
	directBufBytes = 1 << 20
	directAlign    = 4096 // a multiple of every logical block size Linux has
)

// directBufs pools the aligned buffers (each with its backing slice,
// which keeps it alive).
var directBufs = sync.Pool{New: func() any { return newDirectBuf() }}

type directBuf struct {
	raw []byte
	b   []byte // raw's aligned window of directBufBytes
}

func newDirectBuf() *directBuf {
	raw := make([]byte, directBufBytes+directAlign)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & (directAlign - 1))
	return &directBuf{raw: raw, b: raw[off : off+directBufBytes : off+directBufBytes]}
}

// directOut is a localWriter's O_DIRECT state: buf holds n bytes not
// written yet, which follow the file's (aligned) offset.
type directOut struct {
	buf *directBuf
	n   int
}

// maybeDirect switches w to O_DIRECT once directFrom bytes are written,
// or from the start when the size hint (CreateOptions.Size) says the
// output will be that large, at an aligned file offset (written counts
// every byte at the descriptor's offset: range copies end the mode for
// good, see endDirect). It reports whether the writer is in the mode.
func (w *localWriter) maybeDirect() bool {
	if w.dio != nil {
		return true
	}
	if w.dioOff || w.written < directFrom && w.opt.Size < directFrom || w.written%directAlign != 0 {
		return false
	}
	w.dioOff = true // one attempt per output
	if _, real := w.d.st.ops.(unixOps); !real || w.d.opt.Sync == SyncNone {
		return false // a test file system records its writes; tmpfs rows
	}
	if err := setDirectFlag(w.fd, true); err != nil {
		return false
	}
	w.dio = &directOut{buf: directBufs.Get().(*directBuf)}
	return true
}

// writeDirect gathers p and writes every full buffer.
func (w *localWriter) writeDirect(p []byte) (int, error) {
	d := w.dio
	total := len(p)
	for len(p) > 0 {
		k := copy(d.buf.b[d.n:], p)
		d.n += k
		p = p[k:]
		if d.n == len(d.buf.b) {
			if err := w.flushDirect(d.n); err != nil {
				return total - len(p), err
			}
			if w.dio == nil { // refused: buffered from here on
				w.written += int64(total - len(p))
				n, err := w.writeBuffered(p)
				return total - len(p) + n, err
			}
		}
	}
	w.written += int64(total)
	return total, nil
}

// flushDirect writes the first m bytes of the buffer (a multiple of
// directAlign) and moves the rest to its front. A file system that
// accepted the flag but refuses the write (EINVAL) gets the bytes
// buffered, and so does everything after.
func (w *localWriter) flushDirect(m int) error {
	d := w.dio
	err := directWrite(w, d.buf.b[:m])
	if errors.Is(err, unix.EINVAL) {
		if err = setDirect(w.fd, false); err == nil {
			err = w.writeAll(d.buf.b[:m])
		}
		rest := d.buf.b[m:d.n]
		w.dropDirect()
		if err == nil && len(rest) > 0 {
			err = w.writeAll(rest)
		}
		return w.fail(err)
	}
	if err != nil {
		return w.fail(err)
	}
	d.n = copy(d.buf.b, d.buf.b[m:d.n])
	return nil
}

// endDirect writes what the buffer holds and returns the descriptor to
// buffered writes (the last partial block cannot be written direct);
// called before the commit and before a range copy, which writes at the
// descriptor's offset itself. No later write switches again.
func (w *localWriter) endDirect() error {
	w.dioOff = true
	d := w.dio
	if d == nil {
		return w.err
	}
	if whole := d.n &^ (directAlign - 1); whole > 0 {
		if err := w.flushDirect(whole); err != nil || w.dio == nil {
			return err
		}
	}
	err := setDirect(w.fd, false)
	if err == nil && d.n > 0 {
		err = w.writeAll(d.buf.b[:d.n])
	}
	w.dropDirect()
	return w.fail(err)
}

// dropDirect returns the buffer, wiped (it held plaintext when the
// output is a decryption), to the pool.
func (w *localWriter) dropDirect() {
	if w.dio == nil {
		return
	}
	clear(w.dio.buf.b)
	directBufs.Put(w.dio.buf)
	w.dio = nil
}

func (w *localWriter) writeAll(p []byte) error {
	_, err := w.d.st.ops.write(w.fd, p)
	return err
}

// fail records err (the first one) as the writer's, naming the output,
// and returns it; nil stays nil.
func (w *localWriter) fail(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("write %s: %w", w.final, err)
	if w.err == nil {
		w.err = err
	}
	return err
}

// setDirectFlag and directWrite are variables so that a test can refuse
// O_DIRECT as a file system would.
var (
	setDirectFlag = setDirect
	directWrite   = (*localWriter).writeAll
)

// setDirect turns O_DIRECT on or off for fd.
func setDirect(fd int, on bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}
