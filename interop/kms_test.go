package interop_test

import (
	"context"
	"crypto/ecdh"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/interop"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// kmsKeyring builds encjob's AWS KMS RSA or ECDH keyring for an interop key
// served by the emulator at k.KMSEndpoint.
func kmsKeyring(k interop.Key) (crypto.Keyring, error) {
	ctx := context.Background()
	client := awskms.Config{Region: awskms.ARNRegion(k.KMSKeyID), Endpoint: k.KMSEndpoint, Credentials: kmsemutest.Credentials}
	if k.Type == "aws-kms-rsa" {
		cfg := awskms.RSAConfig{Client: client, KeyARN: k.KMSKeyID, Algorithm: k.EncryptionAlgorithm, FetchPublicKey: k.PublicKeyPEM == ""}
		if k.PublicKeyPEM != "" {
			cfg.PublicKeyPEM = []byte(k.PublicKeyPEM)
		}
		return awskms.NewRSA(ctx, cfg)
	}
	curve, err := keyring.ParseCurve(k.Curve)
	if err != nil {
		return nil, err
	}
	scheme, err := keyring.ParseECDHScheme(k.Scheme)
	if err != nil {
		return nil, err
	}
	cfg := awskms.ECDHConfig{Client: client, Curve: curve, Scheme: scheme, KeyID: k.KMSKeyID}
	if der, err := k.PublicKeyDER(); err != nil {
		return nil, err
	} else if der != nil {
		if cfg.RecipientPublicKey, err = keyring.ParseECPublicKeyDER(der); err != nil {
			return nil, err
		}
	}
	return awskms.NewECDH(ctx, cfg)
}

const kmsSeed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 66666666-6666-4666-8666-666666666666
    keySpec: RSA_2048
  - id: 67666666-6666-4666-8666-666666666666
    keySpec: RSA_3072
  - id: 77777777-7777-4777-8777-777777777777
    keySpec: ECC_NIST_P384
    usage: KEY_AGREEMENT
  - id: 88888888-8888-4888-8888-888888888888
    keySpec: ECC_NIST_P384
    usage: KEY_AGREEMENT
  - id: 99999999-9999-4999-8999-999999999999
    keySpec: ECC_NIST_P256
    usage: KEY_AGREEMENT
  - id: 99999999-9999-4999-8999-999999999998
    keySpec: ECC_NIST_P256
    usage: KEY_AGREEMENT
  - id: 99999999-9999-4999-8999-999999999990
    keySpec: ECC_NIST_P521
    usage: KEY_AGREEMENT
  - id: 99999999-9999-4999-8999-999999999991
    keySpec: ECC_NIST_P521
    usage: KEY_AGREEMENT
`

func kmsARN(id string) string { return "arn:aws:kms:us-east-1:111122223333:key/" + id }

// startKMS serves a fresh emulator (leaving the environment alone, so
// tests stay parallel).
func startKMS(t *testing.T) *kmsemutest.Server {
	t.Helper()
	seed, err := kmsemu.ParseSeed([]byte(kmsSeed))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := kmsemu.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	return kmsemutest.Serve(t, emu)
}

func kmsPublicKey(t *testing.T, srv *kmsemutest.Server, id string) []byte {
	t.Helper()
	out, err := srv.Client("us-east-1").GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	return out.PublicKey
}

// TestKMSRSAGoESDK: the AWS KMS RSA keyring, encjob and the MPL both ways
// through the emulator (unsigned suites only, as the keyring requires):
// each encrypts offline with the public key and decrypts through KMS.
func TestKMSRSAGoESDK(t *testing.T) {
	t.Parallel()
	srv := startKMS(t)
	for _, id := range []string{"66666666-6666-4666-8666-666666666666", "67666666-6666-4666-8666-666666666666"} {
		pemKey := pemPublic(t, kmsPublicKey(t, srv, kmsARN(id)))
		for _, alg := range []string{awskms.RSAESOAEPSHA1, awskms.RSAESOAEPSHA256} {
			// The MPL encrypts with the PEM public key; encjob fetches it.
			mplKey := interop.Key{Type: "aws-kms-rsa", Name: alg, KMSKeyID: kmsARN(id), KMSEndpoint: srv.URL, EncryptionAlgorithm: alg, PublicKeyPEM: pemKey}
			ownKey := mplKey
			ownKey.PublicKeyPEM = ""
			cases := frameCases("rsa-"+alg, []uint16{0x0478, 0x0178, 0x0014}, []int{4096}, []interop.Key{mplKey}, []interop.Key{ownKey})
			runCases(t, goESDK, encjobOneShot, cases)
			for i := range cases {
				cases[i].EncKeys, cases[i].DecKeys = []interop.Key{ownKey}, []interop.Key{mplKey}
			}
			runCases(t, encjobOneShot, goESDK, cases)
		}
	}
}

// TestKMSECDHGoESDK: the AWS KMS ECDH keyring, encjob and the MPL both
// ways: KMS static sender to a KMS recipient's public key, read by the
// recipient's KMS discovery keyring and by the sender's own static
// keyring; a raw ephemeral sender to the KMS recipient.
func TestKMSECDHGoESDK(t *testing.T) {
	t.Parallel()
	srv := startKMS(t)
	pairs := map[string][2]string{
		"ECC_NIST_P384": {"77777777-7777-4777-8777-777777777777", "88888888-8888-4888-8888-888888888888"},
		"ECC_NIST_P256": {"99999999-9999-4999-8999-999999999999", "99999999-9999-4999-8999-999999999998"},
		"ECC_NIST_P521": {"99999999-9999-4999-8999-999999999990", "99999999-9999-4999-8999-999999999991"},
	}
	for curve, p := range pairs {
		senderARN, recipARN := kmsARN(p[0]), kmsARN(p[1])
		recipDER := kmsPublicKey(t, srv, recipARN)
		recipPub, err := keyring.ParseECPublicKeyDER(recipDER)
		if err != nil {
			t.Fatal(err)
		}
		static := kmsECDHKey(t, curve, "KmsPrivateKeyToStaticPublicKey", senderARN, srv.URL, recipPub)
		disc := kmsECDHKey(t, curve, "KmsPublicKeyDiscovery", recipARN, srv.URL, nil)
		eph := ecdhKey(t, curve, "EphemeralPrivateKeyToStaticPublicKey", nil, recipPub)
		for _, w := range []struct {
			enc  interop.Key
			decs []interop.Key
		}{{static, []interop.Key{disc, static}}, {eph, []interop.Key{disc}}} {
			for _, d := range w.decs {
				cases := frameCases(fmt.Sprintf("%s-%s-to-%s", curve, w.enc.Scheme, d.Scheme), []uint16{0x0578, 0x0478}, []int{4096},
					[]interop.Key{w.enc}, []interop.Key{d})
				runCases(t, encjobOneShot, goESDK, cases)
				runCases(t, goESDK, encjobOneShot, cases)
			}
		}
	}
}

func kmsECDHKey(t *testing.T, curve, scheme, id, endpoint string, recipient *ecdh.PublicKey) interop.Key {
	t.Helper()
	k, err := interop.ECDHKey("aws-kms-ecdh", curve, scheme, nil, recipient)
	if err != nil {
		t.Fatal(err)
	}
	k.Name, k.KMSKeyID, k.KMSEndpoint = scheme, id, endpoint
	return k
}
