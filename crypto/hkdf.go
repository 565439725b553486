package crypto

import (
	"crypto/subtle"
	"encoding"
	"hash"
)

// kdf is HKDF (RFC 5869) over one hash function, for the few short keys a
// message derives from its data key. crypto/hkdf.Key does one extraction
// per key and builds a new HMAC (two new digests, two pads) for every
// extraction and expansion; a committing message derives two keys from
// the same secret and salt, so here the pseudorandom key is extracted
// once, its HMAC key schedule (the hash states after the inner and outer
// pads) is computed once and restored for each key, and one pair of
// digests serves every HMAC of the message: 10 compression calls instead
// of 16 and 3 allocations instead of about 20 (HKDF was about a third of
// an unsigned 4 KiB message's CPU). The HMAC is RFC 2104's construction
// over the stdlib hash. TestKDFMatchesStdlib checks it against
// crypto/hkdf.
type kdf struct {
	inner, outer hash.Hash
	prk          [maxHashLen]byte
	prkLen       int
	fresh        bool // the hashes hold the PRK's pads and nothing else
	// The saved hash states after the PRK's pads (len 0 when the hash
	// cannot save its state: the pads are then hashed for every key).
	innerState, outerState []byte
	// Storage for the above and scratch for mac, here rather than on the
	// stack because the hash interface makes them escape.
	innerBuf, outerBuf [maxStateLen]byte
	ipad, opad         [maxBlockLen]byte
	sum                [maxHashLen]byte
}

// maxHashLen and maxBlockLen bound the hashes the suites use (SHA-512);
// maxStateLen bounds their saved states (204 bytes for SHA-512).
const (
	maxHashLen  = 64
	maxBlockLen = 128
	maxStateLen = 256
)

// Constant pads of RFC 2104.
var ipadBytes, opadBytes = pad(0x36), pad(0x5c)

func pad(b byte) (p [maxBlockLen]byte) {
	for i := range p {
		p[i] = b
	}
	return p
}

// newKDF extracts the pseudorandom key from secret with salt (nil: the
// RFC's string of zeros, which as an HMAC key is the same as no key).
// The caller must call clear when done.
func newKDF(newHash func() hash.Hash, secret, salt []byte) *kdf {
	k := &kdf{inner: newHash(), outer: newHash()}
	k.setKey(salt)
	k.inner.Write(secret)
	k.prkLen = len(k.finish(k.prk[:0]))
	k.setKey(k.prk[:k.prkLen])
	k.innerState = saveState(k.inner, k.innerBuf[:0])
	k.outerState = saveState(k.outer, k.outerBuf[:0])
	if k.innerState == nil || k.outerState == nil {
		k.innerState, k.outerState = nil, nil
	}
	k.fresh = true
	return k
}

// setKey starts an HMAC under key: the inner hash has taken the inner
// pad, the outer hash the outer pad.
func (k *kdf) setKey(key []byte) {
	bs := k.inner.BlockSize()
	clear(k.ipad[:])
	if len(key) > bs {
		k.outer.Reset()
		k.outer.Write(key)
		key = k.outer.Sum(k.sum[:0])
	}
	copy(k.ipad[:], key)
	subtle.XORBytes(k.opad[:bs], k.ipad[:bs], opadBytes[:bs])
	subtle.XORBytes(k.ipad[:bs], k.ipad[:bs], ipadBytes[:bs])
	k.inner.Reset()
	k.inner.Write(k.ipad[:bs])
	k.outer.Reset()
	k.outer.Write(k.opad[:bs])
	k.wipe()
}

// finish appends the HMAC of what the inner hash took since setKey (or
// a restore) to dst.
func (k *kdf) finish(dst []byte) []byte {
	in := k.inner.Sum(k.sum[:0])
	k.outer.Write(in)
	dst = k.outer.Sum(dst)
	k.wipe()
	return dst
}

// restart starts another HMAC under the PRK.
func (k *kdf) restart() {
	if k.fresh {
		k.fresh = false
		return
	}
	if k.innerState != nil &&
		k.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.innerState) == nil &&
		k.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(k.outerState) == nil {
		return
	}
	k.setKey(k.prk[:k.prkLen])
}

// saveState appends h's state to dst, or returns nil if h cannot.
func saveState(h hash.Hash, dst []byte) []byte {
	a, ok := h.(encoding.BinaryAppender)
	if _, ok2 := h.(encoding.BinaryUnmarshaler); !ok || !ok2 {
		return nil
	}
	s, err := a.AppendBinary(dst)
	if err != nil || len(s) > maxStateLen {
		return nil
	}
	return s
}

// expand returns n bytes of output keying material for info (n at most
// 255 hash lengths, as RFC 5869 allows).
func (k *kdf) expand(info []byte, n int) []byte {
	hl := k.outer.Size()
	if n > 255*hl {
		panic("crypto: HKDF output too long") // a suite constant, never input
	}
	out := make([]byte, 0, n+hl)
	var t []byte
	for i := byte(1); len(out) < n; i++ {
		k.restart()
		start := len(out)
		k.inner.Write(t)
		k.inner.Write(info)
		k.inner.Write([]byte{i})
		out = k.finish(out)
		t = out[start:]
	}
	clear(out[n:cap(out)])
	return out[:n:n]
}

// wipe zeroes the scratch that held key-derived bytes.
func (k *kdf) wipe() {
	clear(k.ipad[:])
	clear(k.opad[:])
	clear(k.sum[:])
}

// clear zeroes the pseudorandom key and the saved states.
func (k *kdf) clear() {
	clear(k.prk[:])
	clear(k.innerBuf[:])
	clear(k.outerBuf[:])
}
