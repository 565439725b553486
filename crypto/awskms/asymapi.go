package awskms

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// AsymmetricAPI is the part of the KMS API the RSA and ECDH keyrings use
// beyond API. *kms.Client implements it; a ClientProvider's clients must
// too for those keyrings (the keyrings say so when one does not).
type AsymmetricAPI interface {
	API
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	DeriveSharedSecret(ctx context.Context, in *kms.DeriveSharedSecretInput, optFns ...func(*kms.Options)) (*kms.DeriveSharedSecretOutput, error)
}

func (a limitedAPI) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	api, err := asymmetric(a.api)
	if err != nil {
		return nil, err
	}
	if err := a.l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("awskms: rate limit: %w", err)
	}
	return api.GetPublicKey(ctx, in, optFns...)
}

func (a limitedAPI) DeriveSharedSecret(ctx context.Context, in *kms.DeriveSharedSecretInput, optFns ...func(*kms.Options)) (*kms.DeriveSharedSecretOutput, error) {
	api, err := asymmetric(a.api)
	if err != nil {
		return nil, err
	}
	if err := a.l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("awskms: rate limit: %w", err)
	}
	return api.DeriveSharedSecret(ctx, in, optFns...)
}

func asymmetric(api API) (AsymmetricAPI, error) {
	a, ok := api.(AsymmetricAPI)
	if !ok {
		return nil, fmt.Errorf("awskms: the KMS client %T has no GetPublicKey/DeriveSharedSecret", api)
	}
	return a, nil
}

// asymClient returns the client of the key id's region (its ARN's, else
// region) with the asymmetric operations.
func asymClient(ctx context.Context, c *clientCache, id, region string) (AsymmetricAPI, error) {
	if r := ARNRegion(id); r != "" {
		region = r
	}
	api, err := c.client(ctx, region)
	if err != nil {
		return nil, err
	}
	return asymmetric(api)
}

// publicKey calls GetPublicKey for id and checks the key's usage and spec.
func publicKey(ctx context.Context, api AsymmetricAPI, id string, grants []string, usage kmstypes.KeyUsageType, specs ...kmstypes.KeySpec) (*kms.GetPublicKeyOutput, error) {
	out, err := api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id), GrantTokens: grants})
	if err != nil {
		return nil, newKeyError(id, "GetPublicKey", err)
	}
	bad := func(format string, args ...any) error {
		return &KeyError{Key: id, Op: "GetPublicKey", Kind: KindInvalidKeyUsage, Err: fmt.Errorf(format, args...)}
	}
	if out.KeyUsage != usage {
		return nil, bad("key usage is %s, this keyring needs %s", out.KeyUsage, usage)
	}
	for _, s := range specs {
		if out.KeySpec == s {
			return out, nil
		}
	}
	return nil, bad("key spec is %s, this key group needs %v", out.KeySpec, specs)
}
