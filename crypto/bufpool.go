package crypto

import (
	"bufio"
	"io"
	"math/bits"
	"sync"
)

// Buffers are kept from one message for the next: a 4 KiB message used to
// allocate (and the runtime to zero and later collect) about 8 KiB to
// encrypt and 90 KiB to decrypt, several times its own size, which at
// thousands of messages a second is a large part of their cost (the
// garbage collector's share above all). Buffers of 4 KiB to 1 MiB go back
// to a pool per power of two when a message ends; bigger ones are left
// to the collector. Plaintext is wiped before its buffer goes back.
//
// A pooled buffer travels in a box (*[]byte, what sync.Pool holds without
// allocating); boxes are interchangeable carriers, kept by the owner of
// the buffers in a boxes stack until it gives a buffer back.
const (
	minBufShift = 12 // 4 KiB
	maxBufShift = 20 // 1 MiB
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// takeBuf returns an empty buffer with room for at least n bytes and the
// box it came in (nil when it was made here).
func takeBuf(n int) ([]byte, *[]byte) {
	shift := max(minBufShift, bits.Len(uint(max(n, 1)-1)))
	if shift > maxBufShift {
		return make([]byte, 0, n), nil
	}
	if v := bufPools[shift-minBufShift].Get(); v != nil {
		box := v.(*[]byte)
		b := *box
		*box = nil
		return b[:0], box
	}
	return make([]byte, 0, 1<<shift), nil
}

// putBuf hands b back to the pool of the largest power of two it holds,
// in box (nil: a new box). The caller must not use b afterwards; wipe
// zeroes all of it first (for plaintext).
func putBuf(b []byte, box *[]byte, wipe bool) {
	shift := bits.Len(uint(cap(b))) - 1
	if shift < minBufShift || shift > maxBufShift {
		return
	}
	b = b[:0]
	if wipe {
		clear(b[:cap(b)])
	}
	if box == nil {
		box = new([]byte)
	}
	*box = b
	bufPools[shift-minBufShift].Put(box)
}

// boxes keeps the boxes of the pooled buffers an encryptor or decryptor
// holds, to carry them back.
type boxes struct {
	n int
	a [4]*[]byte
}

func (s *boxes) push(b *[]byte) {
	if b != nil && s.n < len(s.a) {
		s.a[s.n] = b
		s.n++
	}
}

func (s *boxes) pop() *[]byte {
	if s.n == 0 {
		return nil
	}
	s.n--
	b := s.a[s.n]
	s.a[s.n] = nil
	return b
}

// take is takeBuf keeping the box.
func (s *boxes) take(n int) []byte {
	b, box := takeBuf(n)
	s.push(box)
	return b
}

// put is putBuf with one of the kept boxes.
func (s *boxes) put(b []byte, wipe bool) {
	if cap(b) > 0 {
		putBuf(b, s.pop(), wipe)
	}
}

// readerSize is the buffer of the reader a decryptor reads a message
// through when its source is not a *bufio.Reader already.
const readerSize = 64 << 10

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// takeReader returns a pooled buffered reader over r.
func takeReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// putReader hands a reader from takeReader back. What is still buffered
// is the input's ciphertext, dropped with the reference to the input.
func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}
