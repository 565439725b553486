package goesdk

import (
	"context"
	"fmt"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"

	"github.com/encjob/encjob/interop"
)

// requiredCMM is the MPL's required encryption context CMM over a
// default CMM of the keyring of keys.
func requiredCMM(ctx context.Context, keys []interop.Key, required []string) (mpltypes.ICryptographicMaterialsManager, error) {
	kr, err := Keyring(ctx, keys)
	if err != nil {
		return nil, err
	}
	m, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		return nil, fmt.Errorf("goesdk: material providers client: %w", err)
	}
	// The Go MPL takes only an underlying CMM, not a keyring.
	def, err := m.CreateDefaultCryptographicMaterialsManager(ctx, mpltypes.CreateDefaultCryptographicMaterialsManagerInput{Keyring: kr})
	if err != nil {
		return nil, fmt.Errorf("goesdk: default CMM: %w", err)
	}
	cmm, err := m.CreateRequiredEncryptionContextCMM(ctx, mpltypes.CreateRequiredEncryptionContextCMMInput{
		UnderlyingCMM: def, RequiredEncryptionContextKeys: required})
	if err != nil {
		return nil, fmt.Errorf("goesdk: required encryption context CMM: %w", err)
	}
	return cmm, nil
}

// EncryptRequired is Encrypt through the required encryption context CMM:
// the pairs of the required keys are authenticated, not stored.
func EncryptRequired(ctx context.Context, keys []interop.Key, plaintext []byte, o Options, required []string) ([]byte, Result, error) {
	cmm, err := requiredCMM(ctx, keys, required)
	if err != nil {
		return nil, Result{}, err
	}
	return encrypt(ctx, esdktypes.EncryptInput{Plaintext: plaintext, MaterialsManager: cmm}, o)
}

// DecryptReproduced decrypts msg giving reproduced as the encryption
// context input; with required keys, through the required encryption
// context CMM (as the AWS test-vector runner does), else through the
// keyring's default CMM.
func DecryptReproduced(ctx context.Context, keys []interop.Key, msg []byte, o Options, reproduced map[string]string, required []string) ([]byte, Result, error) {
	policy := o.CommitmentPolicy
	if policy == "" {
		policy = "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
	}
	client, err := newClient(policy, o.MaxEncryptedDataKeys)
	if err != nil {
		return nil, Result{}, err
	}
	in := esdktypes.DecryptInput{Ciphertext: msg, EncryptionContext: reproduced}
	if len(required) > 0 {
		if in.MaterialsManager, err = requiredCMM(ctx, keys, required); err != nil {
			return nil, Result{}, err
		}
	} else if in.Keyring, err = Keyring(ctx, keys); err != nil {
		return nil, Result{}, err
	}
	out, err := client.Decrypt(ctx, in)
	if err != nil {
		return nil, Result{}, fmt.Errorf("goesdk: decrypt: %w", err)
	}
	r, err := result(out.AlgorithmSuiteId, out.EncryptionContext)
	return out.Plaintext, r, err
}
