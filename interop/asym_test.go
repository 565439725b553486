package interop_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/interop"
)

// asymmetricKeyring builds encjob's raw ECDH, AWS KMS RSA and AWS KMS ECDH
// keyrings for the interop key shapes (KMS ones: kms_test.go).
func asymmetricKeyring(k interop.Key) (crypto.Keyring, error) {
	switch k.Type {
	case "raw-ecdh":
		return rawECDHKeyring(k)
	case "aws-kms-rsa", "aws-kms-ecdh":
		return kmsKeyring(k)
	}
	return nil, fmt.Errorf("unknown key type %q", k.Type)
}

func rawECDHKeyring(k interop.Key) (crypto.Keyring, error) {
	curve, err := keyring.ParseCurve(k.Curve)
	if err != nil {
		return nil, err
	}
	scheme, err := keyring.ParseECDHScheme(k.Scheme)
	if err != nil {
		return nil, err
	}
	var priv *ecdh.PrivateKey
	if k.PrivateKeyPEM != "" {
		b, _ := pem.Decode([]byte(k.PrivateKeyPEM))
		p, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		if priv, err = p.(interface {
			ECDH() (*ecdh.PrivateKey, error)
		}).ECDH(); err != nil {
			return nil, err
		}
	}
	var pub *ecdh.PublicKey
	if der, err := k.PublicKeyDER(); err != nil {
		return nil, err
	} else if der != nil {
		if pub, err = keyring.ParseECPublicKeyDER(der); err != nil {
			return nil, err
		}
	}
	return keyring.NewRawECDH(curve, scheme, priv, pub)
}

var curves = map[string]ecdh.Curve{"ECC_NIST_P256": ecdh.P256(), "ECC_NIST_P384": ecdh.P384(), "ECC_NIST_P521": ecdh.P521()}

func genEC(t testing.TB, curve string) *ecdh.PrivateKey {
	t.Helper()
	k, err := curves[curve].GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdhKey(t testing.TB, curve, scheme string, priv *ecdh.PrivateKey, pub *ecdh.PublicKey) interop.Key {
	t.Helper()
	k, err := interop.ECDHKey("raw-ecdh", curve, scheme, priv, pub)
	if err != nil {
		t.Fatal(err)
	}
	k.Name = scheme
	return k
}

// frameCases is the size matrix around frame boundaries for one key pair
// set: for each suite and frame length, sizes 0, 1, frame-1, frame,
// frame+1 and 3 frames + 7, under a non-ASCII context.
func frameCases(prefix string, suites []uint16, frames []int, enc, dec []interop.Key) []testCase {
	ctx := map[string]string{"tenant": "acme", "目的": "テスト", "emoji": "🔐 ünïcödé"}
	var cases []testCase
	for _, s := range suites {
		for _, f := range frames {
			for _, n := range []int{0, 1, f - 1, f, f + 1, 3*f + 7} {
				cases = append(cases, testCase{Name: fmt.Sprintf("%s/%04X/f%d/n%d", prefix, s, f, n), Suite: s, Frame: f, Size: n,
					Context: ctx, EncKeys: enc, DecKeys: dec})
			}
		}
	}
	return cases
}

// runCases encrypts each case with from and decrypts it with to.
func runCases(t *testing.T, from, to impl, cases []testCase) {
	t.Helper()
	ctx := context.Background()
	for _, c := range cases {
		ct, err := from.encrypt(ctx, c, c.plaintext())
		if err != nil {
			t.Fatalf("%s: %s encrypt: %v", c.Name, from.name, err)
		}
		pt, info, err := to.decrypt(ctx, c, ct)
		if err != nil {
			t.Fatalf("%s: %s decrypt of the %s message: %v", c.Name, to.name, from.name, err)
		}
		if err := check(c, pt, info); err != nil {
			t.Fatalf("%s: %s decrypt of the %s message: %v", c.Name, to.name, from.name, err)
		}
	}
}

// TestRawECDHGoESDK: encjob's raw ECDH keyring against the MPL's, both
// ways, every curve and scheme: static sender -> static recipient and
// discovery recipient, ephemeral sender -> discovery and static
// recipient... (static recipients read ephemeral messages only in the
// MPL's sense: never, as the sender key is unknown; not tried).
func TestRawECDHGoESDK(t *testing.T) {
	t.Parallel()
	suites := []uint16{0x0478, 0x0578, 0x0178, 0x0014}
	for _, curve := range []string{"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"} {
		t.Run(curve, func(t *testing.T) {
			t.Parallel()
			sender, recipient := genEC(t, curve), genEC(t, curve)
			static := ecdhKey(t, curve, "RawPrivateKeyToStaticPublicKey", sender, recipient.PublicKey())
			recipStatic := ecdhKey(t, curve, "RawPrivateKeyToStaticPublicKey", recipient, sender.PublicKey())
			eph := ecdhKey(t, curve, "EphemeralPrivateKeyToStaticPublicKey", nil, recipient.PublicKey())
			disc := ecdhKey(t, curve, "PublicKeyDiscovery", recipient, nil)
			frames := []int{4096}
			if curve == "ECC_NIST_P384" {
				frames = []int{1, 128, 4096}
			}
			for _, w := range []struct {
				name     string
				enc      interop.Key
				decoders []interop.Key
			}{
				{"static", static, []interop.Key{recipStatic, disc, static}},
				{"ephemeral", eph, []interop.Key{disc}},
			} {
				for _, d := range w.decoders {
					cases := frameCases(w.name+"-to-"+d.Scheme, suites, frames, []interop.Key{w.enc}, []interop.Key{d})
					runCases(t, encjobOneShot, goESDK, cases)
					runCases(t, goESDK, encjobOneShot, cases)
				}
			}
		})
	}
}

// TestRawECDHNegativeGoESDK: messages the MPL wrote for another recipient
// or on another curve fail in encjob with the typed ECDH error saying why;
// an ephemeral (encrypt-only) keyring refuses to decrypt.
func TestRawECDHNegativeGoESDK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const curve = "ECC_NIST_P384"
	sender, recipient, other := genEC(t, curve), genEC(t, curve), genEC(t, curve)
	c := testCase{Name: "neg", Suite: 0x0578, Frame: 4096, Size: 100, Context: map[string]string{"k": "v"},
		EncKeys: []interop.Key{ecdhKey(t, curve, "RawPrivateKeyToStaticPublicKey", sender, recipient.PublicKey())}}
	ct, err := goESDK.encrypt(ctx, c, c.plaintext())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		name string
		key  interop.Key
		want string
		is   error
	}{
		{"wrong recipient", ecdhKey(t, curve, "PublicKeyDiscovery", other, nil), "not this keyring's key pair", crypto.ErrNoMatchingKey},
		{"wrong static pair", ecdhKey(t, curve, "RawPrivateKeyToStaticPublicKey", recipient, other.PublicKey()), "not this keyring's key pair", crypto.ErrNoMatchingKey},
		{"wrong curve", ecdhKey(t, "ECC_NIST_P256", "PublicKeyDiscovery", genEC(t, "ECC_NIST_P256"), nil), "another curve", crypto.ErrNoMatchingKey},
		{"ephemeral decrypt", ecdhKey(t, curve, "EphemeralPrivateKeyToStaticPublicKey", nil, recipient.PublicKey()), "can only encrypt", keyring.ErrEncryptOnly},
	} {
		c.DecKeys = []interop.Key{n.key}
		_, _, err := encjobOneShot.decrypt(ctx, c, ct)
		if err == nil || !strings.Contains(err.Error(), n.want) || !isErr(err, n.is) {
			t.Errorf("%s: err = %v, want %q (%v)", n.name, err, n.want, n.is)
		}
		var nm *keyring.ECDHNoMatchError
		if n.is == crypto.ErrNoMatchingKey && !asErr(err, &nm) {
			t.Errorf("%s: not a *keyring.ECDHNoMatchError: %T", n.name, err)
		}
		// The MPL refuses them too.
		if _, _, err := goESDK.decrypt(ctx, c, ct); err == nil {
			t.Errorf("%s: the Go ESDK decrypted", n.name)
		}
	}
}

func pemPublic(t testing.TB, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestMixedECDHGoESDK: a multi-keyring of raw ECDH (generator), raw AES
// and raw RSA written by either side is read by each member alone on the
// other side.
func TestMixedECDHGoESDK(t *testing.T) {
	t.Parallel()
	const curve = "ECC_NIST_P384"
	sender, recipient := genEC(t, curve), genEC(t, curve)
	f := keys(t)
	aes := interop.AESKey("ns", "aes", bytes.Repeat([]byte{3}, 32))
	rsaKey := f.rsa(t, 2048, "oaep-sha256")
	enc := []interop.Key{ecdhKey(t, curve, "RawPrivateKeyToStaticPublicKey", sender, recipient.PublicKey()), aes, rsaKey}
	for _, d := range []interop.Key{ecdhKey(t, curve, "PublicKeyDiscovery", recipient, nil), aes, rsaKey} {
		cases := frameCases("mixed-to-"+d.Type, []uint16{0x0578, 0x0478}, []int{4096}, enc, []interop.Key{d})
		runCases(t, encjobOneShot, goESDK, cases)
		runCases(t, goESDK, encjobOneShot, cases)
	}
}
