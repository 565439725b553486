package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

func testCMM(t testing.TB) crypto.MaterialsManager {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("encjob-test", "k1", key)
	if err != nil {
		t.Fatal(err)
	}
	return crypto.NewDefaultCMM(kr)
}

func policyFor(s *crypto.Suite) crypto.CommitmentPolicy {
	if s.Committing {
		return crypto.RequireEncryptRequireDecrypt
	}
	return crypto.ForbidEncryptAllowDecrypt
}

var nonASCII = crypto.EncryptionContext{"tenant": "acme", "ключ": "значение", "😀": "x", "Ａ": "fullwidth", "z": ""}

// TestRoundTripSweep: every suite × frame length × size boundary, written in
// awkward chunk sizes, decrypts to the same bytes.
func TestRoundTripSweep(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	for _, s := range crypto.Suites() {
		for _, fl := range []int{1, 4096, 1 << 20} {
			sizes := []int{0, 1, fl - 1, fl, fl + 1, 3*fl + 7}
			if fl == 1 {
				sizes = []int{0, 1, 2, 300}
			}
			if fl == 1<<20 && s.ID != 0x0578 && s.ID != 0x0014 {
				sizes = []int{0, fl + 1}
			}
			for _, n := range sizes {
				if n < 0 {
					continue
				}
				t.Run(fmt.Sprintf("%s/f%d/n%d", s.Hex(), fl, n), func(t *testing.T) {
					pt := make([]byte, n)
					rand.Read(pt)
					var ct bytes.Buffer
					e, err := crypto.NewEncryptor(ctx, &ct, crypto.EncryptOptions{CMM: cmm, Suite: s, Context: nonASCII,
						FrameLength: fl, CommitmentPolicy: policyFor(s)})
					if err != nil {
						t.Fatal(err)
					}
					if n%2 == 0 {
						// Through ReadFrom (what io.Copy uses), in odd reads.
						if _, err := io.Copy(e, iotest.HalfReader(bytes.NewReader(pt))); err != nil {
							t.Fatal(err)
						}
					}
					for rest, chunk := pt, 0; n%2 == 1 && len(rest) > 0; chunk++ {
						k := min(len(rest), []int{1, 512, fl - 1, fl, fl + 1, 7}[chunk%6]+1)
						if _, err := e.Write(rest[:k]); err != nil {
							t.Fatal(err)
						}
						rest = rest[k:]
					}
					if err := e.Close(); err != nil {
						t.Fatal(err)
					}
					got, h, err := crypto.Decrypt(ctx, ct.Bytes(), crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: policyFor(s)})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatalf("plaintext differs")
					}
					if h.Suite != s || int(h.FrameLength) != fl || h.Context["ключ"] != "значение" {
						t.Fatalf("header %v %d %v", h.Suite, h.FrameLength, h.Context)
					}
					if s.Signed() != (h.Context["aws-crypto-public-key"] != "") {
						t.Fatalf("public key in context: %v", h.Context)
					}
				})
			}
		}
	}
}

func TestNonFramedRoundTrip(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	for _, n := range []int{0, 1, 100000} {
		pt := make([]byte, n)
		rand.Read(pt)
		ct, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: cmm, NonFramed: true})
		if err != nil {
			t.Fatal(err)
		}
		got, h, err := crypto.Decrypt(ctx, ct, crypto.DecryptOptions{CMM: cmm})
		if err != nil || !bytes.Equal(got, pt) || h.ContentType != crypto.ContentNonFramed {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
}

// TestTamperEveryByte flips one bit in every byte of a small signed message
// and of an unsigned one: decryption must fail with a typed error, and
// never return plaintext through Decrypt.
func TestTamperEveryByte(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	for _, id := range []uint16{0x0478, 0x0578, 0x0178} {
		s := crypto.SuiteByID(id)
		ct, err := crypto.Encrypt(ctx, []byte("attack at dawn, twice over: attack at dawn"), crypto.EncryptOptions{CMM: cmm, Suite: s,
			FrameLength: 16, Context: crypto.EncryptionContext{"a": "b"}, CommitmentPolicy: policyFor(s)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ct {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x04
			_, _, err := crypto.Decrypt(ctx, bad, crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: policyFor(s)})
			if err == nil {
				t.Fatalf("%s: flipping byte %d went unnoticed", s.Hex(), i)
			}
			if !errors.Is(err, crypto.ErrAuthentication) && !errors.Is(err, crypto.ErrMalformed) && !errors.Is(err, crypto.ErrNoMatchingKey) {
				t.Fatalf("%s byte %d: untyped error %v", s.Hex(), i, err)
			}
		}
		for n := 0; n < len(ct); n++ {
			if _, _, err := crypto.Decrypt(ctx, ct[:n], crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: policyFor(s)}); err == nil {
				t.Fatalf("%s: truncation to %d bytes went unnoticed", s.Hex(), n)
			}
		}
		if _, _, err := crypto.Decrypt(ctx, append(bytes.Clone(ct), 0), crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: policyFor(s)}); !errors.Is(err, crypto.ErrMalformed) {
			t.Fatalf("%s: trailing byte: %v", s.Hex(), err)
		}
	}
}

// TestStreamEOFMeansVerified: a reader that stops at the final frame of a
// signed message (footer cut off) must not end with io.EOF.
func TestStreamEOFMeansVerified(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	pt := make([]byte, 10000)
	ct, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: cmm})
	if err != nil {
		t.Fatal(err)
	}
	d, err := crypto.NewDecryptor(ctx, bytes.NewReader(ct[:len(ct)-10]), crypto.DecryptOptions{CMM: cmm})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, d)
	if err == nil || d.Verified() {
		t.Fatalf("read %d bytes and ended cleanly without the signature", n)
	}
}

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	v1 := crypto.SuiteByID(0x0178)
	if _, err := crypto.Encrypt(ctx, nil, crypto.EncryptOptions{CMM: cmm, Suite: v1}); !errors.Is(err, crypto.ErrPolicy) {
		t.Fatalf("non-committing suite under require policy: %v", err)
	}
	if _, err := crypto.Encrypt(ctx, nil, crypto.EncryptOptions{CMM: cmm, CommitmentPolicy: crypto.ForbidEncryptAllowDecrypt, Suite: crypto.DefaultSuite}); !errors.Is(err, crypto.ErrPolicy) {
		t.Fatalf("committing suite under forbid policy: %v", err)
	}
	ct, _ := crypto.Encrypt(ctx, []byte("x"), crypto.EncryptOptions{CMM: cmm})
	if _, _, err := crypto.Decrypt(ctx, ct, crypto.DecryptOptions{CMM: cmm, UnsignedOnly: true}); !errors.Is(err, crypto.ErrPolicy) {
		t.Fatalf("unsigned-only accepted a signed message: %v", err)
	}
	if _, _, err := crypto.Decrypt(ctx, ct, crypto.DecryptOptions{CMM: cmm, MaxBodyLength: 100}); !errors.Is(err, crypto.ErrPolicy) {
		t.Fatalf("max body length: %v", err)
	}
	if _, err := crypto.Encrypt(ctx, nil, crypto.EncryptOptions{CMM: cmm, Context: crypto.EncryptionContext{"aws-crypto-x": "y"}}); err == nil {
		t.Fatal("reserved context key accepted")
	}
	if _, err := crypto.Encrypt(ctx, nil, crypto.EncryptOptions{CMM: cmm, Context: crypto.EncryptionContext{"k": "\xff"}}); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
	for _, name := range []string{"AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", "0x0478", "0578", "aes_128_gcm_iv12_tag16"} {
		if _, err := crypto.ParseSuite(name); err != nil {
			t.Errorf("ParseSuite(%q): %v", name, err)
		}
	}
	if _, err := crypto.ParseSuite("AES_999"); err == nil {
		t.Error("unknown suite accepted")
	}
}

// TestHeaderClaimsBounded: a header that claims 65,535 EDKs of 65,535
// bytes, backed by a few bytes, fails without allocating gigabytes.
func TestHeaderClaimsBounded(t *testing.T) {
	h := []byte{2, 0x05, 0x78}
	h = append(h, make([]byte, 32)...) // message id
	h = append(h, 0, 0)                // no context
	h = append(h, 0xFF, 0xFF)          // 65535 EDKs
	for i := 0; i < 3; i++ {
		h = append(h, 0xFF, 0xFF)
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := crypto.ParseHeader(bytes.NewReader(h)); !errors.Is(err, crypto.ErrMalformed) {
			t.Fatalf("want malformed, got %v", err)
		}
	})
	if allocs > 50 {
		t.Fatalf("%v allocations for a %d-byte header", allocs, len(h))
	}
}
