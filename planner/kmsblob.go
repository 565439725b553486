package planner

import (
	"context"
	"fmt"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/spec"
)

// KMSBlobs reports whether a source holds KMS ciphertext blobs (format:
// kms) rather than ESDK messages.
func (rt *Runtime) KMSBlobs(srcIndex int) bool {
	return rt.Job.Sources[srcIndex].Format == "kms"
}

// KMSKey returns a KMS client able to call Encrypt/Decrypt/ReEncrypt for
// the first key of an aws-kms key group, and that key's ARN. KMS blobs
// are processed by KMS itself (ReEncrypt keeps the plaintext inside KMS).
func (rt *Runtime) KMSKey(ctx context.Context, group string) (kmsblob.API, string, error) {
	g := rt.Groups[group]
	if g == nil || g.Spec.Provider != spec.ProviderAWSKMS {
		return nil, "", fmt.Errorf("key group %q: KMS ciphertext blobs need an aws-kms key group", group)
	}
	ids := g.KeyIDs()
	if g.Spec.Discovery || len(ids) == 0 {
		return nil, "", fmt.Errorf("key group %q: KMS ciphertext blobs need a key ARN, not discovery", group)
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
	return api, arn, err
}
