package ecsig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"filippo.io/bigmod"
)

func key(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignAndVerifyAgainstCryptoECDSA: crypto/ecdsa is the oracle both
// ways, for digests shorter than, as long as and longer than the order.
func TestSignAndVerifyAgainstCryptoECDSA(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P384(), elliptic.P256()} {
		for i := range 150 {
			priv := key(t, c)
			digest := make([]byte, []int{0, 20, 48, 64}[i%4])
			rand.Read(digest)
			sig, err := Sign(rand.Reader, priv, digest)
			if err != nil {
				t.Fatal(err)
			}
			if !ecdsa.VerifyASN1(&priv.PublicKey, digest, sig) {
				t.Fatalf("%s: crypto/ecdsa rejects our signature %x of %x", c.Params().Name, sig, digest)
			}
			if !Verify(&priv.PublicKey, digest, sig) {
				t.Fatalf("%s: we reject our signature", c.Params().Name)
			}
			std, err := ecdsa.SignASN1(rand.Reader, priv, digest)
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(&priv.PublicKey, digest, std) {
				t.Fatalf("%s: we reject crypto/ecdsa's signature %x of %x", c.Params().Name, std, digest)
			}
			if len(digest) > 0 {
				other := bytes.Clone(digest)
				other[0] ^= 1 // the first byte: a digest longer than the order is truncated
				if Verify(&priv.PublicKey, other, std) || Verify(&priv.PublicKey, other, sig) {
					t.Fatalf("%s: a signature verifies for another digest", c.Params().Name)
				}
			}
			if Verify(&key(t, c).PublicKey, digest, sig) {
				t.Fatalf("%s: a signature verifies under another key", c.Params().Name)
			}
		}
	}
}

// TestNoncesDiffer: a repeated nonce gives the private key away; two
// signatures of one digest must have different r.
func TestNoncesDiffer(t *testing.T) {
	priv := key(t, elliptic.P384())
	digest := sha512.Sum384([]byte("same"))
	seen := map[string]bool{}
	for range 50 {
		sig, err := Sign(rand.Reader, priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		var v signature
		if _, err := asn1.Unmarshal(sig, &v); err != nil {
			t.Fatal(err)
		}
		if seen[v.R.String()] {
			t.Fatalf("r repeated: %x", v.R)
		}
		seen[v.R.String()] = true
	}
}

// TestConcurrentSignersShareAKey: the caching materials manager hands one
// signing key to many messages at once; every signature, ours and
// crypto/ecdsa's, made concurrently with it must verify (clearing a
// buffer crypto/ecdsa shares broke exactly this).
func TestConcurrentSignersShareAKey(t *testing.T) {
	priv := key(t, elliptic.P384())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				digest := sha512.Sum384([]byte{byte(g), byte(i)})
				var sig []byte
				var err error
				if g%2 == 0 {
					sig, err = Sign(rand.Reader, priv, digest[:])
				} else {
					sig, err = ecdsa.SignASN1(rand.Reader, priv, digest[:])
				}
				if err != nil || !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
					errs <- fmt.Errorf("goroutine %d message %d: signature does not verify (%v)", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSignRejectsBadPrivateKeys(t *testing.T) {
	priv := key(t, elliptic.P384())
	for name, d := range map[string]*big.Int{"zero": new(big.Int), "n": new(big.Int).Set(order), "negative": new(big.Int).Neg(priv.D)} {
		bad := &ecdsa.PrivateKey{PublicKey: priv.PublicKey, D: d}
		if sig, err := Sign(rand.Reader, bad, make([]byte, 48)); err == nil {
			t.Errorf("%s: signed with d out of range: %x", name, sig)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestSignReaderError(t *testing.T) {
	priv := key(t, elliptic.P384())
	if sig, err := Sign(failingReader{}, priv, make([]byte, 48)); err == nil || sig != nil {
		t.Fatalf("signed without randomness: %x %v", sig, err)
	}
}

// TestReplayedReaderNeverRepeatsANonce: the nonce is hedged with the key
// and the digest, so a reader that repeats its bytes (or returns only
// zeros or only 0xff, which rejection sampling alone would loop on) still
// gives a fresh nonce per digest; the same digest gives the same
// signature.
func TestReplayedReaderNeverRepeatsANonce(t *testing.T) {
	priv := key(t, elliptic.P384())
	seed := make([]byte, 96)
	rand.Read(seed)
	for _, entropy := range [][]byte{seed, make([]byte, 96), bytes.Repeat([]byte{0xff}, 96)} {
		rs := map[string]string{}
		for i := range 4 {
			digest := sha512.Sum384([]byte{byte(i)})
			sig, err := Sign(bytes.NewReader(entropy), priv, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
				t.Fatalf("entropy %x: signature rejected", entropy[:4])
			}
			var v signature
			if _, err := asn1.Unmarshal(sig, &v); err != nil {
				t.Fatal(err)
			}
			if prev, ok := rs[v.R.String()]; ok {
				t.Fatalf("entropy %x: digests %s and %d share r: the key can be solved for", entropy[:4], prev, i)
			}
			rs[v.R.String()] = fmt.Sprint(i)
			again, _ := Sign(bytes.NewReader(entropy), priv, digest[:])
			if !bytes.Equal(again, sig) {
				t.Fatalf("entropy %x: same entropy, key and digest gave two signatures", entropy[:4])
			}
		}
	}
}

// TestSignWithNonceKnownAnswers pins the blinded inversion against math/big
// and crypto/elliptic at the edges of the scalar range: for every nonce k
// and blinding b, (r, s) must be (x(k·G) mod n, k⁻¹(e + r·d) mod n).
func TestSignWithNonceKnownAnswers(t *testing.T) {
	c := elliptic.P384()
	priv := key(t, c)
	d, _ := priv.Bytes()
	one := big.NewInt(1)
	edges := []*big.Int{one, big.NewInt(2), new(big.Int).Sub(order, one), new(big.Int).Sub(order, big.NewInt(2)), new(big.Int).Rsh(order, 1)}
	nat := func(x *big.Int) *bigmod.Nat {
		v, err := bigmod.NewNat().SetBytes(x.FillBytes(make([]byte, scalarLen)), orderMod)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i := range 60 {
		var k, b *big.Int
		if i < len(edges)*len(edges) {
			k, b = edges[i%len(edges)], edges[i/len(edges)]
		} else {
			k, _ = rand.Int(rand.Reader, new(big.Int).Sub(order, one))
			b, _ = rand.Int(rand.Reader, new(big.Int).Sub(order, one))
			k.Add(k, one)
			b.Add(b, one)
		}
		digest := make([]byte, []int{0, 1, 47, 48, 49, 64}[i%6])
		rand.Read(digest)
		if i%4 == 0 {
			for j := range digest {
				digest[j] = 0xff // e >= n before reduction
			}
		}
		r, s, err := signWithNonce(nat(k), nat(b), d, hashToNat(digest))
		if err != nil || r == nil {
			t.Fatalf("k=%x b=%x: %v", k, b, err)
		}
		x, _ := c.ScalarBaseMult(k.FillBytes(make([]byte, scalarLen)))
		wantR := new(big.Int).Mod(x, order)
		e := new(big.Int).SetBytes(digest[:min(len(digest), scalarLen)])
		wantS := new(big.Int).Mul(wantR, priv.D)
		wantS.Add(wantS, e).Mul(wantS, new(big.Int).ModInverse(k, order)).Mod(wantS, order)
		if new(big.Int).SetBytes(r).Cmp(wantR) != 0 || new(big.Int).SetBytes(s).Cmp(wantS) != 0 {
			t.Fatalf("k=%x b=%x digest=%x: got (%x, %x), want (%x, %x)", k, b, digest, r, s, wantR, wantS)
		}
	}
}

func der(t testing.TB, r, s *big.Int) []byte {
	b, err := asn1.Marshal(signature{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyAcceptsWhatCryptoECDSAAccepts: differential over every
// single-bit flip of real signatures and over crafted encodings at the
// edges of DER and of the scalar range; the two must agree on each.
func TestVerifyAcceptsWhatCryptoECDSAAccepts(t *testing.T) {
	priv := key(t, elliptic.P384())
	pub := &priv.PublicKey
	digest := sha512.Sum384([]byte("message"))
	n := elliptic.P384().Params().N
	var cases [][]byte
	for range 3 {
		sig, _ := Sign(rand.Reader, priv, digest[:])
		cases = append(cases, sig)
		for i := range len(sig) * 8 {
			flipped := bytes.Clone(sig)
			flipped[i/8] ^= 1 << (i % 8)
			cases = append(cases, flipped)
		}
	}
	sig, _ := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	var v signature
	if _, err := asn1.Unmarshal(sig, &v); err != nil {
		t.Fatal(err)
	}
	one := big.NewInt(1)
	highS := new(big.Int).Sub(n, v.S) // (r, n-s) is valid too
	cases = append(cases,
		der(t, v.R, highS),
		der(t, big.NewInt(0), v.S), der(t, v.R, big.NewInt(0)),
		der(t, n, v.S), der(t, v.R, n),
		der(t, new(big.Int).Add(v.R, n), v.S), der(t, v.R, new(big.Int).Add(v.S, n)),
		der(t, new(big.Int).Neg(v.R), v.S), der(t, v.R, new(big.Int).Neg(v.S)),
		der(t, one, one), der(t, new(big.Int).Sub(n, one), new(big.Int).Sub(n, one)),
		append(bytes.Clone(sig), 0), // trailing byte
		sig[:len(sig)-1],            // truncated
		nil, []byte{0x30, 0x00}, []byte{0x30, 0x03, 0x02, 0x01, 0x01},
	)
	// An extra INTEGER inside the SEQUENCE.
	extra, _ := asn1.Marshal(struct{ R, S, X *big.Int }{v.R, v.S, one})
	cases = append(cases, extra)
	// A non-minimal INTEGER: r with one more leading zero byte than DER
	// allows (r's minimal content starts with 0x00 already when its top bit
	// is set).
	rc, _ := asn1.Marshal(v.R) // 0x02 len content
	sc, _ := asn1.Marshal(v.S)
	inner := append([]byte{0x02, rc[1] + 1, 0}, rc[2:]...)
	inner = append(inner, sc...)
	cases = append(cases, append([]byte{0x30, byte(len(inner))}, inner...))
	// r = -e/d: e + r·d = 0, so u1·G + u2·Q is the point at infinity
	// whatever s is; and e = 0 (an all-zero digest) with a real signature.
	e := new(big.Int).SetBytes(digest[:])
	inf := new(big.Int).Mul(e, new(big.Int).ModInverse(priv.D, n))
	inf.Neg(inf).Mod(inf, n)
	cases = append(cases, der(t, inf, v.S), der(t, inf, one))
	// The long form of a short length.
	cases = append(cases, append([]byte{0x30, 0x81, sig[1]}, sig[2:]...))
	zero := make([]byte, 48)
	zsig, _ := Sign(rand.Reader, priv, zero)
	if !ecdsa.VerifyASN1(pub, zero, zsig) || !Verify(pub, zero, zsig) {
		t.Fatal("e = 0: a signature of the all-zero digest does not verify")
	}
	accepted := 0
	for i, c := range cases {
		want := ecdsa.VerifyASN1(pub, digest[:], c)
		if got := Verify(pub, digest[:], c); got != want {
			t.Errorf("case %d %x: Verify = %v, crypto/ecdsa = %v", i, c, got, want)
		}
		if want {
			accepted++
		}
	}
	if accepted < 4 { // the 3 signatures and the high-s one at least
		t.Fatalf("only %d of %d cases valid: the differential tests nothing", accepted, len(cases))
	}
}

// TestVerifyRejectsBadKeys: public keys off the curve, with coordinates
// of p or more, negative, or the curve's parameters instead of the curve
// itself: Verify agrees with crypto/ecdsa on each (which verifies none of
// the first ones and handles the last).
func TestVerifyRejectsBadKeys(t *testing.T) {
	priv := key(t, elliptic.P384())
	digest := sha512.Sum384([]byte("m"))
	sig, _ := Sign(rand.Reader, priv, digest[:])
	p := elliptic.P384().Params().P
	keys := map[string]*ecdsa.PublicKey{
		"y+1":      {Curve: elliptic.P384(), X: priv.X, Y: new(big.Int).Add(priv.Y, big.NewInt(1))},
		"x+p":      {Curve: elliptic.P384(), X: new(big.Int).Add(priv.X, p), Y: priv.Y},
		"y+p":      {Curve: elliptic.P384(), X: priv.X, Y: new(big.Int).Add(priv.Y, p)},
		"-y":       {Curve: elliptic.P384(), X: priv.X, Y: new(big.Int).Neg(priv.Y)},
		"p-y":      {Curve: elliptic.P384(), X: priv.X, Y: new(big.Int).Sub(p, priv.Y)},
		"zero":     {Curve: elliptic.P384(), X: new(big.Int), Y: new(big.Int)},
		"params":   {Curve: elliptic.P384().Params(), X: priv.X, Y: priv.Y},
		"the real": &priv.PublicKey,
	}
	for name, pub := range keys {
		want := ecdsa.VerifyASN1(pub, digest[:], sig)
		if got := Verify(pub, digest[:], sig); got != want {
			t.Errorf("%s: Verify = %v, crypto/ecdsa = %v", name, got, want)
		}
		if want != (name == "the real" || name == "params") {
			t.Errorf("%s: crypto/ecdsa says %v: the case is not what it claims", name, want)
		}
	}
}

func BenchmarkSignP384(b *testing.B) {
	priv := key(b, elliptic.P384())
	digest := sha512.Sum384(nil)
	b.Run("ecsig", func(b *testing.B) {
		for b.Loop() {
			Sign(rand.Reader, priv, digest[:])
		}
	})
	b.Run("crypto-ecdsa", func(b *testing.B) {
		for b.Loop() {
			ecdsa.SignASN1(rand.Reader, priv, digest[:])
		}
	})
}

func BenchmarkVerifyP384(b *testing.B) {
	priv := key(b, elliptic.P384())
	digest := sha512.Sum384(nil)
	sig, _ := Sign(rand.Reader, priv, digest[:])
	b.Run("ecsig", func(b *testing.B) {
		for b.Loop() {
			Verify(&priv.PublicKey, digest[:], sig)
		}
	})
	b.Run("crypto-ecdsa", func(b *testing.B) {
		for b.Loop() {
			ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig)
		}
	})
}
