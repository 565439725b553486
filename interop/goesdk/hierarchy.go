package goesdk

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	ksclient "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographykeystoresmithygenerated"
	kstypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographykeystoresmithygeneratedtypes"
	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
)

// KeyStore configures the Material Providers Library's branch key store
// (its table must exist: the MPL's CreateKeyStore is not used).
type KeyStore struct {
	Table, LogicalName, KMSKeyARN string
	DynamoDB                      *dynamodb.Client
	KMS                           *kms.Client
}

// NewKeyStore returns the MPL key store client.
func NewKeyStore(ks KeyStore) (*ksclient.Client, error) {
	c, err := ksclient.NewClient(kstypes.KeyStoreConfig{
		DdbTableName: ks.Table, LogicalKeyStoreName: ks.LogicalName,
		KmsConfiguration: &kstypes.KMSConfigurationMemberkmsKeyArn{Value: ks.KMSKeyARN},
		DdbClient:        ks.DynamoDB, KmsClient: ks.KMS,
	})
	if err != nil {
		return nil, fmt.Errorf("goesdk: key store: %w", err)
	}
	return c, nil
}

// CreateBranchKey creates a branch key with the MPL key store (id "" = a
// random one) and returns its id.
func CreateBranchKey(ctx context.Context, ks *ksclient.Client, id string, ec map[string]string) (string, error) {
	in := kstypes.CreateKeyInput{EncryptionContext: ec}
	if id != "" {
		in.BranchKeyIdentifier = &id
	}
	out, err := ks.CreateKey(ctx, in)
	if err != nil {
		return "", fmt.Errorf("goesdk: create branch key: %w", err)
	}
	return out.BranchKeyIdentifier, nil
}

// VersionBranchKey rotates a branch key with the MPL key store.
func VersionBranchKey(ctx context.Context, ks *ksclient.Client, id string) error {
	if _, err := ks.VersionKey(ctx, kstypes.VersionKeyInput{BranchKeyIdentifier: id}); err != nil {
		return fmt.Errorf("goesdk: version branch key: %w", err)
	}
	return nil
}

// ActiveVersion returns the active version of a branch key, as the MPL
// key store reads it.
func ActiveVersion(ctx context.Context, ks *ksclient.Client, id string) (string, error) {
	out, err := ks.GetActiveBranchKey(ctx, kstypes.GetActiveBranchKeyInput{BranchKeyIdentifier: id})
	if err != nil {
		return "", fmt.Errorf("goesdk: get active branch key: %w", err)
	}
	return out.BranchKeyMaterials.BranchKeyVersion, nil
}

// HierarchicalKeyring returns the MPL's AWS KMS Hierarchical keyring for a
// static branch key id.
func HierarchicalKeyring(ctx context.Context, ks *ksclient.Client, branchKeyID string, ttlSeconds int64) (mpltypes.IKeyring, error) {
	m, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		return nil, fmt.Errorf("goesdk: material providers client: %w", err)
	}
	kr, err := m.CreateAwsKmsHierarchicalKeyring(ctx, mpltypes.CreateAwsKmsHierarchicalKeyringInput{
		KeyStore: ks, BranchKeyId: &branchKeyID, TtlSeconds: ttlSeconds,
	})
	if err != nil {
		return nil, fmt.Errorf("goesdk: hierarchical keyring: %w", err)
	}
	return kr, nil
}

// EncryptWith encrypts with an SDK keyring.
func EncryptWith(ctx context.Context, kr mpltypes.IKeyring, plaintext []byte, o Options) ([]byte, Result, error) {
	return encrypt(ctx, esdktypes.EncryptInput{Plaintext: plaintext, Keyring: kr}, o)
}

// DecryptWith decrypts with an SDK keyring.
func DecryptWith(ctx context.Context, kr mpltypes.IKeyring, msg []byte, o Options) ([]byte, Result, error) {
	policy := o.CommitmentPolicy
	if policy == "" {
		policy = "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
	}
	client, err := newClient(policy, o.MaxEncryptedDataKeys)
	if err != nil {
		return nil, Result{}, err
	}
	out, err := client.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: msg, Keyring: kr})
	if err != nil {
		return nil, Result{}, fmt.Errorf("goesdk: decrypt: %w", err)
	}
	r, err := result(out.AlgorithmSuiteId, out.EncryptionContext)
	return out.Plaintext, r, err
}
