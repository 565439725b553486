package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// reqecKeyrings: a raw AES keyring (binds the whole context to its EDKs,
// so a wrong reproduced value fails the unwrap) and a raw RSA one (binds
// nothing, so only the header tag catches it).
func reqecKeyrings(t *testing.T) map[string]crypto.Keyring {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	aes, err := keyring.NewRawAES("ns", "aes", key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKR, err := keyring.NewRawRSA("ns", "rsa", priv, &priv.PublicKey, keyring.OAEPSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Keyring{"raw-aes": aes, "raw-rsa": rsaKR}
}

// TestRequiredContextCMM: the required keys' pairs are authenticated but
// not stored; the reproduced context supplies them on decrypt; every way
// of getting them wrong is ErrReproducedContext with the key named.
func TestRequiredContextCMM(t *testing.T) {
	ctx := context.Background()
	full := crypto.EncryptionContext{"tenant": "acme ÄÖÜ 東京", "purpose": "x", "région": "eu"}
	required := []string{"tenant", "région"}
	for name, kr := range reqecKeyrings(t) {
		cmm, err := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(kr), required)
		if err != nil {
			t.Fatal(err)
		}
		for _, suite := range []uint16{0x0578, 0x0478, 0x0378, 0x0178, 0x0014} {
			for _, size := range []int{0, 1, 99, 100, 101, 1000} {
				s := crypto.SuiteByID(suite)
				policy := crypto.RequireEncryptAllowDecrypt
				if !s.Committing {
					policy = crypto.ForbidEncryptAllowDecrypt
				}
				pt := make([]byte, size)
				rand.Read(pt)
				ct, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: cmm, Suite: s, Context: full, FrameLength: 100, CommitmentPolicy: policy})
				if err != nil {
					t.Fatalf("%s %04x: %v", name, suite, err)
				}
				h, err := crypto.ParseHeader(bytes.NewReader(ct))
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := h.Context["tenant"]; ok || h.Context["purpose"] != "x" {
					t.Fatalf("stored context %v", h.Context)
				}
				dec := func(c crypto.MaterialsManager, reproduced crypto.EncryptionContext) ([]byte, *crypto.Header, error) {
					return crypto.Decrypt(ctx, ct, crypto.DecryptOptions{CMM: c, CommitmentPolicy: policy, ReproducedContext: reproduced})
				}
				good := crypto.EncryptionContext{"tenant": full["tenant"], "région": "eu"}
				for _, c := range []crypto.MaterialsManager{cmm, crypto.NewDefaultCMM(kr)} {
					got, dh, err := dec(c, good)
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("%s %04x %d: decrypt with the reproduced context: %v", name, suite, size, err)
					}
					if !maps.Equal(dh.RequiredContext, good) || !maps.Equal(dh.FullContext(), withPublicKey(full, h)) {
						t.Fatalf("authenticated-only %v, full %v", dh.RequiredContext, dh.FullContext())
					}
					// The whole reproduced context, stored pairs included, is fine too.
					if _, _, err := dec(c, full); err != nil {
						t.Fatalf("full reproduced context: %v", err)
					}
				}
				if size != 101 || suite != 0x0578 && suite != 0x0378 {
					continue // the failures once per keyring and signing
				}
				bad := []struct {
					what       string
					cmm        crypto.MaterialsManager
					reproduced crypto.EncryptionContext
					names      string
				}{
					{"missing (required-EC CMM)", cmm, crypto.EncryptionContext{"tenant": full["tenant"]}, `"région"`},
					{"wrong value (required-EC CMM)", cmm, crypto.EncryptionContext{"tenant": "evil", "région": "eu"}, `"région", "tenant"`},
					{"wrong value (default CMM)", crypto.NewDefaultCMM(kr), crypto.EncryptionContext{"tenant": full["tenant"], "région": "us"}, `"région", "tenant"`},
					{"stored pair differs", cmm, crypto.EncryptionContext{"tenant": full["tenant"], "région": "eu", "purpose": "y"}, `"purpose"`},
					{"extra pair not in the message", crypto.NewDefaultCMM(kr), crypto.EncryptionContext{"tenant": full["tenant"], "région": "eu", "more": "1"}, `"more"`},
				}
				for _, b := range bad {
					_, _, err := dec(b.cmm, b.reproduced)
					if !errors.Is(err, crypto.ErrReproducedContext) || !strings.Contains(err.Error(), b.names) {
						t.Errorf("%s %04x %s: got %v, want ErrReproducedContext naming %s", name, suite, b.what, err, b.names)
					}
				}
				// No reproduced context at all: the default CMM cannot
				// know what is missing, but it still fails, and the header
				// failure says what to do.
				if _, _, err := dec(crypto.NewDefaultCMM(kr), nil); err == nil {
					t.Errorf("%s: decrypted without the required pairs", name)
				} else if errors.Is(err, crypto.ErrAuthentication) && !strings.Contains(err.Error(), "reproduced encryption context") {
					t.Errorf("%s: no hint: %v", name, err)
				}
			}
		}
	}
	// Encrypt without a required key: refused before any key is used.
	cmm, _ := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(reqecKeyrings(t)["raw-aes"]), required)
	_, err := crypto.Encrypt(ctx, []byte("x"), crypto.EncryptOptions{CMM: cmm, Context: crypto.EncryptionContext{"tenant": "a"}})
	if !errors.Is(err, crypto.ErrReproducedContext) || !strings.Contains(err.Error(), `"région"`) {
		t.Errorf("encrypt without a required key: %v", err)
	}
	for _, keys := range [][]string{nil, {""}, {"a", "a"}, {"aws-crypto-public-key"}, {"\xff"}} {
		if _, err := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(reqecKeyrings(t)["raw-aes"]), keys); err == nil {
			t.Errorf("required keys %q accepted", keys)
		}
	}
}

func withPublicKey(c crypto.EncryptionContext, h *crypto.Header) crypto.EncryptionContext {
	out := maps.Clone(c)
	if v, ok := h.Context["aws-crypto-public-key"]; ok {
		out["aws-crypto-public-key"] = v
	}
	return out
}

// TestRewrapRequiredContext: a rewrap reads a required-EC message with
// its reproduced context and writes the new one storing or omitting the
// required pairs as told.
func TestRewrapRequiredContext(t *testing.T) {
	ctx := context.Background()
	kr := reqecKeyrings(t)["raw-aes"]
	cmm, _ := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(kr), []string{"tenant"})
	full := crypto.EncryptionContext{"tenant": "acme", "purpose": "x"}
	ct, err := crypto.Encrypt(ctx, []byte("hello"), crypto.EncryptOptions{CMM: cmm, Context: full, FrameLength: 2})
	if err != nil {
		t.Fatal(err)
	}
	reproduced := crypto.EncryptionContext{"tenant": "acme"}
	for _, omit := range []bool{true, false} {
		o := crypto.RewrapOptions{AllowHeaderNonceReuse: true, Keyring: kr, Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr), ReproducedContext: reproduced}}
		if omit {
			o.RequiredContextKeys = func(old *crypto.Header, c crypto.EncryptionContext) []string {
				if !maps.Equal(old.RequiredContext, reproduced) || c["tenant"] != "acme" {
					t.Errorf("RequiredContextKeys called with %v, %v", old.RequiredContext, c)
				}
				return []string{"tenant"}
			}
		}
		var out bytes.Buffer
		nh, _, err := crypto.Rewrap(ctx, &out, bytes.NewReader(ct), o)
		if err != nil {
			t.Fatal(err)
		}
		if _, stored := nh.Context["tenant"]; stored == omit {
			t.Fatalf("omit=%v: new header context %v", omit, nh.Context)
		}
		var again crypto.EncryptionContext
		if omit {
			again = reproduced
		}
		pt, _, err := crypto.Decrypt(ctx, out.Bytes(), crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr), ReproducedContext: again})
		if err != nil || string(pt) != "hello" {
			t.Fatalf("omit=%v: rewrapped message: %v", omit, err)
		}
	}
	// Without the reproduced context the source does not open.
	_, _, err = crypto.Rewrap(ctx, &bytes.Buffer{}, bytes.NewReader(ct), crypto.RewrapOptions{AllowHeaderNonceReuse: true, Keyring: kr, Decrypt: crypto.DecryptOptions{CMM: cmm}})
	if !errors.Is(err, crypto.ErrReproducedContext) {
		t.Fatalf("rewrap without the reproduced context: %v", err)
	}
}
