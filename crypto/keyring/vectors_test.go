package keyring

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/esdkvectors"
)

type (
	vectorKey  = esdkvectors.Key
	caseKey    = esdkvectors.KeyRef
	vectorCase = esdkvectors.Case
)

type vectorSet struct {
	keys  map[string]vectorKey
	order []string // key ids in keys.json order
	cases []vectorCase
}

// vectorsDir is the shared ESDK test-vector set (see its README.md).
var vectorsDir = esdkvectors.Dir()

func loadVectors(t *testing.T) *vectorSet {
	t.Helper()
	s := esdkvectors.Load(t)
	return &vectorSet{keys: s.Keys, order: s.Order, cases: s.Cases}
}

// keyring builds the keyring for one case key (RSA padding comes from the
// case, not the key).
func (vs *vectorSet) keyring(t *testing.T, ck caseKey) crypto.Keyring {
	t.Helper()
	k, ok := vs.keys[ck.KeyID]
	if !ok {
		t.Fatalf("key %q is not in keys.json", ck.KeyID)
	}
	switch k.Type {
	case "raw-aes":
		mat, err := base64.StdEncoding.DecodeString(k.MaterialB64)
		if err != nil {
			t.Fatalf("key %s: %v", k.ID, err)
		}
		kr, err := NewRawAES(k.Namespace, k.Name, mat)
		if err != nil {
			t.Fatalf("key %s: %v", k.ID, err)
		}
		return kr
	case "raw-rsa":
		pad, err := ParsePadding(ck.Padding)
		if err != nil {
			t.Fatalf("key %s: %v", k.ID, err)
		}
		priv := parsePrivatePEM(t, k.PrivateKeyPEM)
		pub := parsePublicPEM(t, k.PublicKeyPEM)
		kr, err := NewRawRSA(k.Namespace, k.Name, priv, pub, pad)
		if err != nil {
			t.Fatalf("key %s: %v", k.ID, err)
		}
		return kr
	}
	t.Fatalf("key %s: unknown type %q", k.ID, k.Type)
	return nil
}

func parsePrivatePEM(t *testing.T, s string) *rsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatal("no PEM block in private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func parsePublicPEM(t *testing.T, s string) *rsa.PublicKey {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatal("no PEM block in public key")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PublicKey)
}

func (vs *vectorSet) header(t *testing.T, c vectorCase) *crypto.Header {
	t.Helper()
	ct, err := os.ReadFile(filepath.Join(vectorsDir, c.Ciphertext))
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	return h
}

func unwrap(kr crypto.Keyring, h *crypto.Header) ([]byte, error) {
	m := &crypto.DecryptionMaterials{Suite: h.Suite, Context: h.Context}
	if err := kr.OnDecrypt(context.Background(), m, h.EncryptedDataKeys); err != nil {
		return nil, err
	}
	return m.DataKey, nil
}

// TestVectorsUnwrapEveryEDK parses the header of every valid vector and
// checks that each key listed in encrypt_keys unwraps the data key on its
// own, that all of them agree on it, and that the decoy keys (same name,
// other material; other name) find no matching key.
func TestVectorsUnwrapEveryEDK(t *testing.T) {
	vs := loadVectors(t)
	unwrapped := map[string]int{}
	for _, c := range vs.cases {
		if c.Expected != "success" {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			h := vs.header(t, c)
			if got, want := h.Suite.Hex(), strings.ToUpper(strings.Replace(c.SuiteID, "0x", "0X", 1)); !strings.EqualFold(got, want) {
				t.Fatalf("suite %s, manifest says %s", got, c.SuiteID)
			}
			if len(h.EncryptedDataKeys) < len(c.EncryptKeys) {
				t.Fatalf("header has %d EDKs, manifest lists %d encrypt keys", len(h.EncryptedDataKeys), len(c.EncryptKeys))
			}
			var first []byte
			for _, ek := range c.EncryptKeys {
				dk, err := unwrap(vs.keyring(t, ek), h)
				if err != nil {
					t.Fatalf("key %s (%s): %v", ek.KeyID, ek.Padding, err)
				}
				if len(dk) != h.Suite.KeyLen {
					t.Fatalf("key %s: data key is %d bytes, suite needs %d", ek.KeyID, len(dk), h.Suite.KeyLen)
				}
				if first == nil {
					first = dk
				} else if !bytes.Equal(first, dk) {
					t.Fatalf("key %s unwrapped a different data key than %s", ek.KeyID, c.EncryptKeys[0].KeyID)
				}
				unwrapped[vs.keys[ek.KeyID].Type]++
			}
			for _, decoy := range []string{"aes-256-wrong-material", "aes-256-other-name"} {
				if _, ok := vs.keys[decoy]; !ok {
					continue
				}
				if _, err := unwrap(vs.keyring(t, caseKey{KeyID: decoy}), h); !errors.Is(err, crypto.ErrNoMatchingKey) {
					t.Fatalf("decoy %s: got %v, want ErrNoMatchingKey", decoy, err)
				}
			}
			for _, ek := range c.EncryptKeys {
				if ek.KeyID == "rsa-2048" {
					decoy := caseKey{KeyID: "rsa-2048-wrong-material", Padding: ek.Padding}
					if _, err := unwrap(vs.keyring(t, decoy), h); !errors.Is(err, crypto.ErrNoMatchingKey) {
						t.Fatalf("decoy rsa-2048-wrong-material: got %v, want ErrNoMatchingKey", err)
					}
				}
			}
		})
	}
	// Every raw key of the set must have been exercised.
	if unwrapped["raw-aes"] == 0 || unwrapped["raw-rsa"] == 0 {
		t.Fatalf("unwrapped %v; want both raw-aes and raw-rsa EDKs", unwrapped)
	}
	for _, id := range vs.order {
		k := vs.keys[id]
		if strings.Contains(id, "wrong") || strings.Contains(id, "other") {
			continue
		}
		used := false
		for _, c := range vs.cases {
			for _, ek := range c.EncryptKeys {
				used = used || (ek.KeyID == id && c.Expected == "success")
			}
		}
		if !used {
			t.Errorf("key %s (%s) wraps no valid vector", id, k.Type)
		}
	}
}

// TestVectorsKeyFailures checks the keyring-level outcome of the negative
// cases that concern keys: a wrong key, padding or key type finds no
// matching key; a bit flipped in an EDK makes its own key fail (the
// message-level failure of the other keys comes from header
// authentication, which is the engine's job).
func TestVectorsKeyFailures(t *testing.T) {
	vs := loadVectors(t)
	n := 0
	for _, c := range vs.cases {
		if c.Category != "wrong-key" && c.Category != "edk-bitflip" {
			continue
		}
		n++
		t.Run(c.ID, func(t *testing.T) {
			h := vs.header(t, c)
			for _, dk := range c.DecryptKeys {
				flipped := c.Category == "edk-bitflip" && flippedKey(c) == dk.KeyID
				if c.Category == "edk-bitflip" && !flipped {
					continue
				}
				_, err := unwrap(vs.keyring(t, dk), h)
				if !errors.Is(err, crypto.ErrNoMatchingKey) {
					t.Fatalf("key %s (%s): got %v, want ErrNoMatchingKey", dk.KeyID, dk.Padding, err)
				}
			}
			if len(c.DecryptKeys) > 1 {
				var krs []crypto.Keyring
				for _, dk := range c.DecryptKeys {
					krs = append(krs, vs.keyring(t, dk))
				}
				multi, err := NewMulti(krs[0], krs[1:]...)
				if err != nil {
					t.Fatal(err)
				}
				// The intact EDK still unwraps through the key group.
				if _, err := unwrap(multi, h); err != nil {
					t.Fatalf("key group: %v", err)
				}
			}
		})
	}
	if n < 10 {
		t.Fatalf("only %d key-related negative cases found", n)
	}
}

// flippedKey names the key whose EDK a bit-flip case damaged: the only
// encrypt key, or the one the mutation's field names.
func flippedKey(c vectorCase) string {
	if len(c.EncryptKeys) == 1 {
		return c.EncryptKeys[0].KeyID
	}
	f := strings.ToLower(c.Mutation.Field)
	for _, ek := range c.EncryptKeys {
		if strings.Contains(f, "aes") && strings.HasPrefix(ek.KeyID, "aes") {
			return ek.KeyID
		}
		if strings.Contains(f, "rsa") && strings.HasPrefix(ek.KeyID, "rsa") {
			return ek.KeyID
		}
	}
	return ""
}

// TestVectorsDecryptEndToEnd decrypts every valid vector through the
// engine's default materials manager over these keyrings (a key group when
// the case lists several keys) and compares the plaintext.
func TestVectorsDecryptEndToEnd(t *testing.T) {
	vs := loadVectors(t)
	for _, c := range vs.cases {
		if c.Expected != "success" {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			var krs []crypto.Keyring
			for _, dk := range c.DecryptKeys {
				krs = append(krs, vs.keyring(t, dk))
			}
			kr := krs[0]
			if len(krs) > 1 {
				m, err := NewMulti(krs[0], krs[1:]...)
				if err != nil {
					t.Fatal(err)
				}
				kr = m
			}
			policy, err := crypto.ParseCommitmentPolicy(c.CommitmentPolicy)
			if err != nil {
				t.Fatal(err)
			}
			opts := crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr), CommitmentPolicy: policy}
			if c.MaxEncryptedDataKeys != nil {
				opts.MaxEncryptedDataKeys = *c.MaxEncryptedDataKeys
			}
			ct, err := os.ReadFile(filepath.Join(vectorsDir, c.Ciphertext))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(vectorsDir, c.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := crypto.Decrypt(context.Background(), ct, opts)
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestVectorsEncryptRoundTrip encrypts with each vector key (and a key
// group of all of them) and decrypts with each key alone, through the
// engine, for a committing and a non-committing suite.
func TestVectorsEncryptRoundTrip(t *testing.T) {
	vs := loadVectors(t)
	var members []crypto.Keyring
	for _, id := range vs.order {
		k := vs.keys[id]
		if strings.Contains(id, "wrong") || strings.Contains(id, "other") {
			continue
		}
		ck := caseKey{KeyID: id}
		if k.Type == "raw-rsa" {
			ck.Padding = "OAEP_SHA256_MGF1"
		}
		members = append(members, vs.keyring(t, ck))
	}
	group, err := NewMulti(members[0], members[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	ec := crypto.EncryptionContext{"purpose": "round trip", "ключ": "значение"}
	pt := bytes.Repeat([]byte("encjob "), 1000)
	for _, suiteID := range []uint16{0x0578, 0x0178} {
		s := crypto.SuiteByID(suiteID)
		policy := crypto.RequireEncryptRequireDecrypt
		if !s.Committing {
			policy = crypto.ForbidEncryptAllowDecrypt
		}
		msg, err := crypto.Encrypt(context.Background(), pt, crypto.EncryptOptions{
			CMM: crypto.NewDefaultCMM(group), Suite: s, Context: ec, CommitmentPolicy: policy,
		})
		if err != nil {
			t.Fatalf("suite %s: encrypt: %v", s.Hex(), err)
		}
		for i, m := range members {
			t.Run(s.Hex()+"/"+strconv.Itoa(i), func(t *testing.T) {
				got, h, err := crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(m), CommitmentPolicy: policy})
				if err != nil {
					t.Fatalf("decrypt with %v: %v", m, err)
				}
				if !bytes.Equal(got, pt) || len(h.EncryptedDataKeys) != len(members) {
					t.Fatalf("decrypt with %v: %d bytes, %d EDKs", m, len(got), len(h.EncryptedDataKeys))
				}
			})
		}
	}
}
