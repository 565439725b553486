package crypto_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/internal/esdkvectors"
)

// TestNetV400Vectors decrypts every ESDK-.NET 4.0.0 / 4.0.1 vector
// (testdata/esdk-vectors-net400) that needs no AWS account, as the AWS CI
// runs them: the valid and 4.0.1 sets with the .NET 4.0.0 retry forbidden
// and allowed, the invalid set failing (ErrAuthentication) with it
// forbidden and decrypting with it allowed, the default. Required-EC tests
// go through the required-encryption-context CMM with the manifest's
// context as the reproduced one, and the header must not store it. The 33
// AWS KMS tests are encrypted under a key in AWS's own account: their
// headers are checked (parse, KMS EDK of that key, stored context) and
// counted, and no decryption is attempted.
func TestNetV400Vectors(t *testing.T) {
	var decrypted, kms int
	for _, f := range esdkvectors.Net400Folders {
		s := esdkvectors.LoadNet400(t, f.Name, f.Cases)
		for _, c := range s.Cases {
			t.Run(f.Name+"/"+c.ID, func(t *testing.T) {
				msg, err := os.ReadFile(s.Path(c.Ciphertext))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(s.Path(c.Result.Output.Plaintext))
				if err != nil {
					t.Fatal(err)
				}
				required := c.CMM == "RequiredEncryptionContext"
				if c.CMM != "Default" && !required {
					t.Fatalf("unknown cmm %q", c.CMM)
				}
				checkNet400Header(t, msg, c, required)
				kr := net400Keyring(t, s, c)
				if kr == nil {
					kms++
					return
				}
				cmm := crypto.NewDefaultCMM(kr)
				var reproduced crypto.EncryptionContext
				if required {
					if cmm, err = crypto.NewRequiredContextCMM(cmm, slices.Sorted(maps.Keys(c.Context))); err != nil {
						t.Fatal(err)
					}
					reproduced = c.Context
				}
				for _, forbid := range []bool{true, false} {
					o := crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt,
						ReproducedContext: reproduced, ForbidNetV400Retry: forbid}
					pt, h, err := crypto.Decrypt(context.Background(), msg, o)
					if f.Invalid && forbid {
						if !errors.Is(err, crypto.ErrAuthentication) {
							t.Fatalf("retry forbidden: got %v, want ErrAuthentication", err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("retry forbidden=%v: %v", forbid, err)
					}
					if !bytes.Equal(pt, want) {
						t.Fatalf("retry forbidden=%v: plaintext differs", forbid)
					}
					if required && !maps.Equal(h.RequiredContext, c.Context) {
						t.Fatalf("authenticated-only context %v, want %v", h.RequiredContext, c.Context)
					}
				}
				checkNet400Rewrap(t, msg, want, kr, cmm, reproduced, f.Invalid)
				decrypted++
			})
		}
	}
	// 5 + 28 + 99 decrypt offline; 33 need AWS KMS in us-west-2.
	if decrypted != 132 || kms != 33 {
		t.Fatalf("%d vectors decrypted and %d KMS vectors checked, want 132 and 33", decrypted, kms)
	}
}

// checkNet400Header: the stored context is the manifest's for Default
// tests and holds none of its pairs for required-EC ones (only
// aws-crypto-public-key, for signed suites).
func checkNet400Header(t *testing.T, msg []byte, c esdkvectors.Net400Case, required bool) {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	user := crypto.EncryptionContext{}
	for k, v := range h.Context {
		if k != "aws-crypto-public-key" {
			user[k] = v
		}
	}
	if required && len(user) != 0 || !required && !maps.Equal(user, crypto.EncryptionContext(c.Context)) {
		t.Fatalf("stored context %v for a %s test with context %v", user, c.CMM, c.Context)
	}
	if c.MasterKeys[0].Type == "aws-kms" {
		if len(h.EncryptedDataKeys) != 1 || h.EncryptedDataKeys[0].ProviderID != "aws-kms" ||
			string(h.EncryptedDataKeys[0].ProviderInfo) != "arn:aws:kms:us-west-2:658956600833:key/b3537ef1-d8dc-4780-9f5a-55776cbb2f7f" {
			t.Fatalf("KMS test without the KMS key's EDK: %+v", h.EncryptedDataKeys)
		}
	}
}

// net400Keyring builds the keyring of a test's master keys that can
// decrypt (nil for an AWS KMS test): raw AES, or raw RSA with the entry's
// OAEP hash. Public-only entries took part in encryption only.
func net400Keyring(t *testing.T, s *esdkvectors.Net400Set, c esdkvectors.Net400Case) crypto.Keyring {
	t.Helper()
	var krs []crypto.Keyring
	for _, mk := range c.MasterKeys {
		if mk.Type == "aws-kms" {
			return nil
		}
		k, ok := s.Keys[mk.Key]
		if !ok {
			t.Fatalf("unknown key %q", mk.Key)
		}
		if !k.Decrypt {
			continue
		}
		switch mk.Algorithm {
		case "aes":
			mat, err := base64.StdEncoding.DecodeString(k.Material)
			if err != nil {
				t.Fatal(err)
			}
			kr, err := keyring.NewRawAES(mk.ProviderID, k.KeyID, mat)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		case "rsa":
			blk, _ := pem.Decode([]byte(k.Material))
			if blk == nil {
				t.Fatalf("key %s: no PEM", mk.Key)
			}
			priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			pad, err := keyring.ParsePadding(strings.TrimSuffix(mk.Padding, "-mgf1") + "-" + mk.PaddingHash) // "oaep-mgf1" + "sha512"
			if err != nil {
				t.Fatal(err)
			}
			rk := priv.(*rsa.PrivateKey)
			kr, err := keyring.NewRawRSA(mk.ProviderID, k.KeyID, rk, &rk.PublicKey, pad)
			if err != nil {
				t.Fatal(err)
			}
			krs = append(krs, kr)
		default:
			t.Fatalf("unknown algorithm %q", mk.Algorithm)
		}
	}
	if len(krs) != 1 {
		t.Fatalf("%d decrypting keys", len(krs))
	}
	return krs[0]
}

// checkNet400Rewrap: a rewrap keeps the body, so a message whose body
// 4.0.0 encrypted under its non-standard key derivation is refused; any
// other rewrapped vector is a standard message (it decrypts with the
// retry forbidden), required-EC pairs still kept out of its header.
func checkNet400Rewrap(t *testing.T, msg, want []byte, kr crypto.Keyring, cmm crypto.MaterialsManager, reproduced crypto.EncryptionContext, invalid bool) {
	t.Helper()
	h, _ := crypto.ParseHeader(bytes.NewReader(msg))
	legacyKDF := invalid && h.Suite.MessageVersion == 1 && h.Suite.HasKDF()
	policy := crypto.RequireEncryptAllowDecrypt // the policy of the kept suite
	if !h.Suite.Committing {
		policy = crypto.ForbidEncryptAllowDecrypt
	}
	var out bytes.Buffer
	_, _, err := crypto.Rewrap(context.Background(), &out, bytes.NewReader(msg), crypto.RewrapOptions{
		Decrypt:          crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt, ReproducedContext: reproduced},
		Keyring:          kr,
		CommitmentPolicy: policy,
		// v2 vectors too: this checks the format, not the nonce question.
		AllowHeaderNonceReuse: true,
		RequiredContextKeys: func(*crypto.Header, crypto.EncryptionContext) []string {
			return slices.Sorted(maps.Keys(reproduced))
		},
	})
	if legacyKDF {
		if err == nil || !strings.Contains(err.Error(), "ESDK-.NET 4.0.0") {
			t.Fatalf("rewrap of a 4.0.0 non-standard-KDF message: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("rewrap: %v", err)
	}
	pt, nh, err := crypto.Decrypt(context.Background(), out.Bytes(), crypto.DecryptOptions{CMM: cmm,
		CommitmentPolicy: crypto.RequireEncryptAllowDecrypt, ReproducedContext: reproduced, ForbidNetV400Retry: true})
	if err != nil || !bytes.Equal(pt, want) {
		t.Fatalf("rewrapped vector: %v", err)
	}
	for k := range reproduced {
		if _, stored := nh.Context[k]; stored {
			t.Fatalf("rewrapped vector stores required key %q", k)
		}
	}
}
