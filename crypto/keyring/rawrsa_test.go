package keyring

import (
	"bytes"
	stdcrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"sync"
	"testing"

	"github.com/encjob/encjob/crypto"
)

var (
	rsaOnce sync.Once
	rsaA    *rsa.PrivateKey
	rsaB    *rsa.PrivateKey
)

// testRSAKeys returns two distinct 2048-bit key pairs, generated once.
func testRSAKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaA, rsaB
}

func newRSA(t *testing.T, ns, name string, priv *rsa.PrivateKey, pub *rsa.PublicKey, p Padding) *RawRSA {
	t.Helper()
	k, err := NewRawRSA(ns, name, priv, pub, p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var allPaddings = []Padding{PKCS1v15, OAEPSHA1, OAEPSHA256, OAEPSHA384, OAEPSHA512}

func TestRawRSARoundTrip(t *testing.T) {
	a, _ := testRSAKeys(t)
	for _, p := range allPaddings {
		for _, id := range []uint16{0x0014, 0x0046, 0x0578} {
			s := crypto.SuiteByID(id)
			t.Run(p.String()+"/"+s.Hex(), func(t *testing.T) {
				kr := newRSA(t, "ns", "rsa", a, &a.PublicKey, p)
				m := encryptWith(t, kr, s, crypto.EncryptionContext{"a": "b"})
				edk := m.EncryptedDataKeys[0]
				if edk.ProviderID != "ns" || string(edk.ProviderInfo) != "rsa" || len(edk.Ciphertext) != 256 {
					t.Fatalf("EDK %q %q %d bytes", edk.ProviderID, edk.ProviderInfo, len(edk.Ciphertext))
				}
				dk, err := decryptWith(kr, s, nil, m.EncryptedDataKeys)
				if err != nil || !bytes.Equal(dk, m.DataKey) {
					t.Fatalf("unwrap: %v", err)
				}
				// Every other padding fails to read it.
				for _, q := range allPaddings {
					if q == p {
						continue
					}
					other := newRSA(t, "ns", "rsa", a, nil, q)
					if _, err := decryptWith(other, s, nil, m.EncryptedDataKeys); !errors.Is(err, crypto.ErrNoMatchingKey) {
						t.Fatalf("padding %s read a %s EDK: %v", q, p, err)
					}
				}
			})
		}
	}
}

// TestRawRSAStdlibInterop checks the OAEP hash is used for MGF1 too, by
// decrypting with the stdlib's explicit-options API.
func TestRawRSAStdlibInterop(t *testing.T) {
	a, _ := testRSAKeys(t)
	kr := newRSA(t, "ns", "rsa", nil, &a.PublicKey, OAEPSHA384)
	m := encryptWith(t, kr, crypto.DefaultSuite, nil)
	opts := &rsa.OAEPOptions{Hash: stdcrypto.SHA384, MGFHash: stdcrypto.SHA384}
	dk, err := a.Decrypt(nil, m.EncryptedDataKeys[0].Ciphertext, opts)
	if err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("stdlib OAEP-SHA384/MGF1-SHA384 decrypt: %v", err)
	}
}

func TestRawRSAWrongKeyAndParts(t *testing.T) {
	a, b := testRSAKeys(t)
	s := crypto.DefaultSuite
	full := newRSA(t, "ns", "rsa", a, &a.PublicKey, OAEPSHA256)
	m := encryptWith(t, full, s, nil)

	for name, kr := range map[string]*RawRSA{
		"other key pair":  newRSA(t, "ns", "rsa", b, nil, OAEPSHA256),
		"other name":      newRSA(t, "ns", "rsa2", a, nil, OAEPSHA256),
		"other namespace": newRSA(t, "ns2", "rsa", a, nil, OAEPSHA256),
		"public only":     newRSA(t, "ns", "rsa", nil, &a.PublicKey, OAEPSHA256),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decryptWith(kr, s, nil, m.EncryptedDataKeys); !errors.Is(err, crypto.ErrNoMatchingKey) {
				t.Fatalf("got %v, want ErrNoMatchingKey", err)
			}
		})
	}
	// Private-only decrypts but cannot encrypt.
	priv := newRSA(t, "ns", "rsa", a, nil, OAEPSHA256)
	if dk, err := decryptWith(priv, s, nil, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("private only: %v", err)
	}
	em := &crypto.EncryptionMaterials{Suite: s}
	if err := priv.OnEncrypt(bg, em); err == nil || em.DataKey != nil || len(em.EncryptedDataKeys) != 0 {
		t.Fatalf("private-only OnEncrypt: %v", err)
	}
	// Public-only generates and wraps.
	pub := newRSA(t, "ns", "rsa", nil, &a.PublicKey, OAEPSHA256)
	m2 := encryptWith(t, pub, s, nil)
	if dk, err := decryptWith(full, s, nil, m2.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m2.DataKey) {
		t.Fatalf("public-only wrap: %v", err)
	}
	// Damaged ciphertext is skipped; a later intact EDK wins.
	bad := m.EncryptedDataKeys[0]
	bad.Ciphertext = bytes.Clone(bad.Ciphertext)
	bad.Ciphertext[100] ^= 0x10
	if _, err := decryptWith(full, s, nil, []crypto.EncryptedDataKey{bad}); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("damaged EDK: %v", err)
	}
	if dk, err := decryptWith(full, s, nil, []crypto.EncryptedDataKey{bad, m.EncryptedDataKeys[0]}); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("damaged then intact: %v", err)
	}
	// A data key of another suite's length is rejected.
	if _, err := decryptWith(full, crypto.SuiteByID(0x0114), nil, m.EncryptedDataKeys); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("16-byte suite with a 32-byte key: %v", err)
	}
}

func TestNewRawRSAValidation(t *testing.T) {
	a, b := testRSAKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"no keys":      func() error { _, err := NewRawRSA("ns", "k", nil, nil, OAEPSHA256); return err },
		"mismatch":     func() error { _, err := NewRawRSA("ns", "k", a, &b.PublicKey, OAEPSHA256); return err },
		"bad padding":  func() error { _, err := NewRawRSA("ns", "k", a, nil, Padding(0)); return err },
		"no namespace": func() error { _, err := NewRawRSA("", "k", a, nil, OAEPSHA256); return err },
		"no name":      func() error { _, err := NewRawRSA("ns", "", a, nil, OAEPSHA256); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// 1024-bit keys are accepted but too small for OAEP-SHA512 with a
	// 32-byte data key: encrypt fails cleanly.
	kr := newRSA(t, "ns", "k", small, &small.PublicKey, OAEPSHA512)
	m := &crypto.EncryptionMaterials{Suite: crypto.DefaultSuite}
	if err := kr.OnEncrypt(bg, m); err == nil || m.DataKey != nil {
		t.Fatalf("OAEP-SHA512 on 1024 bits: err %v, data key left %v", err, m.DataKey != nil)
	}
}

func TestParsePadding(t *testing.T) {
	for in, want := range map[string]Padding{
		"oaep-sha1": OAEPSHA1, "oaep-sha256": OAEPSHA256, "oaep-sha384": OAEPSHA384, "oaep-sha512": OAEPSHA512, "pkcs1": PKCS1v15,
		"OAEP_SHA1_MGF1": OAEPSHA1, "OAEP_SHA256_MGF1": OAEPSHA256, "RSA_OAEP_SHA384_MGF1": OAEPSHA384, "OAEP-SHA512": OAEPSHA512,
		"PKCS1": PKCS1v15, "RSA_PKCS1": PKCS1v15, "pkcs1-v1.5": PKCS1v15, " OAEP-SHA256 ": OAEPSHA256,
	} {
		got, err := ParsePadding(in)
		if err != nil || got != want {
			t.Errorf("ParsePadding(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "oaep", "oaep-md5", "pss", "sha256"} {
		if _, err := ParsePadding(in); err == nil {
			t.Errorf("ParsePadding(%q) succeeded", in)
		}
	}
	for _, p := range allPaddings {
		if q, err := ParsePadding(p.String()); err != nil || q != p {
			t.Errorf("String/Parse round trip of %v: %v %v", p, q, err)
		}
	}
}
