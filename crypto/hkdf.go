package crypto

import (
	"hash"
)

// kdf is HKDF (RFC 5869) over one hash function, for the few short keys a
// message derives from its data key. crypto/hkdf.Key does one extraction
// per key and builds a new HMAC (two new digests, two pads) for every
// extraction and expansion; a committing message derives two keys from
// the same secret and salt, so here the pseudorandom key is extracted
// once, and one pair of digests computes every HMAC of the message (12
// compression calls instead of 16 and 2 allocations instead of about 20:
// together about a third of an unsigned 4 KiB message's CPU). The HMAC is
// the construction of RFC 2104 over the stdlib hash; nothing here is
// secret-dependent in its timing except through the hash itself.
// TestKDFMatchesStdlib checks it against crypto/hkdf.
type kdf struct {
	inner, outer hash.Hash
	prk          [maxHashLen]byte
	prkLen       int
	// Scratch for mac, here rather than on its stack because the hash
	// interface makes them escape (one allocation instead of four per
	// HMAC).
	ipad, opad [maxBlockLen]byte
	sum        [maxHashLen]byte
}

// maxHashLen and maxBlockLen bound the hashes the suites use (SHA-512).
const (
	maxHashLen  = 64
	maxBlockLen = 128
)

// newKDF extracts the pseudorandom key from secret with salt (nil: the
// RFC's string of zeros, which as an HMAC key is the same as no key).
// The caller must call clear when done.
func newKDF(newHash func() hash.Hash, secret, salt []byte) *kdf {
	k := &kdf{inner: newHash(), outer: newHash()}
	k.prkLen = len(k.mac(k.prk[:0], salt, secret))
	return k
}

// mac appends HMAC(key, parts...) to dst.
func (k *kdf) mac(dst, key []byte, parts ...[]byte) []byte {
	bs := k.inner.BlockSize()
	ipad, opad := &k.ipad, &k.opad
	clear(ipad[:])
	clear(opad[:])
	if len(key) > bs {
		k.outer.Reset()
		k.outer.Write(key)
		key = k.outer.Sum(k.sum[:0])
	}
	copy(ipad[:bs], key)
	copy(opad[:bs], key)
	for i := range bs {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	k.inner.Reset()
	k.inner.Write(ipad[:bs])
	for _, p := range parts {
		k.inner.Write(p)
	}
	in := k.inner.Sum(k.sum[:0])
	k.outer.Reset()
	k.outer.Write(opad[:bs])
	k.outer.Write(in)
	dst = k.outer.Sum(dst)
	k.wipe()
	return dst
}

// expand returns n bytes of output keying material for info (n at most
// 255 hash lengths, as RFC 5869 allows).
func (k *kdf) expand(info []byte, n int) []byte {
	hl := k.outer.Size()
	if n > 255*hl {
		panic("crypto: HKDF output too long") // a suite constant, never input
	}
	prk := k.prk[:k.prkLen]
	out := make([]byte, 0, n+hl)
	var t []byte
	for i := byte(1); len(out) < n; i++ {
		start := len(out)
		out = k.mac(out, prk, t, info, []byte{i})
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

// clear zeroes the pseudorandom key.
func (k *kdf) clear() { clear(k.prk[:]) }
