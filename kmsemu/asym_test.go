package kmsemu_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const asymSeed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
  - id: 66667777-8888-9999-0000-111122223333
    keySpec: RSA_2048
  - id: 77778888-9999-0000-1111-222233334444
    keySpec: ECC_NIST_P384
    usage: KEY_AGREEMENT
`

const (
	idRSA = "66667777-8888-9999-0000-111122223333"
	idECC = "77778888-9999-0000-1111-222233334444"
)

// RSA keys through the unmodified SDK: GetPublicKey, offline OAEP
// encryption that KMS Decrypt opens, KMS Encrypt, and the real error
// types for misuse.
func TestRSAKeys(t *testing.T) {
	v := wrap(kmsemutest.Start(t, asymSeed))
	c, cx := v.client(east), ctx(t)
	rsaARN := arn(acct, east, idRSA)
	pk := must[*kms.GetPublicKeyOutput](t)(c.GetPublicKey(cx, &kms.GetPublicKeyInput{KeyId: aws.String(rsaARN)}))
	if pk.KeySpec != types.KeySpecRsa2048 || pk.KeyUsage != types.KeyUsageTypeEncryptDecrypt ||
		!slices.Equal(pk.EncryptionAlgorithms, []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256}) {
		t.Fatalf("GetPublicKey = %+v", pk)
	}
	p, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := p.(*rsa.PublicKey)
	for _, alg := range []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256} {
		h := sha256.New()
		if alg == types.EncryptionAlgorithmSpecRsaesOaepSha1 {
			h = sha1.New()
		}
		ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, []byte("secret"), nil)
		if err != nil {
			t.Fatal(err)
		}
		out := must[*kms.DecryptOutput](t)(c.Decrypt(cx, &kms.DecryptInput{CiphertextBlob: ct, KeyId: aws.String(rsaARN), EncryptionAlgorithm: alg}))
		if string(out.Plaintext) != "secret" || *out.KeyId != rsaARN || out.EncryptionAlgorithm != alg {
			t.Errorf("%s: Decrypt = %+v", alg, out)
		}
		enc := must[*kms.EncryptOutput](t)(c.Encrypt(cx, &kms.EncryptInput{KeyId: aws.String(rsaARN), Plaintext: []byte("x"), EncryptionAlgorithm: alg}))
		if _, err := c.Decrypt(cx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: aws.String(rsaARN), EncryptionAlgorithm: alg}); err != nil {
			t.Errorf("%s: KMS Encrypt does not decrypt: %v", alg, err)
		}
	}
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("secret"), nil)
	for name, err := range map[string]error{
		"decrypt without algorithm": second(c.Decrypt(cx, &kms.DecryptInput{CiphertextBlob: ct, KeyId: aws.String(rsaARN)})),
		"generate data key":         second(c.GenerateDataKey(cx, &kms.GenerateDataKeyInput{KeyId: aws.String(rsaARN), KeySpec: types.DataKeySpecAes256})),
		"symmetric with RSA alg": second(c.Encrypt(cx, &kms.EncryptInput{KeyId: aws.String(arn(acct, east, idApp)), Plaintext: []byte("x"),
			EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})),
		"derive with RSA key": second(c.DeriveSharedSecret(cx, &kms.DeriveSharedSecretInput{KeyId: aws.String(rsaARN), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: pk.PublicKey})),
	} {
		if !isA[types.InvalidKeyUsageException](err) {
			t.Errorf("%s: err = %v, want InvalidKeyUsageException", name, err)
		}
	}
	if _, err := c.Decrypt(cx, &kms.DecryptInput{CiphertextBlob: ct, KeyId: aws.String(rsaARN), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1}); !isA[types.InvalidCiphertextException](err) {
		t.Errorf("wrong OAEP hash: err = %v, want InvalidCiphertextException", err)
	}
	if _, err := c.GetPublicKey(cx, &kms.GetPublicKeyInput{KeyId: aws.String(arn(acct, east, idApp))}); !isA[types.UnsupportedOperationException](err) {
		t.Errorf("GetPublicKey of a symmetric key: %v", err)
	}
	big := make([]byte, 200)
	if _, err := c.Encrypt(cx, &kms.EncryptInput{KeyId: aws.String(rsaARN), Plaintext: big, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256}); errCode(err) != "ValidationException" {
		t.Errorf("oversized plaintext: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

// ECC key-agreement keys: DeriveSharedSecret agrees with a local ECDH.
func TestKeyAgreementKeys(t *testing.T) {
	v := wrap(kmsemutest.Start(t, asymSeed))
	c, cx := v.client(east), ctx(t)
	eccARN := arn(acct, east, idECC)
	pk := must[*kms.GetPublicKeyOutput](t)(c.GetPublicKey(cx, &kms.GetPublicKeyInput{KeyId: aws.String(eccARN)}))
	if pk.KeySpec != types.KeySpecEccNistP384 || pk.KeyUsage != types.KeyUsageTypeKeyAgreement ||
		!slices.Equal(pk.KeyAgreementAlgorithms, []types.KeyAgreementAlgorithmSpec{types.KeyAgreementAlgorithmSpecEcdh}) {
		t.Fatalf("GetPublicKey = %+v", pk)
	}
	p, err := x509.ParsePKIXPublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	kmsPub, _ := p.(*ecdsa.PublicKey).ECDH()
	local, _ := ecdh.P384().GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(local.PublicKey())
	out := must[*kms.DeriveSharedSecretOutput](t)(c.DeriveSharedSecret(cx, &kms.DeriveSharedSecretInput{KeyId: aws.String(eccARN),
		KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: der}))
	want, _ := local.ECDH(kmsPub)
	if !bytes.Equal(out.SharedSecret, want) || *out.KeyId != eccARN {
		t.Fatalf("shared secret differs from the local ECDH")
	}
	wrong, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrongDER, _ := x509.MarshalPKIXPublicKey(&wrong.PublicKey)
	if _, err := c.DeriveSharedSecret(cx, &kms.DeriveSharedSecretInput{KeyId: aws.String(eccARN), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: wrongDER}); errCode(err) != "ValidationException" {
		t.Errorf("wrong curve: %v", err)
	}
	for name, err := range map[string]error{
		"encrypt with ECC key": second(c.Encrypt(cx, &kms.EncryptInput{KeyId: aws.String(eccARN), Plaintext: []byte("x")})),
		"derive with symmetric key": second(c.DeriveSharedSecret(cx, &kms.DeriveSharedSecretInput{KeyId: aws.String(arn(acct, east, idApp)),
			KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: der})),
	} {
		if !isA[types.InvalidKeyUsageException](err) {
			t.Errorf("%s: err = %v, want InvalidKeyUsageException", name, err)
		}
	}
	// CreateKey makes the same kinds of keys.
	ck := must[*kms.CreateKeyOutput](t)(c.CreateKey(cx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP521, KeyUsage: types.KeyUsageTypeKeyAgreement}))
	if ck.KeyMetadata.KeySpec != types.KeySpecEccNistP521 || len(ck.KeyMetadata.KeyAgreementAlgorithms) != 1 {
		t.Errorf("CreateKey = %+v", ck.KeyMetadata)
	}
	if _, err := c.CreateKey(cx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256}); errCode(err) != "ValidationException" {
		t.Errorf("ECC key for ENCRYPT_DECRYPT: %v", err)
	}
}
