package keyring

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
)

func ecKey(t testing.TB, c Curve) *ecdh.PrivateKey {
	t.Helper()
	k, err := c.ECDH().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustECDH(t testing.TB, c Curve, s ECDHScheme, priv *ecdh.PrivateKey, pub *ecdh.PublicKey) *ECDH {
	t.Helper()
	k, err := NewRawECDH(c, s, priv, pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecdhEncrypt(t testing.TB, k crypto.Keyring, ec crypto.EncryptionContext) ([]byte, []crypto.EncryptedDataKey) {
	t.Helper()
	m := &crypto.EncryptionMaterials{Suite: crypto.SuiteByID(0x0578), Context: ec}
	if err := k.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m.DataKey, m.EncryptedDataKeys
}

func ecdhDecrypt(k crypto.Keyring, ec crypto.EncryptionContext, edks []crypto.EncryptedDataKey) ([]byte, error) {
	m := &crypto.DecryptionMaterials{Suite: crypto.SuiteByID(0x0578), Context: ec}
	err := k.OnDecrypt(context.Background(), m, edks)
	return m.DataKey, err
}

// Every curve and scheme: what the sender wraps, the recipient's static
// and discovery keyrings unwrap, and so does the sender's own static
// keyring (either party of a static pair decrypts).
func TestECDHRoundTrip(t *testing.T) {
	ec := crypto.EncryptionContext{"tenant": "acme", "ключ": "värde"}
	for _, c := range []Curve{ECCNISTP256, ECCNISTP384, ECCNISTP521} {
		t.Run(c.String(), func(t *testing.T) {
			sender, recipient := ecKey(t, c), ecKey(t, c)
			static := mustECDH(t, c, RawPrivateKeyToStaticPublicKey, sender, recipient.PublicKey())
			ephemeral := mustECDH(t, c, EphemeralPrivateKeyToStaticPublicKey, nil, recipient.PublicKey())
			discovery := mustECDH(t, c, PublicKeyDiscovery, recipient, nil)
			recipStatic := mustECDH(t, c, RawPrivateKeyToStaticPublicKey, recipient, sender.PublicKey())
			for name, enc := range map[string]*ECDH{"static": static, "ephemeral": ephemeral} {
				dk, edks := ecdhEncrypt(t, enc, ec)
				if len(edks) != 1 || edks[0].ProviderID != ProviderIDRawECDH || len(edks[0].ProviderInfo) != 1+2*(4+c.compressedLen()) ||
					len(edks[0].Ciphertext) != 32+32+32+16 {
					t.Fatalf("%s: EDK shape %q %d %d", name, edks[0].ProviderID, len(edks[0].ProviderInfo), len(edks[0].Ciphertext))
				}
				readers := map[string]*ECDH{"discovery": discovery}
				if name == "static" {
					readers["recipient static"], readers["sender static"] = recipStatic, static
				}
				for rn, r := range readers {
					got, err := ecdhDecrypt(r, ec, edks)
					if err != nil || !bytes.Equal(got, dk) {
						t.Errorf("%s -> %s: %v", name, rn, err)
					}
					if !r.MatchesEDK(edks[0]) {
						t.Errorf("%s -> %s: MatchesEDK false", name, rn)
					}
				}
				if !enc.MatchesEDK(edks[0]) {
					t.Errorf("%s: the writer does not match its own EDK", name)
				}
				// Another context: the commitment check fails.
				if _, err := ecdhDecrypt(discovery, crypto.EncryptionContext{"tenant": "other"}, edks); !errors.Is(err, crypto.ErrNoMatchingKey) || !strings.Contains(err.Error(), "commitment") {
					t.Errorf("%s: wrong context: %v", name, err)
				}
			}
		})
	}
}

func TestECDHNegative(t *testing.T) {
	ec := crypto.EncryptionContext{"a": "b"}
	sender, recipient, other := ecKey(t, ECCNISTP384), ecKey(t, ECCNISTP384), ecKey(t, ECCNISTP384)
	_, edks := ecdhEncrypt(t, mustECDH(t, ECCNISTP384, RawPrivateKeyToStaticPublicKey, sender, recipient.PublicKey()), ec)

	// Wrong recipient: a typed error naming the EDK's keys.
	_, err := ecdhDecrypt(mustECDH(t, ECCNISTP384, PublicKeyDiscovery, other, nil), ec, edks)
	var nm *ECDHNoMatchError
	if !errors.As(err, &nm) || !errors.Is(err, crypto.ErrNoMatchingKey) || len(nm.Skipped) != 1 ||
		!strings.Contains(err.Error(), KeyFingerprint(Compress(recipient.PublicKey()))) {
		t.Errorf("wrong recipient: %v", err)
	}
	// Wrong curve: the keyring says the EDK is on another curve.
	p256 := ecKey(t, ECCNISTP256)
	_, err = ecdhDecrypt(mustECDH(t, ECCNISTP256, PublicKeyDiscovery, p256, nil), ec, edks)
	if !errors.As(err, &nm) || !strings.Contains(err.Error(), "another curve") {
		t.Errorf("wrong curve: %v", err)
	}
	// Keys on another curve than configured are refused at construction.
	if _, err := NewRawECDH(ECCNISTP384, RawPrivateKeyToStaticPublicKey, sender, p256.PublicKey()); err == nil || !strings.Contains(err.Error(), "ECC_NIST_P256") {
		t.Errorf("mixed curves: %v", err)
	}
	// Ephemeral cannot decrypt, discovery cannot encrypt.
	eph := mustECDH(t, ECCNISTP384, EphemeralPrivateKeyToStaticPublicKey, nil, recipient.PublicKey())
	if _, err := ecdhDecrypt(eph, ec, edks); !errors.Is(err, ErrEncryptOnly) {
		t.Errorf("ephemeral decrypt: %v", err)
	}
	m := &crypto.EncryptionMaterials{Suite: crypto.SuiteByID(0x0578), Context: ec}
	if err := mustECDH(t, ECCNISTP384, PublicKeyDiscovery, recipient, nil).OnEncrypt(context.Background(), m); !errors.Is(err, ErrDecryptOnly) || len(m.EncryptedDataKeys) != 0 {
		t.Errorf("discovery encrypt: %v", err)
	}
	// Missing keys for the scheme.
	for _, c := range []struct {
		s    ECDHScheme
		priv *ecdh.PrivateKey
		pub  *ecdh.PublicKey
	}{{RawPrivateKeyToStaticPublicKey, sender, nil}, {RawPrivateKeyToStaticPublicKey, nil, recipient.PublicKey()},
		{EphemeralPrivateKeyToStaticPublicKey, sender, recipient.PublicKey()}, {PublicKeyDiscovery, nil, nil}, {PublicKeyDiscovery, recipient, sender.PublicKey()}} {
		if _, err := NewRawECDH(ECCNISTP384, c.s, c.priv, c.pub); err == nil {
			t.Errorf("%v with priv %v pub %v accepted", c.s, c.priv != nil, c.pub != nil)
		}
	}
	// A tampered ciphertext fails the commitment or the tag.
	bad := edks[0]
	bad.Ciphertext = bytes.Clone(bad.Ciphertext)
	bad.Ciphertext[70] ^= 1
	if _, err := ecdhDecrypt(mustECDH(t, ECCNISTP384, PublicKeyDiscovery, recipient, nil), ec, []crypto.EncryptedDataKey{bad}); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Errorf("tampered: %v", err)
	}
}

// The counter-mode KDF against a value computed independently (HMAC-SHA-384
// blocks 1 and 2 over counter || label || 0 || context || L).
func TestKDFCounterLength(t *testing.T) {
	out := kdfCounter(bytes.Repeat([]byte{7}, 48), []byte("label"), bytes.Repeat([]byte{1}, 32))
	if len(out) != 64 {
		t.Fatalf("len %d", len(out))
	}
	if bytes.Equal(out, kdfCounter(bytes.Repeat([]byte{7}, 48), []byte("label"), bytes.Repeat([]byte{2}, 32))) {
		t.Error("the salt does not change the output")
	}
}

func TestLoadECKeys(t *testing.T) {
	dir := t.TempDir()
	ek, err := ecdsa.GenerateKey(ECCNISTP521.ecdhCurveForTest(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(ek)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privPath := write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	pubPath := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	derPath := write("pub.der", pubDER)
	priv, err := LoadECPrivateKeyPEM(privPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pubPath, derPath} {
		pub, err := LoadECPublicKey(p)
		if err != nil || !pub.Equal(priv.PublicKey()) {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := LoadECPrivateKeyPEM(pubPath); err == nil || !strings.Contains(err.Error(), "holds only a public key") {
		t.Errorf("public key as private: %v", err)
	}
	if _, err := LoadECPublicKey(privPath); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("private key as public: %v", err)
	}
}

func (c Curve) ecdhCurveForTest() elliptic.Curve { return curveInfo[c].ec }
