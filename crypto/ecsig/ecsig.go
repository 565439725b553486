// Package ecsig signs and verifies the footer signatures of the ESDK's
// signed suites: ECDSA with ASN.1 DER signatures, exactly as crypto/ecdsa's
// SignASN1 and VerifyASN1, but faster on P-384.
//
// Why it exists: on P-384 crypto/ecdsa inverts the nonce (sign) and s
// (verify) by Fermat exponentiation in constant time, because it has no
// assembly for that curve's order as it has for P-256. That single
// exponentiation is a third of a signature and a tenth of a verification,
// and every message of suites 0x0346, 0x0378 and 0x0578 pays one of each.
// Here the inversion is an extended Euclid instead:
//
//   - signing inverts k·b for a fresh uniformly random b and multiplies
//     the result by b again (multiplicative blinding), so the variable-time
//     Euclid only ever sees a value independent of the secret nonce; every
//     operation on k, d and the result is constant time (filippo.io/bigmod,
//     the module crypto/ecdsa's own arithmetic was taken from) and the
//     points are computed by filippo.io/nistec, crypto/ecdsa's curve code;
//   - verification inverts s, which is public, and computes u1·G + u2·Q
//     of public scalars in one variable-time interleaved pass (straus.go).
//
// Nonces are hedged as crypto/ecdsa's are: 48 bytes from the reader
// (crypto/rand in all of encjob) and the private key and digest key a
// SHAKE256 stream, from which the nonce k and the blinding b are drawn by
// rejection sampling into [1, n-1] (FIPS 186-5 A.3.2 with a hedged
// source). A reader that repeats itself, or returns zeros, therefore
// never repeats a nonce for another digest. Other curves (P-256 for
// suite 0x0214), and every curve in FIPS 140 mode, go to crypto/ecdsa.
package ecsig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/sha3"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

const scalarLen = 48 // bytes of a P-384 scalar and of its order n

var (
	order    = elliptic.P384().Params().N
	orderMod = mustModulus(order.Bytes())
)

// natOf returns the scalar b (big-endian, below n, else an error) as a Nat.
func natOf(b []byte) (*bigmod.Nat, error) { return bigmod.NewNat().SetBytes(b, orderMod) }

// scalarBytes returns x (in [0, n)) as a 48-byte big-endian scalar.
func scalarBytes(x *big.Int) []byte { return x.FillBytes(make([]byte, scalarLen)) }

func mustModulus(b []byte) *bigmod.Modulus {
	m, err := bigmod.NewModulus(b)
	if err != nil {
		panic(err)
	}
	return m
}

// Sign returns an ASN.1 DER ECDSA signature of digest (already hashed; a
// longer digest is truncated to the order's length as FIPS 186-5 says) by
// priv, with rand as the hedging entropy. The signature is valid for
// crypto/ecdsa.VerifyASN1 and every ESDK.
func Sign(rand io.Reader, priv *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	if priv.Curve != elliptic.P384() || fips140.Enabled() {
		return ecdsa.SignASN1(rand, priv, digest)
	}
	// A copy of d, ours to clear: priv.Bytes() would return the slice
	// inside crypto/ecdsa's cached key, which other signers share.
	if priv.D == nil || priv.D.Sign() <= 0 || priv.D.Cmp(order) >= 0 {
		return nil, errors.New("ecsig: private key scalar out of range")
	}
	d := scalarBytes(priv.D)
	defer clear(d)
	e := hashToNat(digest)
	z := make([]byte, scalarLen)
	if _, err := io.ReadFull(rand, z); err != nil {
		return nil, fmt.Errorf("ecsig: reading entropy: %w", err)
	}
	nonces := sha3.NewSHAKE256()
	nonces.Write([]byte(nonceLabel))
	nonces.Write(z)
	nonces.Write(d)
	nonces.Write(e.Bytes(orderMod))
	for range maxDraws {
		k, err := drawScalar(nonces)
		if err != nil {
			return nil, err
		}
		b, err := drawScalar(nonces)
		if err != nil {
			return nil, err
		}
		r, s, err := signWithNonce(k, b, d, e)
		if err != nil {
			return nil, err
		}
		if r != nil {
			return asn1.Marshal(signature{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
		}
	}
	return nil, errors.New("ecsig: internal error: no nonce gave a signature")
}

// nonceLabel separates the nonce stream from any other use of SHAKE256
// with the same inputs.
const nonceLabel = "encjob/ecsig ECDSA P-384 nonce and blinding, v1\x00"

// maxDraws bounds every rejection loop: one draw is rejected with
// probability below 2^-190, so reaching it means broken code, and an error
// beats spinning forever.
const maxDraws = 64

// signWithNonce is FIPS 186-5 6.4.1 with nonce k and blinding b:
// r = x(k·G) mod n, s = k⁻¹(e + r·d) mod n. It returns nil r and s, and no
// error, in the cases the standard retries (r or s zero), whose chance is
// negligible.
func signWithNonce(k, b *bigmod.Nat, d []byte, e *bigmod.Nat) (r, s []byte, err error) {
	R, err := nistec.NewP384Point().ScalarBaseMult(k.Bytes(orderMod))
	if err != nil {
		return nil, nil, err
	}
	rx, err := R.BytesX() // an error only for the point at infinity: k is in [1, n-1]
	if err != nil {
		return nil, nil, fmt.Errorf("ecsig: internal error: %w", err)
	}
	rn, err := bigmod.NewNat().SetOverflowingBytes(rx, orderMod)
	if err != nil || rn.IsZero() == 1 {
		return nil, nil, err
	}
	kInv, err := blindedInverse(k, b)
	if err != nil {
		return nil, nil, err
	}
	sn, err := natOf(d)
	if err != nil {
		return nil, nil, err
	}
	sn.Mul(rn, orderMod).Add(e, orderMod).Mul(kInv, orderMod)
	if sn.IsZero() == 1 {
		return nil, nil, nil
	}
	return rn.Bytes(orderMod), sn.Bytes(orderMod), nil
}

// blindedInverse returns k⁻¹ mod n as b·(k·b)⁻¹: the variable-time
// inversion sees k·b, which for a uniform secret b is uniform and
// independent of k. k and b are in [1, n-1].
func blindedInverse(k, b *bigmod.Nat) (*bigmod.Nat, error) {
	kb, err := natOf(k.Bytes(orderMod))
	if err != nil {
		return nil, err
	}
	kb.Mul(b, orderMod)
	inv := new(big.Int).ModInverse(new(big.Int).SetBytes(kb.Bytes(orderMod)), order)
	if inv == nil {
		return nil, errors.New("ecsig: internal error: blinded nonce not invertible")
	}
	out, err := natOf(scalarBytes(inv))
	if err != nil {
		return nil, err
	}
	return out.Mul(b, orderMod), nil
}

// drawScalar reads 48-byte blocks from the stream until one is a scalar
// in [1, n-1] (n is within 2^-190 of 2^384: practically always the first).
func drawScalar(stream io.Reader) (*bigmod.Nat, error) {
	buf := make([]byte, scalarLen)
	for range maxDraws {
		if _, err := io.ReadFull(stream, buf); err != nil {
			return nil, err
		}
		if k, err := natOf(buf); err == nil && k.IsZero() == 0 {
			return k, nil
		}
	}
	return nil, errors.New("ecsig: internal error: no scalar in the nonce stream")
}

// hashToNat is bits2int of FIPS 186-5 reduced mod n: the leftmost 384
// bits of the digest (P-384's order has exactly 384 bits, so no shift).
func hashToNat(digest []byte) *bigmod.Nat {
	if len(digest) > scalarLen {
		digest = digest[:scalarLen]
	}
	e, err := bigmod.NewNat().SetOverflowingBytes(digest, orderMod)
	if err != nil {
		panic("ecsig: internal error: truncated digest too long")
	}
	return e
}

type signature struct{ R, S *big.Int }

// Verify reports whether sig is a valid ASN.1 DER ECDSA signature of
// digest by pub. It accepts exactly what crypto/ecdsa.VerifyASN1 accepts:
// one DER SEQUENCE of two positive minimal INTEGERs below the order,
// nothing after it.
func Verify(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	if pub.Curve != elliptic.P384() || fips140.Enabled() {
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	r, s, ok := parse(sig)
	if !ok {
		return false
	}
	raw, err := pub.Bytes()
	if err != nil {
		return false
	}
	Q, err := nistec.NewP384Point().SetBytes(raw)
	if err != nil {
		return false
	}
	// w = s⁻¹ (s is public: no blinding needed), u1 = e·w, u2 = r·w.
	wi := new(big.Int).ModInverse(s, order)
	if wi == nil {
		return false
	}
	// parse checked 0 < r, s < n, so natOf cannot fail on r, u2 or w.
	w, _ := natOf(scalarBytes(wi))
	rb := scalarBytes(r)
	rn, _ := natOf(rb)
	u2, _ := natOf(rb)
	u1 := hashToNat(digest).Mul(w, orderMod)
	u2.Mul(w, orderMod)
	rx, err := doubleScalarMult(u1.Bytes(orderMod), u2.Bytes(orderMod), Q).BytesX() // an error for the point at infinity
	if err != nil {
		return false
	}
	v, err := bigmod.NewNat().SetOverflowingBytes(rx, orderMod)
	return err == nil && v.Equal(rn) == 1
}

// parse decodes a DER signature and checks 0 < r, s < n. Re-encoding and
// comparing makes the check as strict as DER itself: encoding/asn1 alone
// would let extra elements inside the SEQUENCE through.
func parse(sig []byte) (r, s *big.Int, ok bool) {
	var v signature
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 || v.R == nil || v.S == nil {
		return nil, nil, false
	}
	if again, err := asn1.Marshal(v); err != nil || !bytes.Equal(again, sig) {
		return nil, nil, false
	}
	if v.R.Sign() <= 0 || v.S.Sign() <= 0 || v.R.Cmp(order) >= 0 || v.S.Cmp(order) >= 0 {
		return nil, nil, false
	}
	return v.R, v.S, true
}
