package job

import (
	"context"
	"fmt"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/spec"
)

// KMSKey is the KMS key a group processes KMS ciphertext blobs with: a
// client able to call Encrypt/Decrypt/ReEncrypt in the key's region, the
// key's ARN and the group's grant tokens. KMS blobs are processed by KMS
// itself (ReEncrypt keeps the plaintext inside KMS).
type KMSKey struct {
	API         kmsblob.API
	ARN         string
	GrantTokens []string
}

// KMSKey returns the KMS key of the first key of an aws-kms key group.
func (rt *Runtime) KMSKey(ctx context.Context, group string) (KMSKey, error) {
	g := rt.Groups[group]
	if g == nil || g.Spec.Provider != spec.ProviderAWSKMS {
		return KMSKey{}, fmt.Errorf("key group %q: KMS ciphertext blobs need an aws-kms key group", group)
	}
	ids := g.KeyIDs()
	if g.Spec.Discovery || len(ids) == 0 {
		return KMSKey{}, fmt.Errorf("key group %q: KMS ciphertext blobs need a key ARN, not discovery", group)
	}
	arn := ids[0]
	region := g.Spec.Region
	if r := awskms.ARNRegion(arn); r != "" {
		region = r
	}
	prov := rt.kms.Clients
	if prov == nil {
		dp := &awskms.DefaultProvider{Profile: rt.kms.Profile, Endpoint: rt.kms.Endpoint, RetryMode: rt.kms.RetryMode,
			MaxAttempts: rt.kms.MaxAttempts, Timeout: rt.kms.Timeout, Credentials: rt.kms.Credentials}
		if g.Spec.Profile != "" {
			dp.Profile = g.Spec.Profile
		}
		if g.Spec.Endpoint != "" {
			dp.Endpoint = g.Spec.Endpoint
		}
		prov = dp
	}
	api, err := kmsblob.FromProvider(ctx, prov, region)
	if err != nil {
		return KMSKey{}, err
	}
	return KMSKey{API: api, ARN: arn, GrantTokens: g.Spec.GrantTokens}, nil
}
