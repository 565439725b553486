package sources

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// After release no byte of the buffer is read again, by Read, Seek or
// WriteTo: a late reader of a recycled buffer gets an error.
func TestHeldBodyRelease(t *testing.T) {
	buf := []byte("ciphertext of one output")
	h := holdBody(buf)
	p := make([]byte, 4)
	if n, err := h.Read(p); n != 4 || err != nil {
		t.Fatalf("read before release: %d, %v", n, err)
	}
	if _, err := h.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	if _, err := h.WriteTo(&w); err != nil || w.String() != string(buf) {
		t.Fatalf("write to: %q, %v", w.String(), err)
	}
	h.Seek(0, io.SeekStart)
	h.release()
	copy(buf, "next output's bytes.....")
	w.Reset()
	_, rerr := h.Read(p)
	_, serr := h.Seek(0, io.SeekStart)
	n, werr := h.WriteTo(&w)
	for _, err := range []error{rerr, serr, werr} {
		if !errors.Is(err, errBodyReleased) {
			t.Fatalf("after release: %v, want errBodyReleased", err)
		}
	}
	if n != 0 || w.Len() != 0 {
		t.Fatalf("after release %d bytes were written out", n)
	}
}
