package awskms_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const asymSeed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 11111111-1111-4111-8111-111111111111
  - id: 66666666-6666-4666-8666-666666666666
    keySpec: RSA_2048
  - id: 77777777-7777-4777-8777-777777777777
    keySpec: ECC_NIST_P384
    usage: KEY_AGREEMENT
  - id: 88888888-8888-4888-8888-888888888888
    keySpec: ECC_NIST_P384
    usage: KEY_AGREEMENT
`

var (
	rsaARN   = arn("us-east-1", account, "66666666-6666-4666-8666-666666666666")
	eccARN   = arn("us-east-1", account, "77777777-7777-4777-8777-777777777777")
	ecc2ARN  = arn("us-east-1", account, "88888888-8888-4888-8888-888888888888")
	unsigned = crypto.SuiteByID(0x0478)
)

func asymEnv(t *testing.T) (awskms.Config, *kmsemutest.Server) {
	srv := kmsemutest.Start(t, asymSeed)
	return awskms.Config{Region: "us-east-1", Endpoint: srv.URL, Credentials: creds}, srv
}

func onEncrypt(t *testing.T, k crypto.Keyring, s *crypto.Suite, ec crypto.EncryptionContext) *crypto.EncryptionMaterials {
	t.Helper()
	m := &crypto.EncryptionMaterials{Suite: s, Context: ec}
	if err := k.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt: %v", err)
	}
	return m
}

func onDecrypt(k crypto.Keyring, s *crypto.Suite, ec crypto.EncryptionContext, edks []crypto.EncryptedDataKey) ([]byte, error) {
	m := &crypto.DecryptionMaterials{Suite: s, Context: ec}
	err := k.OnDecrypt(context.Background(), m, edks)
	return m.DataKey, err
}

func TestRSAKeyring(t *testing.T) {
	cfg, srv := asymEnv(t)
	ctx := context.Background()
	for _, alg := range []string{awskms.RSAESOAEPSHA1, awskms.RSAESOAEPSHA256} {
		k, err := awskms.NewRSA(ctx, awskms.RSAConfig{Client: cfg, KeyARN: rsaARN, Algorithm: alg, FetchPublicKey: true})
		if err != nil {
			t.Fatal(err)
		}
		m := onEncrypt(t, k, unsigned, ec)
		edk := m.EncryptedDataKeys[0]
		if edk.ProviderID != "aws-kms-rsa" || string(edk.ProviderInfo) != rsaARN || !k.MatchesEDK(edk) {
			t.Fatalf("EDK %s %s", edk.ProviderID, edk.ProviderInfo)
		}
		decrypts := srv.Emu.CallCount("Decrypt")
		// A decrypt-only keyring (no public key) decrypts through KMS.
		dec, err := awskms.NewRSA(ctx, awskms.RSAConfig{Client: cfg, KeyARN: rsaARN, Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		got, err := onDecrypt(dec, unsigned, ec, m.EncryptedDataKeys)
		if err != nil || !bytes.Equal(got, m.DataKey) || srv.Emu.CallCount("Decrypt") != decrypts+1 {
			t.Fatalf("%s: decrypt: %v", alg, err)
		}
		// Another context: the digest check fails with a clear error.
		if _, err := onDecrypt(dec, unsigned, crypto.EncryptionContext{"x": "y"}, m.EncryptedDataKeys); !errors.Is(err, crypto.ErrNoMatchingKey) || !strings.Contains(err.Error(), "encryption context does not match") {
			t.Errorf("wrong context: %v", err)
		}
		if err := dec.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: unsigned}); !errors.Is(err, crypto.ErrCannotGenerate) {
			t.Errorf("encrypt without public key: %v", err)
		}
	}
	k, _ := awskms.NewRSA(ctx, awskms.RSAConfig{Client: cfg, KeyARN: rsaARN, Algorithm: awskms.RSAESOAEPSHA256, FetchPublicKey: true})
	if err := k.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: crypto.SuiteByID(0x0578)}); !errors.Is(err, awskms.ErrSignedSuite) {
		t.Errorf("signed suite: %v", err)
	}
	// A symmetric key and an ECC key are refused with the KMS key usage.
	for _, id := range []string{arn("us-east-1", account, "11111111-1111-4111-8111-111111111111"), eccARN} {
		k, err := awskms.NewRSA(ctx, awskms.RSAConfig{Client: cfg, KeyARN: id, Algorithm: awskms.RSAESOAEPSHA256, FetchPublicKey: true})
		if err != nil {
			t.Fatal(err)
		}
		err = k.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: unsigned})
		var ke *awskms.KeyError
		if !errors.As(err, &ke) || ke.Op != "GetPublicKey" {
			t.Errorf("%s: %v", id, err)
		}
	}
	if _, err := awskms.NewRSA(ctx, awskms.RSAConfig{Client: cfg, KeyARN: "alias/x", Algorithm: awskms.RSAESOAEPSHA256}); err == nil {
		t.Error("an alias was accepted")
	}
}

func TestKMSECDHKeyring(t *testing.T) {
	cfg, srv := asymEnv(t)
	ctx := context.Background()
	recipient, _ := ecdh.P384().GenerateKey(rand.Reader)
	static, err := awskms.NewECDH(ctx, awskms.ECDHConfig{Client: cfg, Curve: keyring.ECCNISTP384, Scheme: keyring.KmsPrivateKeyToStaticPublicKey,
		KeyID: eccARN, RecipientPublicKey: recipient.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	m := onEncrypt(t, static, crypto.SuiteByID(0x0578), ec)
	edk := m.EncryptedDataKeys[0]
	if edk.ProviderID != "aws-kms-ecdh" || srv.Emu.CallCount("DeriveSharedSecret") != 1 {
		t.Fatalf("EDK %s, %d DeriveSharedSecret calls", edk.ProviderID, srv.Emu.CallCount("DeriveSharedSecret"))
	}
	// The recipient's raw discovery keyring reads it, and so does the
	// sender's KMS keyring.
	rawDisc, _ := keyring.NewRawECDH(keyring.ECCNISTP384, keyring.PublicKeyDiscovery, recipient, nil)
	for name, r := range map[string]crypto.Keyring{"raw discovery": rawDisc, "kms static": static} {
		got, err := onDecrypt(r, crypto.SuiteByID(0x0578), ec, m.EncryptedDataKeys)
		if err != nil || !bytes.Equal(got, m.DataKey) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// KMS discovery: a raw sender writes to the KMS key's public key.
	disc, err := awskms.NewECDH(ctx, awskms.ECDHConfig{Client: cfg, Curve: keyring.ECCNISTP384, Scheme: keyring.KmsPublicKeyDiscovery, KeyID: ecc2ARN})
	if err != nil {
		t.Fatal(err)
	}
	kmsPub := publicKeyOf(t, srv, ecc2ARN)
	sender, _ := ecdh.P384().GenerateKey(rand.Reader)
	rawStatic, _ := keyring.NewRawECDH(keyring.ECCNISTP384, keyring.RawPrivateKeyToStaticPublicKey, sender, kmsPub)
	m = onEncrypt(t, rawStatic, unsigned, ec)
	if got, err := onDecrypt(disc, unsigned, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Errorf("kms discovery: %v", err)
	}
	if err := disc.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: unsigned}); !errors.Is(err, keyring.ErrDecryptOnly) {
		t.Errorf("discovery encrypt: %v", err)
	}
	// The other KMS key is not the recipient: a typed no-match error.
	if _, err := onDecrypt(static, unsigned, ec, m.EncryptedDataKeys); !errors.As(err, new(*keyring.ECDHNoMatchError)) {
		t.Errorf("wrong recipient: %v", err)
	}
	// Wrong curve and wrong key usage are refused at construction.
	if _, err := awskms.NewECDH(ctx, awskms.ECDHConfig{Client: cfg, Curve: keyring.ECCNISTP256, Scheme: keyring.KmsPublicKeyDiscovery, KeyID: ecc2ARN}); err == nil || !strings.Contains(err.Error(), "ECC_NIST_P384") {
		t.Errorf("wrong curve: %v", err)
	}
	if _, err := awskms.NewECDH(ctx, awskms.ECDHConfig{Client: cfg, Curve: keyring.ECCNISTP384, Scheme: keyring.KmsPublicKeyDiscovery, KeyID: rsaARN}); err == nil || !strings.Contains(err.Error(), "KEY_AGREEMENT") {
		t.Errorf("RSA key for ECDH: %v", err)
	}
}

func publicKeyOf(t *testing.T, srv *kmsemutest.Server, id string) *ecdh.PublicKey {
	t.Helper()
	out, err := srv.Client("us-east-1").GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: &id})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keyring.ParseECPublicKeyDER(out.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
