package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// Every keyring of this package implements crypto.EDKMatcher, and the
// key-less matchers answer exactly as the keyrings they stand for: for the
// EDK each keyring wrote, and for near misses of it.
func TestMatchesEDK(t *testing.T) {
	aesKR, err := NewRawAES("ns", "aes", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKR, err := NewRawRSA("ns", "rsa", nil, &priv.PublicKey, OAEPSHA256)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := NewMulti(aesKR, rsaKR)
	if err != nil {
		t.Fatal(err)
	}
	m := &crypto.EncryptionMaterials{Suite: crypto.SuiteByID(0x0478), Context: crypto.EncryptionContext{"a": "b"}}
	if err := multi.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	aesEDK, rsaEDK := m.EncryptedDataKeys[0], m.EncryptedDataKeys[1]
	mutate := func(e crypto.EncryptedDataKey, f func(*crypto.EncryptedDataKey)) crypto.EncryptedDataKey {
		e.ProviderInfo = bytes.Clone(e.ProviderInfo)
		f(&e)
		return e
	}
	for _, c := range []struct {
		name string
		m    crypto.EDKMatcher
		edk  crypto.EncryptedDataKey
		want bool
	}{
		{"aes own", aesKR, aesEDK, true},
		{"aes matcher own", RawAESMatcher("ns", "aes"), aesEDK, true},
		{"aes other namespace", RawAESMatcher("nt", "aes"), aesEDK, false},
		{"aes other name", RawAESMatcher("ns", "aex"), aesEDK, false},
		{"aes name prefix", RawAESMatcher("ns", "ae"), aesEDK, false},
		{"aes tag length", aesKR, mutate(aesEDK, func(e *crypto.EncryptedDataKey) { e.ProviderInfo[len("aes")+3] = 96 }), false},
		{"aes truncated iv", aesKR, mutate(aesEDK, func(e *crypto.EncryptedDataKey) { e.ProviderInfo = e.ProviderInfo[:len(e.ProviderInfo)-1] }), false},
		{"aes vs rsa edk", aesKR, rsaEDK, false},
		{"rsa public-only own", rsaKR, rsaEDK, true},
		{"rsa matcher own", RawRSAMatcher("ns", "rsa"), rsaEDK, true},
		{"rsa other name", RawRSAMatcher("ns", "rs"), rsaEDK, false},
		{"rsa vs aes edk", rsaKR, aesEDK, false},
		{"multi aes", multi, aesEDK, true},
		{"multi rsa", multi, rsaEDK, true},
		{"multi other", multi, crypto.EncryptedDataKey{ProviderID: "aws-kms", ProviderInfo: []byte("arn")}, false},
	} {
		if got := c.m.MatchesEDK(c.edk); got != c.want {
			t.Errorf("%s: MatchesEDK = %v, want %v", c.name, got, c.want)
		}
	}
	if crypto.MatchesAnyEDK(multi, nil) || !crypto.MatchesAnyEDK(multi, m.EncryptedDataKeys[1:]) {
		t.Error("MatchesAnyEDK disagrees with MatchesEDK")
	}
}
