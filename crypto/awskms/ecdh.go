package awskms

import (
	"context"
	"crypto/ecdh"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/encjob/encjob/crypto/keyring"
)

// ECDHConfig configures an AWS KMS ECDH keyring.
type ECDHConfig struct {
	// Client holds the client settings (see RSAConfig.Client).
	Client Config
	Curve  keyring.Curve
	// Scheme is keyring.KmsPrivateKeyToStaticPublicKey (KeyID is the
	// sender's KMS key-agreement key; encrypts and decrypts) or
	// keyring.KmsPublicKeyDiscovery (KeyID is the recipient's; decrypts
	// only).
	Scheme keyring.ECDHScheme
	// KeyID is the KMS key-agreement key (key ARN, key id or alias;
	// region from the ARN, else Client.Region).
	KeyID string
	// OwnPublicKey is KeyID's public key; nil: New calls GetPublicKey.
	OwnPublicKey *ecdh.PublicKey
	// RecipientPublicKey is the recipient's public key (static scheme
	// only).
	RecipientPublicKey *ecdh.PublicKey
}

var curveSpecs = map[keyring.Curve]kmstypes.KeySpec{
	keyring.ECCNISTP256: kmstypes.KeySpecEccNistP256,
	keyring.ECCNISTP384: kmstypes.KeySpecEccNistP384,
	keyring.ECCNISTP521: kmstypes.KeySpecEccNistP521,
}

// NewECDH returns the AWS KMS ECDH keyring: the ECDH keyring of package
// keyring (same wire format, provider id "aws-kms-ecdh") whose shared
// secrets KMS DeriveSharedSecret computes with KeyID's private key.
func NewECDH(ctx context.Context, cfg ECDHConfig) (*keyring.ECDH, error) {
	spec, ok := curveSpecs[cfg.Curve]
	if !ok {
		return nil, fmt.Errorf("awskms: ECDH keyring %s: unsupported curve %v", cfg.KeyID, cfg.Curve)
	}
	if cfg.Scheme != keyring.KmsPrivateKeyToStaticPublicKey && cfg.Scheme != keyring.KmsPublicKeyDiscovery {
		return nil, fmt.Errorf("awskms: ECDH keyring %s: scheme %v is not a KMS ECDH scheme", cfg.KeyID, cfg.Scheme)
	}
	if cfg.KeyID == "" {
		return nil, fmt.Errorf("awskms: ECDH keyring: no KMS key")
	}
	clients, err := newClients(cfg.Client)
	if err != nil {
		return nil, err
	}
	api, err := asymClient(ctx, clients, cfg.KeyID, cfg.Client.Region)
	if err != nil {
		return nil, err
	}
	ag := &kmsAgreement{api: api, grants: cfg.Client.GrantTokens, id: cfg.KeyID}
	own := cfg.OwnPublicKey
	if own == nil {
		out, err := publicKey(ctx, api, cfg.KeyID, ag.grants, kmstypes.KeyUsageTypeKeyAgreement, spec)
		if err != nil {
			return nil, err
		}
		if own, err = keyring.ParseECPublicKeyDER(out.PublicKey); err != nil {
			return nil, fmt.Errorf("awskms: ECDH keyring %s: GetPublicKey: %w", cfg.KeyID, err)
		}
		if out.KeyId != nil {
			ag.id = *out.KeyId // the key ARN, for errors and DecryptedWith
		}
	}
	return keyring.NewECDH(keyring.ECDHConfig{
		ProviderID: keyring.ProviderIDKMSECDH, Curve: cfg.Curve, Scheme: cfg.Scheme,
		Own: own, Recipient: cfg.RecipientPublicKey, Agreement: ag,
		Describe: "AWS KMS ECDH key " + ag.id, DecryptedWith: ag.id,
	})
}

// kmsAgreement computes shared secrets with DeriveSharedSecret.
type kmsAgreement struct {
	api    AsymmetricAPI
	grants []string
	id     string
}

func (a *kmsAgreement) SharedSecret(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	der, err := keyring.MarshalECPublicKeyDER(peer)
	if err != nil {
		return nil, err
	}
	out, err := a.api.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(a.id),
		KeyAgreementAlgorithm: kmstypes.KeyAgreementAlgorithmSpecEcdh, PublicKey: der, GrantTokens: a.grants})
	if err != nil {
		return nil, newKeyError(a.id, "DeriveSharedSecret", err)
	}
	return out.SharedSecret, nil
}
