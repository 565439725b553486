// Package kmsblob encrypts, decrypts and re-encrypts AWS KMS ciphertext
// blobs: what `aws kms encrypt` writes, a KMS-format ciphertext of at most
// 4096 bytes of plaintext, stored as raw bytes or as base64 text. Unlike
// ESDK messages there is no data key: KMS itself encrypts the plaintext,
// so every operation is one KMS call, and ReEncrypt moves a blob to another
// key (or context) without the plaintext ever leaving KMS.
//
// The functions take any API - a *kms.Client, or the client an
// awskms.ClientProvider returns (see FromProvider) - and mirror the
// members of `aws kms encrypt`, `decrypt` and `re-encrypt`: key ids (key
// id, key ARN, alias name or alias ARN), encryption contexts and grant
// tokens. Failures are *Error values naming the operation and key; Error's
// Retryable says whether another attempt may succeed.
package kmsblob

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/crypto/awskms"
)

// MaxPlaintext is the most plaintext KMS Encrypt accepts.
const MaxPlaintext = 4096

// MaxBlob is the largest ciphertext blob KMS accepts.
const MaxBlob = 6144

// MaxGrantTokens is the most grant tokens one KMS request may carry.
const MaxGrantTokens = 10

// API is the part of *kms.Client this package uses.
type API interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
	ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, optFns ...func(*kms.Options)) (*kms.ReEncryptOutput, error)
}

var _ API = (*kms.Client)(nil)

// ErrPlaintextTooLarge is returned (wrapped) by Encrypt for more than
// MaxPlaintext bytes; such data needs an ESDK message (format esdk).
var ErrPlaintextTooLarge = errors.New("plaintext larger than 4096 bytes: a KMS ciphertext blob holds at most 4096 bytes; use format esdk (an ESDK message) for larger items")

// FromProvider returns the client p gives for region as an API. It fails
// when that client cannot re-encrypt (p returned a wrapper of *kms.Client
// that lacks ReEncrypt).
func FromProvider(ctx context.Context, p awskms.ClientProvider, region string) (API, error) {
	c, err := p.Client(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("kmsblob: %w", err)
	}
	api, ok := c.(API)
	if !ok {
		return nil, fmt.Errorf("kmsblob: the KMS client for region %q (%T) has no ReEncrypt", region, c)
	}
	return api, nil
}

// EncryptInput is `aws kms encrypt`.
type EncryptInput struct {
	KeyID       string // required: key id, key ARN, alias name or alias ARN
	Plaintext   []byte // 1 to MaxPlaintext bytes
	Context     map[string]string
	GrantTokens []string
}

// Encrypt encrypts a plaintext of at most MaxPlaintext bytes under KeyID
// and returns the ciphertext blob and the ARN of the key KMS used.
func Encrypt(ctx context.Context, api API, in EncryptInput) (blob []byte, keyARN string, err error) {
	switch {
	case in.KeyID == "":
		return nil, "", &Error{Op: "Encrypt", Err: errors.New("no key id")}
	case len(in.Plaintext) > MaxPlaintext:
		return nil, "", &Error{Op: "Encrypt", Key: in.KeyID, Err: fmt.Errorf("%d bytes: %w", len(in.Plaintext), ErrPlaintextTooLarge)}
	case len(in.Plaintext) == 0:
		return nil, "", &Error{Op: "Encrypt", Key: in.KeyID, Err: errors.New("empty plaintext: KMS encrypts 1 to 4096 bytes")}
	}
	if err := checkTokens("Encrypt", in.KeyID, in.GrantTokens); err != nil {
		return nil, "", err
	}
	out, err := api.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(in.KeyID), Plaintext: in.Plaintext,
		EncryptionContext: cloneContext(in.Context), GrantTokens: slices.Clone(in.GrantTokens)})
	if err != nil {
		return nil, "", newError("Encrypt", in.KeyID, err)
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, "", &Error{Op: "Encrypt", Key: in.KeyID, Err: errors.New("response has no ciphertext blob")}
	}
	return out.CiphertextBlob, aws.ToString(out.KeyId), nil
}

// DecryptInput is `aws kms decrypt`.
type DecryptInput struct {
	Blob []byte
	// KeyID, when set, makes KMS refuse a blob of another key
	// (IncorrectKeyException); a symmetric blob names its key itself.
	KeyID string
	// Context must be exactly the encryption context the blob was made
	// with.
	Context     map[string]string
	GrantTokens []string
}

// Decrypt returns the plaintext of a blob and the ARN of its key. The
// caller must clear and never log the plaintext.
func Decrypt(ctx context.Context, api API, in DecryptInput) (plaintext []byte, keyARN string, err error) {
	if err := checkBlob("Decrypt", in.KeyID, in.Blob); err != nil {
		return nil, "", err
	}
	if err := checkTokens("Decrypt", in.KeyID, in.GrantTokens); err != nil {
		return nil, "", err
	}
	din := &kms.DecryptInput{CiphertextBlob: in.Blob, EncryptionContext: cloneContext(in.Context), GrantTokens: slices.Clone(in.GrantTokens)}
	if in.KeyID != "" {
		din.KeyId = aws.String(in.KeyID)
	}
	out, err := api.Decrypt(ctx, din)
	if err != nil {
		return nil, "", newError("Decrypt", in.KeyID, err)
	}
	if err := checkAnswerKey("Decrypt", "", in.KeyID, out.KeyId); err != nil {
		clear(out.Plaintext)
		return nil, "", err
	}
	return out.Plaintext, aws.ToString(out.KeyId), nil
}

// ReEncryptInput is `aws kms re-encrypt`.
type ReEncryptInput struct {
	Blob []byte
	// SourceKeyID, when set, must be the blob's key.
	SourceKeyID string
	// SourceContext must be exactly the blob's encryption context.
	SourceContext map[string]string
	// DestinationKeyID is required.
	DestinationKeyID string
	// DestinationContext is the new blob's encryption context (it may
	// differ from the source's; nil: none).
	DestinationContext map[string]string
	GrantTokens        []string
}

// ReEncryptOutput is the new blob and the keys involved.
type ReEncryptOutput struct {
	Blob         []byte
	SourceKeyARN string // the key the blob was under
	KeyARN       string // the key it is under now
}

// ReEncrypt moves a blob to DestinationKeyID (and DestinationContext) with
// one KMS ReEncrypt call: the plaintext never leaves KMS.
func ReEncrypt(ctx context.Context, api API, in ReEncryptInput) (*ReEncryptOutput, error) {
	if in.DestinationKeyID == "" {
		return nil, &Error{Op: "ReEncrypt", Key: in.SourceKeyID, Err: errors.New("no destination key id")}
	}
	if err := checkBlob("ReEncrypt", in.SourceKeyID, in.Blob); err != nil {
		return nil, err
	}
	if err := checkTokens("ReEncrypt", in.DestinationKeyID, in.GrantTokens); err != nil {
		return nil, err
	}
	rin := &kms.ReEncryptInput{CiphertextBlob: in.Blob, DestinationKeyId: aws.String(in.DestinationKeyID),
		SourceEncryptionContext: cloneContext(in.SourceContext), DestinationEncryptionContext: cloneContext(in.DestinationContext),
		GrantTokens: slices.Clone(in.GrantTokens)}
	if in.SourceKeyID != "" {
		rin.SourceKeyId = aws.String(in.SourceKeyID)
	}
	out, err := api.ReEncrypt(ctx, rin)
	if err != nil {
		key := in.DestinationKeyID
		if in.SourceKeyID != "" {
			key = in.SourceKeyID + " -> " + in.DestinationKeyID
		}
		return nil, newError("ReEncrypt", key, err)
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, &Error{Op: "ReEncrypt", Key: in.DestinationKeyID, Err: errors.New("response has no ciphertext blob")}
	}
	if err := checkAnswerKey("ReEncrypt", "source ", in.SourceKeyID, out.SourceKeyId); err != nil {
		return nil, err
	}
	if err := checkAnswerKey("ReEncrypt", "destination ", in.DestinationKeyID, out.KeyId); err != nil {
		return nil, err
	}
	return &ReEncryptOutput{Blob: out.CiphertextBlob, SourceKeyARN: aws.ToString(out.SourceKeyId), KeyARN: aws.ToString(out.KeyId)}, nil
}

// checkAnswerKey makes a requested key ARN binding on this side: the key
// KMS says it used must be the one requested. KMS itself refuses a KeyId
// (Decrypt) or SourceKeyId (ReEncrypt) that is not the ciphertext's key
// with IncorrectKeyException, but not every KMS implementation does
// (local-kms ignores ReEncrypt's SourceKeyId), and re-encrypting or
// returning a blob of a key the caller did not name would bypass the key
// group that is meant to authorize it. Key ids and aliases cannot be
// compared with the ARN in the answer and are left to KMS.
func checkAnswerKey(op, role, requested string, answered *string) error {
	if !strings.HasPrefix(requested, "arn:") || !strings.Contains(requested, ":key/") {
		return nil
	}
	got := aws.ToString(answered)
	if got == requested {
		return nil
	}
	if got == "" {
		got = "no key"
	}
	return &Error{Op: op, Key: requested, Err: fmt.Errorf("KMS answered with %s as the %skey, not the requested %s: refused", got, role, requested)}
}

func checkBlob(op, key string, blob []byte) error {
	switch {
	case len(blob) == 0:
		return &Error{Op: op, Key: key, Err: errors.New("empty ciphertext blob")}
	case len(blob) > MaxBlob:
		return &Error{Op: op, Key: key, Err: fmt.Errorf("ciphertext blob of %d bytes: KMS blobs are at most %d bytes (is this an ESDK message? use format esdk)", len(blob), MaxBlob)}
	}
	return nil
}

func checkTokens(op, key string, tokens []string) error {
	if len(tokens) > MaxGrantTokens {
		return &Error{Op: op, Key: key, Err: fmt.Errorf("%d grant tokens: KMS accepts at most %d", len(tokens), MaxGrantTokens)}
	}
	return nil
}

func cloneContext(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
