package ecsig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
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

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestSignReaderError(t *testing.T) {
	priv := key(t, elliptic.P384())
	if sig, err := Sign(failingReader{}, priv, make([]byte, 48)); err == nil || sig != nil {
		t.Fatalf("signed without randomness: %x %v", sig, err)
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
	// A non-minimal INTEGER: r with a needless leading zero byte.
	rb := v.R.Bytes()
	if rb[0] < 0x80 {
		inner := append([]byte{0x02, byte(len(rb) + 1), 0}, rb...)
		sb, _ := asn1.Marshal(v.S)
		inner = append(inner, sb...)
		cases = append(cases, append([]byte{0x30, byte(len(inner))}, inner...))
	}
	// The long form of a short length.
	cases = append(cases, append([]byte{0x30, 0x81, sig[1]}, sig[2:]...))
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

// TestVerifyRejectsBadKeys: a public key not on the curve never verifies.
func TestVerifyRejectsBadKeys(t *testing.T) {
	priv := key(t, elliptic.P384())
	digest := sha512.Sum384([]byte("m"))
	sig, _ := Sign(rand.Reader, priv, digest[:])
	bad := &ecdsa.PublicKey{Curve: elliptic.P384(), X: priv.X, Y: new(big.Int).Add(priv.Y, big.NewInt(1))}
	if Verify(bad, digest[:], sig) {
		t.Fatal("verified under a point off the curve")
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
