package ecsig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"math/big"
	"testing"
)

// fuzzKey is fixed so that the fuzzer's inputs stay meaningful across runs
// (a private scalar, not a secret: this is a test).
func fuzzKey() *ecdsa.PrivateKey {
	d := new(big.Int).SetBytes(sha512.New384().Sum([]byte("encjob ecsig fuzz key")))
	d.Mod(d, order)
	x, y := elliptic.P384().ScalarBaseMult(d.FillBytes(make([]byte, scalarLen)))
	return &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: elliptic.P384(), X: x, Y: y}, D: d}
}

// FuzzVerifyAgreesWithCryptoECDSA: for any signature bytes and digest,
// Verify answers what crypto/ecdsa.VerifyASN1 answers.
func FuzzVerifyAgreesWithCryptoECDSA(f *testing.F) {
	priv := fuzzKey()
	for i := range 4 {
		digest := sha512.Sum384([]byte{byte(i)})
		sig, err := Sign(zeroReader{}, priv, digest[:])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sig, digest[:])
	}
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, make([]byte, 48))
	f.Fuzz(func(t *testing.T, sig, digest []byte) {
		want := ecdsa.VerifyASN1(&priv.PublicKey, digest, sig)
		if got := Verify(&priv.PublicKey, digest, sig); got != want {
			t.Fatalf("sig %x digest %x: Verify = %v, crypto/ecdsa = %v", sig, digest, got, want)
		}
	})
}

// zeroReader gives the fixed seeds: the nonce is hedged with the key and
// the digest, so zero entropy still signs soundly (TestReplayedReader...).
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
