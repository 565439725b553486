package kmsconformance

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
)

// The asymmetric calls of the KMS RSA and ECDH keyrings (issue 15):
// CreateKey with an asymmetric KeySpec, GetPublicKey, RSA Decrypt with an
// EncryptionAlgorithm, DeriveSharedSecret, and InvalidKeyUsageException
// for a key used against its usage.
func init() {
	conformanceCases = append(conformanceCases,
		conformanceCase{"asym/rsa-keyring", testRSAKeyring},
		conformanceCase{"asym/ecdh-keyring", testECDHKeyring},
	)
	knownDeviations["local-kms"]["KEY_AGREEMENT keys"] = "CreateKey refuses KeyUsage KEY_AGREEMENT and DeriveSharedSecret is not implemented " +
		"(the AWS KMS ECDH keyring is tested against kmsemu only)"
	knownDeviations["local-kms"]["GenerateDataKey RSA"] = "GenerateDataKey with an RSA key answers HTTP 500 InternalFailureException " +
		"(\"key type not yet supported\"), which the SDK retries; AWS answers InvalidKeyUsageException (encjob never calls it with an RSA key)"
}

func (c *caseEnv) asymKey(t *testing.T, spec types.KeySpec, usage types.KeyUsageType) (string, error) {
	t.Helper()
	out, err := c.Client().CreateKey(c.ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Description: aws.String("encjob conformance " + t.Name())})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

func testRSAKeyring(t *testing.T, c *caseEnv) {
	arn, err := c.asymKey(t, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	if err != nil {
		t.Fatalf("CreateKey RSA_2048: %v", err)
	}
	cfg := awskms.Config{Region: Region, Clients: c.Provider()}
	suite := crypto.SuiteByID(0x0478)
	for _, alg := range []string{awskms.RSAESOAEPSHA1, awskms.RSAESOAEPSHA256} {
		k, err := awskms.NewRSA(c.ctx, awskms.RSAConfig{Client: cfg, KeyARN: arn, Algorithm: alg, FetchPublicKey: true})
		if err != nil {
			t.Fatal(err)
		}
		m := &crypto.EncryptionMaterials{Suite: suite, Context: crypto.EncryptionContext{"a": "b"}}
		if err := k.OnEncrypt(c.ctx, m); err != nil {
			t.Fatalf("%s: OnEncrypt (GetPublicKey): %v", alg, err)
		}
		dm := &crypto.DecryptionMaterials{Suite: suite, Context: m.Context}
		if err := k.OnDecrypt(c.ctx, dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
			t.Fatalf("%s: OnDecrypt (Decrypt with EncryptionAlgorithm): %v", alg, err)
		}
	}
	_, err = c.Client().GenerateDataKey(c.ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: types.DataKeySpecAes256})
	if apiCode(err) != "InvalidKeyUsageException" && !c.deviates(t, "GenerateDataKey RSA") {
		t.Errorf("GenerateDataKey with an RSA key: %v, want InvalidKeyUsageException", err)
	}
}

func testECDHKeyring(t *testing.T, c *caseEnv) {
	arn, err := c.asymKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeKeyAgreement)
	if err != nil {
		if c.deviates(t, "KEY_AGREEMENT keys") {
			return
		}
		t.Fatalf("CreateKey ECC_NIST_P256 KEY_AGREEMENT: %v", err)
	}
	recipient, _ := ecdh.P256().GenerateKey(rand.Reader)
	k, err := awskms.NewECDH(c.ctx, awskms.ECDHConfig{Client: awskms.Config{Region: Region, Clients: c.Provider()}, Curve: keyring.ECCNISTP256,
		Scheme: keyring.KmsPrivateKeyToStaticPublicKey, KeyID: arn, RecipientPublicKey: recipient.PublicKey()})
	if err != nil {
		t.Fatalf("NewECDH (GetPublicKey): %v", err)
	}
	suite := crypto.SuiteByID(0x0578)
	m := &crypto.EncryptionMaterials{Suite: suite, Context: crypto.EncryptionContext{"a": "b"}}
	if err := k.OnEncrypt(c.ctx, m); err != nil {
		t.Fatalf("OnEncrypt (DeriveSharedSecret): %v", err)
	}
	disc, _ := keyring.NewRawECDH(keyring.ECCNISTP256, keyring.PublicKeyDiscovery, recipient, nil)
	dm := &crypto.DecryptionMaterials{Suite: suite, Context: m.Context}
	if err := disc.OnDecrypt(c.ctx, dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Fatalf("the recipient does not decrypt: %v", err)
	}
	_, err = c.Client().Encrypt(c.ctx, &kms.EncryptInput{KeyId: aws.String(arn), Plaintext: []byte("x")})
	var iku *types.InvalidKeyUsageException
	if !errors.As(err, &iku) {
		t.Errorf("Encrypt with a KEY_AGREEMENT key: %v, want InvalidKeyUsageException", err)
	}
}
