package crypto

import "hash"

// asyncHash feeds the signature hash of a large signed message on its own
// goroutine, so that one core only hashes (the hash is serial: it is the
// one part of a signed message that cannot be split) while frames are
// opened and the I/O runs on the others. Decryptor.Read uses it; WriteTo
// uses a pipe instead, whose goroutines it ends itself before returning,
// while a reader may drop a Decryptor midway, so Read must not leave a
// goroutine waiting for more.
//
// Contract: write hands over b, which the caller must not modify until it
// is returned by a later write or by wait; the bytes are hashed in the
// order they were handed over. At most one write is being hashed at a
// time, so a caller alternating two buffers never waits unless the hash
// is the slower side. Each write runs on a goroutine of its own that
// exits when it is done: nothing is left running if the caller drops the
// message midway.
type asyncHash struct {
	h    hash.Hash
	done chan []byte // the buffer being hashed, when it is done
}

func newAsyncHash(h hash.Hash) *asyncHash { return &asyncHash{h: h} }

// write waits for the previous write to be hashed, starts hashing b and
// returns the previous buffer (nil if none) for reuse.
func (a *asyncHash) write(b []byte) []byte {
	prev := a.wait()
	done := make(chan []byte, 1)
	a.done = done
	h := a.h
	go func() { h.Write(b); done <- b }()
	return prev
}

// wait waits until everything handed over is hashed and returns the last
// buffer (nil if none was pending). The hash may be read after it.
func (a *asyncHash) wait() []byte {
	if a.done == nil {
		return nil
	}
	b := <-a.done
	a.done = nil
	return b
}
