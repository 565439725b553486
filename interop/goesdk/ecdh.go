package goesdk

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	prim "github.com/aws/aws-cryptographic-material-providers-library/releases/go/primitives/awscryptographyprimitivessmithygeneratedtypes"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/interop"
)

// asymmetricKeyring builds the MPL's raw ECDH, AWS KMS RSA and AWS KMS ECDH
// keyrings (the KMS ones with an unmodified aws-sdk-go-v2 KMS client
// pointed at k.KMSEndpoint).
func asymmetricKeyring(ctx context.Context, m *mpl.Client, k interop.Key) (mpltypes.IKeyring, error) {
	switch k.Type {
	case "raw-ecdh":
		return rawECDH(ctx, m, k)
	case "aws-kms-rsa":
		client, err := kmsClient(k)
		if err != nil {
			return nil, err
		}
		pub, err := k.PublicKeyDER()
		if err != nil {
			return nil, err
		}
		in := mpltypes.CreateAwsKmsRsaKeyringInput{KmsKeyId: k.KMSKeyID, KmsClient: client,
			EncryptionAlgorithm: kmstypes.EncryptionAlgorithmSpec(k.EncryptionAlgorithm)}
		if k.PublicKeyPEM != "" {
			in.PublicKey = []byte(k.PublicKeyPEM) // the MPL takes this one as PEM
			_ = pub
		}
		return m.CreateAwsKmsRsaKeyring(ctx, in)
	case "aws-kms-ecdh":
		return kmsECDH(ctx, m, k)
	}
	return nil, fmt.Errorf("unknown key type %q", k.Type)
}

func rawECDH(ctx context.Context, m *mpl.Client, k interop.Key) (mpltypes.IKeyring, error) {
	pub, err := k.PublicKeyDER()
	if err != nil {
		return nil, err
	}
	var scheme mpltypes.RawEcdhStaticConfigurations
	switch k.Scheme {
	case "RawPrivateKeyToStaticPublicKey":
		scheme = &mpltypes.RawEcdhStaticConfigurationsMemberRawPrivateKeyToStaticPublicKey{Value: mpltypes.RawPrivateKeyToStaticPublicKeyInput{
			SenderStaticPrivateKey: []byte(k.PrivateKeyPEM), RecipientPublicKey: pub}}
	case "EphemeralPrivateKeyToStaticPublicKey":
		scheme = &mpltypes.RawEcdhStaticConfigurationsMemberEphemeralPrivateKeyToStaticPublicKey{Value: mpltypes.EphemeralPrivateKeyToStaticPublicKeyInput{
			RecipientPublicKey: pub}}
	case "PublicKeyDiscovery":
		scheme = &mpltypes.RawEcdhStaticConfigurationsMemberPublicKeyDiscovery{Value: mpltypes.PublicKeyDiscoveryInput{
			RecipientStaticPrivateKey: []byte(k.PrivateKeyPEM)}}
	default:
		return nil, fmt.Errorf("unknown raw ECDH scheme %q", k.Scheme)
	}
	return m.CreateRawEcdhKeyring(ctx, mpltypes.CreateRawEcdhKeyringInput{CurveSpec: prim.ECDHCurveSpec(k.Curve), KeyAgreementScheme: scheme})
}

func kmsECDH(ctx context.Context, m *mpl.Client, k interop.Key) (mpltypes.IKeyring, error) {
	client, err := kmsClient(k)
	if err != nil {
		return nil, err
	}
	pub, err := k.PublicKeyDER()
	if err != nil {
		return nil, err
	}
	var scheme mpltypes.KmsEcdhStaticConfigurations
	switch k.Scheme {
	case "KmsPrivateKeyToStaticPublicKey":
		scheme = &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPrivateKeyToStaticPublicKey{Value: mpltypes.KmsPrivateKeyToStaticPublicKeyInput{
			SenderKmsIdentifier: k.KMSKeyID, RecipientPublicKey: pub}}
	case "KmsPublicKeyDiscovery":
		scheme = &mpltypes.KmsEcdhStaticConfigurationsMemberKmsPublicKeyDiscovery{Value: mpltypes.KmsPublicKeyDiscoveryInput{
			RecipientKmsIdentifier: k.KMSKeyID}}
	default:
		return nil, fmt.Errorf("unknown KMS ECDH scheme %q", k.Scheme)
	}
	return m.CreateAwsKmsEcdhKeyring(ctx, mpltypes.CreateAwsKmsEcdhKeyringInput{CurveSpec: prim.ECDHCurveSpec(k.Curve),
		KeyAgreementScheme: scheme, KmsClient: client})
}

// kmsClient is a plain SDK client for the emulator at k.KMSEndpoint in the
// key's region, with dummy static credentials.
func kmsClient(k interop.Key) (*kms.Client, error) {
	region := awskms.ARNRegion(k.KMSKeyID)
	if region == "" || k.KMSEndpoint == "" {
		return nil, fmt.Errorf("KMS key %q: want a key ARN and an endpoint", k.KMSKeyID)
	}
	return kms.New(kms.Options{
		Region:       region,
		BaseEndpoint: aws.String(k.KMSEndpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDINTEROP", "interop-secret", ""),
	}), nil
}
