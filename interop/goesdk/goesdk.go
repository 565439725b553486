// Package goesdk drives the official AWS Encryption SDK for Go
// (github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk, with the
// Material Providers Library) with raw AES, raw RSA and multi-keyrings, as a
// peer for encjob's interop tests.
//
// What that SDK supports, as used here: encrypt and decrypt with all 11
// algorithm suites; framed messages with any frame length from 1 up; it
// decrypts non-framed messages but cannot write them (its FrameLength has a
// minimum of 1); whole messages in memory only (no streaming), up to 1 GiB of
// plaintext; raw AES-128/192/256; raw RSA with PKCS#1 v1.5 and OAEP with
// SHA-1/256/384/512 (keys as PEM: PKCS#8 private, SubjectPublicKeyInfo
// public).
package goesdk

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"

	"github.com/encjob/encjob/interop"
)

// Options are the message settings. The zero value encrypts with the SDK's
// default suite (0x0578) and frame length (4096) and an empty context.
type Options struct {
	Suite       uint16 // 0: the SDK default
	FrameLength int64  // 0: the SDK default; the SDK cannot write non-framed messages
	Context     map[string]string
	// CommitmentPolicy is FORBID_ENCRYPT_ALLOW_DECRYPT,
	// REQUIRE_ENCRYPT_ALLOW_DECRYPT or REQUIRE_ENCRYPT_REQUIRE_DECRYPT. Empty:
	// on encrypt, FORBID_ENCRYPT_ALLOW_DECRYPT for message format v1 suites
	// and REQUIRE_ENCRYPT_REQUIRE_DECRYPT otherwise; on decrypt,
	// REQUIRE_ENCRYPT_ALLOW_DECRYPT.
	CommitmentPolicy     string
	MaxEncryptedDataKeys int64 // 0: no limit
}

// Result is what the SDK reports about a message.
type Result struct {
	Suite   uint16
	Context map[string]string // the full context, aws-crypto-public-key included
}

// Encrypt encrypts plaintext for keys: the first key generates the data
// key, every key wraps it.
func Encrypt(ctx context.Context, keys []interop.Key, plaintext []byte, o Options) ([]byte, Result, error) {
	kr, err := Keyring(ctx, keys)
	if err != nil {
		return nil, Result{}, err
	}
	return encrypt(ctx, esdktypes.EncryptInput{Plaintext: plaintext, Keyring: kr}, o)
}

// encryptPolicy is the commitment policy an encryption runs under: o's,
// else the strictest one that allows o's suite.
func encryptPolicy(o Options) string {
	switch {
	case o.CommitmentPolicy != "":
		return o.CommitmentPolicy
	case o.Suite != 0 && o.Suite < 0x0400:
		return "FORBID_ENCRYPT_ALLOW_DECRYPT"
	}
	return "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"
}

// encrypt runs one Encrypt of in (plaintext and keyring or materials
// manager) with o's context, suite, frame length and limits.
func encrypt(ctx context.Context, in esdktypes.EncryptInput, o Options) ([]byte, Result, error) {
	client, err := newClient(encryptPolicy(o), o.MaxEncryptedDataKeys)
	if err != nil {
		return nil, Result{}, err
	}
	in.EncryptionContext = o.Context
	if in.EncryptionContext == nil {
		in.EncryptionContext = map[string]string{}
	}
	if o.Suite != 0 {
		id := mpltypes.ESDKAlgorithmSuiteId(fmt.Sprintf("0x%04X", o.Suite))
		in.AlgorithmSuiteId = &id
	}
	if o.FrameLength != 0 {
		fl := o.FrameLength
		in.FrameLength = &fl
	}
	out, err := client.Encrypt(ctx, in)
	if err != nil {
		return nil, Result{}, fmt.Errorf("goesdk: encrypt: %w", err)
	}
	r, err := result(out.AlgorithmSuiteId, out.EncryptionContext)
	return out.Ciphertext, r, err
}

// Decrypt decrypts msg with any one of keys.
func Decrypt(ctx context.Context, keys []interop.Key, msg []byte, o Options) ([]byte, Result, error) {
	policy := o.CommitmentPolicy
	if policy == "" {
		policy = "REQUIRE_ENCRYPT_ALLOW_DECRYPT"
	}
	client, err := newClient(policy, o.MaxEncryptedDataKeys)
	if err != nil {
		return nil, Result{}, err
	}
	kr, err := Keyring(ctx, keys)
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

func result(id mpltypes.ESDKAlgorithmSuiteId, ec map[string]string) (Result, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(string(id), "0x"), 16, 16)
	if err != nil {
		return Result{}, fmt.Errorf("goesdk: unexpected suite id %q: %w", id, err)
	}
	return Result{Suite: uint16(n), Context: ec}, nil
}

func newClient(policy string, maxEDKs int64) (*esdk.Client, error) {
	p := mpltypes.ESDKCommitmentPolicy(policy)
	valid := false
	for _, v := range p.Values() {
		valid = valid || v == p
	}
	if !valid {
		return nil, fmt.Errorf("goesdk: unknown commitment policy %q", policy)
	}
	cfg := esdktypes.AwsEncryptionSdkConfig{CommitmentPolicy: &p}
	if maxEDKs > 0 {
		cfg.MaxEncryptedDataKeys = &maxEDKs
	}
	c, err := esdk.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("goesdk: new client: %w", err)
	}
	return c, nil
}

var paddings = map[string]mpltypes.PaddingScheme{
	"pkcs1":       mpltypes.PaddingSchemePkcs1,
	"oaep-sha1":   mpltypes.PaddingSchemeOaepSha1Mgf1,
	"oaep-sha256": mpltypes.PaddingSchemeOaepSha256Mgf1,
	"oaep-sha384": mpltypes.PaddingSchemeOaepSha384Mgf1,
	"oaep-sha512": mpltypes.PaddingSchemeOaepSha512Mgf1,
}

var aesAlgs = map[int]mpltypes.AesWrappingAlg{
	16: mpltypes.AesWrappingAlgAlgAes128GcmIv12Tag16,
	24: mpltypes.AesWrappingAlgAlgAes192GcmIv12Tag16,
	32: mpltypes.AesWrappingAlgAlgAes256GcmIv12Tag16,
}

// Keyring builds the SDK keyring for keys: the keyring of the only key, or
// a multi-keyring with the first key as generator and the rest as children.
func Keyring(ctx context.Context, keys []interop.Key) (mpltypes.IKeyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("goesdk: no keys")
	}
	m, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		return nil, fmt.Errorf("goesdk: material providers client: %w", err)
	}
	rings := make([]mpltypes.IKeyring, len(keys))
	for i, k := range keys {
		if rings[i], err = keyring(ctx, m, k); err != nil {
			return nil, fmt.Errorf("goesdk: keys[%d] (%s): %w", i, k.Name, err)
		}
	}
	if len(rings) == 1 {
		return rings[0], nil
	}
	kr, err := m.CreateMultiKeyring(ctx, mpltypes.CreateMultiKeyringInput{Generator: rings[0], ChildKeyrings: rings[1:]})
	if err != nil {
		return nil, fmt.Errorf("goesdk: multi-keyring: %w", err)
	}
	return kr, nil
}

func keyring(ctx context.Context, m *mpl.Client, k interop.Key) (mpltypes.IKeyring, error) {
	switch k.Type {
	case "raw-aes":
		alg, ok := aesAlgs[len(k.Material)]
		if !ok {
			return nil, fmt.Errorf("aes key is %d bytes, want 16, 24 or 32", len(k.Material))
		}
		return m.CreateRawAesKeyring(ctx, mpltypes.CreateRawAesKeyringInput{
			KeyName: k.Name, KeyNamespace: k.Namespace, WrappingAlg: alg, WrappingKey: k.Material,
		})
	case "raw-rsa":
		pad, ok := paddings[k.Padding]
		if !ok {
			return nil, fmt.Errorf("unknown rsa padding %q", k.Padding)
		}
		in := mpltypes.CreateRawRsaKeyringInput{KeyName: k.Name, KeyNamespace: k.Namespace, PaddingScheme: pad}
		if k.PrivateKeyPEM != "" {
			in.PrivateKey = []byte(k.PrivateKeyPEM)
		}
		if k.PublicKeyPEM != "" {
			in.PublicKey = []byte(k.PublicKeyPEM)
		}
		return m.CreateRawRsaKeyring(ctx, in)
	default:
		return asymmetricKeyring(ctx, m, k) // ecdh.go
	}
}
