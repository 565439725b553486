package sources

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// heldBody is a request body over a buffer the writer reuses once the
// request returned. net/http may still read a request body after
// RoundTrip returned (an early answer such as a refused condition, while
// the body is still being written): release takes the body away under
// the same lock every read holds, so after release no byte of the buffer
// is read again - a late reader gets an error, never bytes of the next
// output placed in the recycled buffer. It seeks (the SDK hashes the
// body, then rewinds it; a retry rewinds it too) and writes itself out
// whole (WriterTo: one write per request, no intermediate copy).
type heldBody struct {
	mu sync.Mutex
	r  *bytes.Reader // nil once released
}

var errBodyReleased = errors.New("s3: request body read after its request returned")

func holdBody(b []byte) *heldBody { return &heldBody{r: bytes.NewReader(b)} }

func (h *heldBody) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r == nil {
		return 0, errBodyReleased
	}
	return h.r.Read(p)
}

func (h *heldBody) Seek(off int64, whence int) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r == nil {
		return 0, errBodyReleased
	}
	return h.r.Seek(off, whence)
}

func (h *heldBody) WriteTo(w io.Writer) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.r == nil {
		return 0, errBodyReleased
	}
	return h.r.WriteTo(w)
}

// release ends every access to the buffer; it waits for a read in
// progress.
func (h *heldBody) release() {
	h.mu.Lock()
	h.r = nil
	h.mu.Unlock()
}

// bufPool recycles the buffers of outputs sent with one PutObject across
// the outputs of a destination: most S3 outputs are far smaller than a
// part, and a fresh buffer per output cost its allocation plus a regrowth
// (a 64 KiB plaintext's ciphertext is a little over 64 KiB), ~100 µs per
// 64 KiB object. Buffers larger than maxPooled are left to the GC, so a
// pool holds at most a few MiB however large the outputs were.
type bufPool struct{ p sync.Pool }

const maxPooled = 1 << 20

func (bp *bufPool) get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func (bp *bufPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooled {
		return
	}
	bp.p.Put(&b)
}
