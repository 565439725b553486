package crypto_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/internal/esdkvectors"
)

type (
	vectorKey    = esdkvectors.Key
	vectorKeyRef = esdkvectors.KeyRef
	vectorCase   = esdkvectors.Case
)

// vectorsDir is a copy of the shared ESDK test-vector set (../shared/testvectors).
var vectorsDir = esdkvectors.Dir()

func loadVectors(t testing.TB) ([]vectorCase, map[string]vectorKey) {
	t.Helper()
	s := esdkvectors.Load(t)
	return s.Cases, s.Keys
}

// vectorKeyring builds the keyring a case asks for: one keyring, or a
// multi-keyring with the first as generator.
func vectorKeyring(t *testing.T, keys map[string]vectorKey, refs []vectorKeyRef) crypto.Keyring {
	t.Helper()
	var krs []crypto.Keyring
	for _, ref := range refs {
		k, ok := keys[ref.KeyID]
		if !ok {
			t.Fatalf("unknown key %q", ref.KeyID)
		}
		switch k.Type {
		case "raw-aes":
			mat, err := base64.StdEncoding.DecodeString(k.MaterialB64)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.NewRawAES(ref.Namespace, ref.Name, mat)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		case "raw-rsa":
			blk, _ := pem.Decode([]byte(k.PrivateKeyPEM))
			if blk == nil {
				t.Fatalf("key %s: no PEM", k.ID)
			}
			priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			pad, err := keyring.ParsePadding(ref.Padding)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.NewRawRSA(ref.Namespace, ref.Name, priv.(*rsa.PrivateKey), nil, pad)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		default:
			t.Fatalf("key %s: unknown type %q", k.ID, k.Type)
		}
	}
	if len(krs) == 1 {
		return krs[0]
	}
	m, err := keyring.NewMulti(krs[0], krs[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVectors(t *testing.T) {
	cases, keys := loadVectors(t)
	var pass, fail int
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join(vectorsDir, c.Ciphertext))
			if err != nil {
				t.Fatal(err)
			}
			policy, err := crypto.ParseCommitmentPolicy(c.CommitmentPolicy)
			if err != nil {
				t.Fatal(err)
			}
			o := crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(vectorKeyring(t, keys, c.DecryptKeys)), CommitmentPolicy: policy}
			if c.MaxEncryptedDataKeys != nil {
				o.MaxEncryptedDataKeys = *c.MaxEncryptedDataKeys
			}
			// Decrypt through the streaming reader in odd-sized reads too.
			pt, hdr, err := crypto.Decrypt(context.Background(), msg, o)
			if c.Expected == "failure" {
				if err == nil {
					t.Fatalf("%s: decryption succeeded, want a %s failure", c.ID, c.Category)
				}
				checkTypedError(t, c, err)
				fail++
				return
			}
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			want, err := os.ReadFile(filepath.Join(vectorsDir, c.Plaintext))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, want) {
				t.Fatalf("plaintext differs: got %d bytes, want %d", len(pt), len(want))
			}
			if got := hdr.Suite.Hex(); !strings.EqualFold(got, c.SuiteID) {
				t.Errorf("suite %s, want %s", got, c.SuiteID)
			}
			if hdr.FrameLength != c.FrameLength {
				t.Errorf("frame length %d, want %d", hdr.FrameLength, c.FrameLength)
			}
			for k, v := range c.Context {
				if hdr.Context[k] != v {
					t.Errorf("context[%q] = %q, want %q", k, hdr.Context[k], v)
				}
			}
			if c.Header != nil {
				checkVectorHeader(t, c, msg)
			}
			pass++
		})
	}
	if pass+fail != len(cases) {
		t.Errorf("%d of %d vector cases passed", pass+fail, len(cases))
	}
}

// checkTypedError requires a failure to be one of the engine's typed
// errors, and the right family for the category.
func checkTypedError(t *testing.T, c vectorCase, err error) {
	t.Helper()
	typed := errors.Is(err, crypto.ErrAuthentication) || errors.Is(err, crypto.ErrMalformed) ||
		errors.Is(err, crypto.ErrPolicy) || errors.Is(err, crypto.ErrNoMatchingKey)
	if !typed {
		t.Fatalf("%s (%s): untyped error: %v", c.ID, c.Category, err)
	}
	wantPolicy := c.Category == "commitment-policy" || c.Category == "edk-limit"
	if wantPolicy != errors.Is(err, crypto.ErrPolicy) {
		t.Errorf("%s (%s): error %v; policy error expected: %v", c.ID, c.Category, err, wantPolicy)
	}
	if c.Category == "wrong-key" && !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Errorf("%s: wrong key should say no key matched, got %v", c.ID, err)
	}
	if strings.Contains(err.Error(), "\n\n") || err.Error() == "" {
		t.Errorf("%s: unclear error %q", c.ID, err)
	}
}

// checkVectorHeader compares the key-free header parse with the header the
// Python ESDK reported.
func checkVectorHeader(t *testing.T, c vectorCase, msg []byte) {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	w := c.Header
	id, _ := strconv.ParseUint(strings.TrimPrefix(w.SuiteID, "0x"), 16, 16)
	if h.Version != w.Version || h.Suite.ID != uint16(id) || hex.EncodeToString(h.MessageID) != w.MessageID ||
		h.ContentType != w.ContentType || h.FrameLength != w.FrameLength {
		t.Errorf("header %+v differs from the reference %+v", h, w)
	}
	if len(h.Context) != len(w.Context) {
		t.Errorf("header context has %d pairs, reference %d", len(h.Context), len(w.Context))
	}
	for k, v := range w.Context {
		if h.Context[k] != v {
			t.Errorf("header context[%q] = %q, want %q", k, h.Context[k], v)
		}
	}
	if len(h.EncryptedDataKeys) != len(w.EDKs) {
		t.Fatalf("%d EDKs, reference %d", len(h.EncryptedDataKeys), len(w.EDKs))
	}
	for i, e := range w.EDKs {
		g := h.EncryptedDataKeys[i]
		if g.ProviderID != e.ProviderID || base64.StdEncoding.EncodeToString(g.ProviderInfo) != e.ProviderInfo ||
			base64.StdEncoding.EncodeToString(g.Ciphertext) != e.Ciphertext {
			t.Errorf("EDK %d differs from the reference", i)
		}
	}
	if w.CommitKey != "" && base64.StdEncoding.EncodeToString(h.CommitKey) != w.CommitKey {
		t.Errorf("commitment key differs from the reference")
	}
}
