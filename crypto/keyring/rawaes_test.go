package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
)

var bg = context.Background()

func randKey(t *testing.T, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newAES(t *testing.T, ns, name string, key []byte) *RawAES {
	t.Helper()
	k, err := NewRawAES(ns, name, key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encryptWith runs OnEncrypt on fresh materials for suite s and context ec.
func encryptWith(t *testing.T, kr crypto.Keyring, s *crypto.Suite, ec crypto.EncryptionContext) *crypto.EncryptionMaterials {
	t.Helper()
	m := &crypto.EncryptionMaterials{Suite: s, Context: ec}
	if err := kr.OnEncrypt(bg, m); err != nil {
		t.Fatalf("OnEncrypt: %v", err)
	}
	return m
}

func decryptWith(kr crypto.Keyring, s *crypto.Suite, ec crypto.EncryptionContext, edks []crypto.EncryptedDataKey) ([]byte, error) {
	m := &crypto.DecryptionMaterials{Suite: s, Context: ec}
	err := kr.OnDecrypt(bg, m, edks)
	if err != nil && m.DataKey != nil {
		return nil, fmt.Errorf("materials modified despite error %v", err)
	}
	return m.DataKey, err
}

func TestRawAESRoundTrip(t *testing.T) {
	ec := crypto.EncryptionContext{"b": "2", "a": "1", "日本": "語", "Ａ": "fullwidth"}
	for _, keyLen := range []int{16, 24, 32} {
		for _, s := range crypto.Suites() {
			t.Run(fmt.Sprintf("aes%d/%s", keyLen*8, s.Hex()), func(t *testing.T) {
				kr := newAES(t, "ns", "key", randKey(t, keyLen))
				m := encryptWith(t, kr, s, ec)
				if len(m.DataKey) != s.KeyLen || len(m.EncryptedDataKeys) != 1 {
					t.Fatalf("data key %d bytes, %d EDKs", len(m.DataKey), len(m.EncryptedDataKeys))
				}
				// Decrypt with a clone of the context built in another order.
				dk, err := decryptWith(kr, s, ec.Clone(), m.EncryptedDataKeys)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(dk, m.DataKey) {
					t.Fatal("unwrapped data key differs")
				}
			})
		}
	}
}

// TestRawAESWireFormat checks the EDK against an independent AES-GCM
// computation following the ESDK layout.
func TestRawAESWireFormat(t *testing.T) {
	key := randKey(t, 32)
	kr := newAES(t, "my-namespace", "my-key", key)
	s := crypto.SuiteByID(0x0478)
	ec := crypto.EncryptionContext{"z": "last", "a": "first"}
	m := encryptWith(t, kr, s, ec)
	edk := m.EncryptedDataKeys[0]
	if edk.ProviderID != "my-namespace" {
		t.Fatalf("provider id %q", edk.ProviderID)
	}
	info := edk.ProviderInfo
	if len(info) != len("my-key")+4+4+12 || string(info[:6]) != "my-key" ||
		binary.BigEndian.Uint32(info[6:]) != 128 || binary.BigEndian.Uint32(info[10:]) != 12 {
		t.Fatalf("provider info %x", info)
	}
	if len(edk.Ciphertext) != 32+16 {
		t.Fatalf("ciphertext is %d bytes, want 48", len(edk.Ciphertext))
	}
	// AAD: uint16 count, then (uint16 len, key, uint16 len, value) sorted.
	aad := []byte{0, 2, 0, 1, 'a', 0, 5, 'f', 'i', 'r', 's', 't', 0, 1, 'z', 0, 4, 'l', 'a', 's', 't'}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	dk, err := gcm.Open(nil, info[14:], edk.Ciphertext, aad)
	if err != nil {
		t.Fatalf("independent unwrap: %v", err)
	}
	if !bytes.Equal(dk, m.DataKey) {
		t.Fatal("independent unwrap gives a different data key")
	}
	// Empty context: the AAD is empty.
	m = encryptWith(t, kr, s, nil)
	edk = m.EncryptedDataKeys[0]
	if dk, err := gcm.Open(nil, edk.ProviderInfo[14:], edk.Ciphertext, nil); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("empty context: independent unwrap failed: %v", err)
	}
	// Two wraps use fresh IVs.
	m2 := encryptWith(t, kr, s, nil)
	if bytes.Equal(m2.EncryptedDataKeys[0].ProviderInfo, edk.ProviderInfo) {
		t.Fatal("IV reused")
	}
}

func TestRawAESKeepsGivenDataKey(t *testing.T) {
	kr := newAES(t, "ns", "k", randKey(t, 16))
	s := crypto.SuiteByID(0x0578)
	dk := randKey(t, 32)
	m := &crypto.EncryptionMaterials{Suite: s, DataKey: bytes.Clone(dk), EncryptedDataKeys: []crypto.EncryptedDataKey{{ProviderID: "other"}}}
	if err := kr.OnEncrypt(bg, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.DataKey, dk) || len(m.EncryptedDataKeys) != 2 || m.EncryptedDataKeys[0].ProviderID != "other" {
		t.Fatal("data key replaced or EDK list not appended")
	}
	got, err := decryptWith(kr, s, nil, m.EncryptedDataKeys)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	// A data key of the wrong length is misuse, not "no matching key".
	m = &crypto.EncryptionMaterials{Suite: s, DataKey: make([]byte, 16)}
	if err := kr.OnEncrypt(bg, m); err == nil || errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("short data key: got %v", err)
	}
}

func TestRawAESWrongKeyAndTampering(t *testing.T) {
	s := crypto.SuiteByID(0x0578)
	ec := crypto.EncryptionContext{"purpose": "test"}
	key := randKey(t, 32)
	kr := newAES(t, "ns", "k", key)
	m := encryptWith(t, kr, s, ec)
	edk := m.EncryptedDataKeys[0]

	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	cases := []struct {
		name string
		kr   crypto.Keyring
		ec   crypto.EncryptionContext
		edk  crypto.EncryptedDataKey
	}{
		{"same name, other material", newAES(t, "ns", "k", randKey(t, 32)), ec, edk},
		{"other name", newAES(t, "ns", "k2", key), ec, edk},
		{"other namespace", newAES(t, "ns2", "k", key), ec, edk},
		{"other context", kr, crypto.EncryptionContext{"purpose": "other"}, edk},
		{"extra context pair", kr, crypto.EncryptionContext{"purpose": "test", "x": "y"}, edk},
		{"empty context", kr, nil, edk},
		{"flipped ciphertext", kr, ec, crypto.EncryptedDataKey{ProviderID: "ns", ProviderInfo: edk.ProviderInfo, Ciphertext: flip(edk.Ciphertext, 3)}},
		{"flipped tag", kr, ec, crypto.EncryptedDataKey{ProviderID: "ns", ProviderInfo: edk.ProviderInfo, Ciphertext: flip(edk.Ciphertext, 40)}},
		{"flipped IV", kr, ec, crypto.EncryptedDataKey{ProviderID: "ns", ProviderInfo: flip(edk.ProviderInfo, 20), Ciphertext: edk.Ciphertext}},
		{"truncated ciphertext", kr, ec, crypto.EncryptedDataKey{ProviderID: "ns", ProviderInfo: edk.ProviderInfo, Ciphertext: edk.Ciphertext[:47]}},
		{"no EDKs", kr, ec, crypto.EncryptedDataKey{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			edks := []crypto.EncryptedDataKey{c.edk}
			if c.edk.ProviderID == "" {
				edks = nil
			}
			_, err := decryptWith(c.kr, s, c.ec, edks)
			if !errors.Is(err, crypto.ErrNoMatchingKey) {
				t.Fatalf("got %v, want ErrNoMatchingKey", err)
			}
			if strings.Contains(err.Error(), string(key)) || strings.Contains(err.Error(), fmt.Sprintf("%x", key)) {
				t.Fatal("error contains key material")
			}
		})
	}
	// A damaged EDK is skipped and the next one is tried.
	bad := crypto.EncryptedDataKey{ProviderID: "ns", ProviderInfo: edk.ProviderInfo, Ciphertext: flip(edk.Ciphertext, 0)}
	dk, err := decryptWith(kr, s, ec, []crypto.EncryptedDataKey{bad, {ProviderID: "kms"}, edk})
	if err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("skipping a damaged EDK: %v", err)
	}
	// Suite with another key length: the 48-byte ciphertext does not fit.
	if _, err := decryptWith(kr, crypto.SuiteByID(0x0114), ec, []crypto.EncryptedDataKey{edk}); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("wrong suite key length: got %v", err)
	}
}

func TestRawAESProviderInfoMismatch(t *testing.T) {
	s := crypto.SuiteByID(0x0178)
	key := randKey(t, 32)
	kr := newAES(t, "ns", "key", key)
	m := encryptWith(t, kr, s, nil)
	edk := m.EncryptedDataKeys[0]
	iv := edk.ProviderInfo[len(edk.ProviderInfo)-12:]
	mk := func(name string, tagBits, ivLen uint32, iv []byte) crypto.EncryptedDataKey {
		info := append([]byte(name), binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, tagBits), ivLen)...)
		return crypto.EncryptedDataKey{ProviderID: "ns", ProviderInfo: append(info, iv...), Ciphertext: edk.Ciphertext}
	}
	// Sanity: rebuilding the same info works.
	if _, err := decryptWith(kr, s, nil, []crypto.EncryptedDataKey{mk("key", 128, 12, iv)}); err != nil {
		t.Fatalf("rebuilt provider info: %v", err)
	}
	for name, e := range map[string]crypto.EncryptedDataKey{
		"tag 96 bits":       mk("key", 96, 12, iv),
		"iv length 16":      mk("key", 128, 16, append(bytes.Clone(iv), 0, 0, 0, 0)),
		"iv length lies":    mk("key", 128, 12, iv[:11]),
		"trailing byte":     mk("key", 128, 12, append(bytes.Clone(iv), 0)),
		"name prefix":       mk("ke", 128, 12, iv),
		"longer name":       mk("keyx", 128, 12, iv),
		"info too short":    {ProviderID: "ns", ProviderInfo: []byte("key"), Ciphertext: edk.Ciphertext},
		"empty info":        {ProviderID: "ns", Ciphertext: edk.Ciphertext},
		"namespace differs": {ProviderID: "NS", ProviderInfo: edk.ProviderInfo, Ciphertext: edk.Ciphertext},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decryptWith(kr, s, nil, []crypto.EncryptedDataKey{e}); !errors.Is(err, crypto.ErrNoMatchingKey) {
				t.Fatalf("got %v, want ErrNoMatchingKey", err)
			}
		})
	}
	p, ok := ParseRawAESProviderInfo(edk.ProviderInfo, len(edk.ProviderInfo)-20)
	if !ok || p.KeyName != "key" || p.TagLenBits != 128 || p.IVLen != 12 || !bytes.Equal(p.IV, iv) {
		t.Fatalf("ParseRawAESProviderInfo: %+v %v", p, ok)
	}
	if _, ok := ParseRawAESProviderInfo(edk.ProviderInfo, 100); ok {
		t.Fatal("ParseRawAESProviderInfo accepted a name longer than the info")
	}
}

func TestNewRawAESValidation(t *testing.T) {
	for _, c := range []struct {
		ns, name string
		n        int
	}{{"ns", "k", 15}, {"ns", "k", 0}, {"ns", "k", 64}, {"", "k", 16}, {"ns", "", 16}, {"aws-kms", "k", 16}} {
		if _, err := NewRawAES(c.ns, c.name, make([]byte, c.n)); err == nil {
			t.Errorf("NewRawAES(%q, %q, %d bytes) succeeded", c.ns, c.name, c.n)
		}
	}
	// The keyring does not alias the caller's key slice.
	key := randKey(t, 16)
	kr := newAES(t, "ns", "k", key)
	m := encryptWith(t, kr, crypto.SuiteByID(0x0114), nil)
	clear(key)
	if _, err := decryptWith(kr, crypto.SuiteByID(0x0114), nil, m.EncryptedDataKeys); err != nil {
		t.Fatalf("after zeroing the caller's key: %v", err)
	}
}

func TestRawAESMisuse(t *testing.T) {
	kr := newAES(t, "ns", "k", randKey(t, 16))
	if err := kr.OnEncrypt(bg, &crypto.EncryptionMaterials{}); err == nil || errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("materials without suite: %v", err)
	}
	if err := kr.OnDecrypt(bg, &crypto.DecryptionMaterials{}, nil); err == nil || errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("materials without suite: %v", err)
	}
	// Materials that already hold a data key are left alone.
	m := &crypto.DecryptionMaterials{Suite: crypto.DefaultSuite, DataKey: []byte("x")}
	if err := kr.OnDecrypt(bg, m, nil); err != nil || string(m.DataKey) != "x" {
		t.Fatalf("pre-set data key: %v", err)
	}
	// A cancelled context stops the search.
	ctx, cancel := context.WithCancel(bg)
	cancel()
	err := kr.OnDecrypt(ctx, &crypto.DecryptionMaterials{Suite: crypto.DefaultSuite}, []crypto.EncryptedDataKey{{ProviderID: "ns"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
