package crypto

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
)

// EncryptedDataKey is one wrapped copy of a message's data key, as stored in
// the message header.
type EncryptedDataKey struct {
	ProviderID   string
	ProviderInfo []byte
	Ciphertext   []byte
}

// AppendWire appends the key's serialised form, as a message header holds
// it (each field as a uint16 length and its bytes), to dst. The caller
// must have checked that no field is longer than 65535 bytes (WireOK).
func (k EncryptedDataKey) AppendWire(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k.ProviderID)))
	dst = append(dst, k.ProviderID...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k.ProviderInfo)))
	dst = append(dst, k.ProviderInfo...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k.Ciphertext)))
	return append(dst, k.Ciphertext...)
}

// WireLen is the length of AppendWire's output.
func (k EncryptedDataKey) WireLen() int {
	return 6 + len(k.ProviderID) + len(k.ProviderInfo) + len(k.Ciphertext)
}

// WireOK reports whether the key can be serialised: no field is longer
// than 65535 bytes.
func (k EncryptedDataKey) WireOK() bool {
	return len(k.ProviderID) <= 0xFFFF && len(k.ProviderInfo) <= 0xFFFF && len(k.Ciphertext) <= 0xFFFF
}

// EncryptionMaterials is what a materials manager hands the encryptor, and
// what keyrings fill in on encrypt.
type EncryptionMaterials struct {
	Suite   *Suite
	Context EncryptionContext // the full context, including aws-crypto-public-key for signed suites
	// DataKey is nil until a generating keyring sets it. Keyrings must not
	// retain it.
	DataKey           []byte
	EncryptedDataKeys []EncryptedDataKey
	SigningKey        *ecdsa.PrivateKey // nil for unsigned suites
	// RequiredContextKeys lists keys of Context that the message
	// authenticates but does not store (the header authentication covers
	// them; a reader must reproduce their values). Set by the
	// required-encryption-context CMM (NewRequiredContextCMM); every key
	// must be in Context.
	RequiredContextKeys []string
}

// DecryptionMaterials is what keyrings fill in on decrypt.
type DecryptionMaterials struct {
	Suite *Suite
	// Context is the message's full context: the pairs its header stores
	// and, for RequiredContextKeys, the reproduced pairs it does not.
	Context EncryptionContext
	// RequiredContextKeys lists the keys of Context that are not stored in
	// the header: the header authentication covers their reproduced
	// values, so a wrong value fails it.
	RequiredContextKeys []string
	DataKey             []byte // set by the keyring that unwrapped an EDK
	VerificationKey     *ecdsa.PublicKey
	// DecryptedWith names the key that unwrapped DataKey, set with it by the
	// keyring: the KMS key ARN the Decrypt call used (which, for a
	// multi-Region key or discovery, may differ from the EDK's provider
	// info), or namespace/name for raw keys. Never key material.
	DecryptedWith string
}

// Keyring wraps and unwraps data keys. Implementations must be safe for
// concurrent use.
//
// OnEncrypt: if m.DataKey is nil the keyring must generate one of
// m.Suite.KeyLen bytes (or return ErrCannotGenerate); it then appends at
// least one EncryptedDataKey.
//
// OnDecrypt: tries the EDKs it recognises; on success sets m.DataKey and
// returns nil. It returns an error wrapping ErrNoMatchingKey when none of its
// keys could unwrap any EDK; callers may then try another keyring. Any other
// error is fatal for the message.
type Keyring interface {
	OnEncrypt(ctx context.Context, m *EncryptionMaterials) error
	OnDecrypt(ctx context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error
}

// EDKMatcher is an optional interface of keyrings (find it with a type
// assertion). MatchesEDK reports whether edk was wrapped for a key of the
// keyring — the key its OnDecrypt would try for this EDK, or, for a
// discovery keyring, a key it would try — judging from the provider id and
// provider info alone. It never calls a service, never decrypts, and is
// safe for concurrent use.
//
// It answers about key identity, not capability: true does not promise
// that unwrapping succeeds (the ciphertext may be corrupt, the KMS key
// disabled, or the keyring may hold only the public half, as an
// encrypt-only RSA or ephemeral ECDH keyring does); false means the keyring
// would not try edk at all. Callers use it to tell from a header alone
// whether a message is already under a set of keys.
type EDKMatcher interface {
	MatchesEDK(edk EncryptedDataKey) bool
}

// MatchesAnyEDK reports whether kr implements EDKMatcher and matches at
// least one of edks.
func MatchesAnyEDK(kr Keyring, edks []EncryptedDataKey) bool {
	m, ok := kr.(EDKMatcher)
	if !ok {
		return false
	}
	for _, e := range edks {
		if m.MatchesEDK(e) {
			return true
		}
	}
	return false
}

// Sentinel errors. Test with errors.Is.
var (
	// ErrNoMatchingKey: no key of the keyring could unwrap any EDK.
	ErrNoMatchingKey = errors.New("crypto: no key could decrypt any encrypted data key")
	// ErrCannotGenerate: the keyring cannot generate a data key (e.g. a
	// discovery keyring, or a public-key-only RSA keyring).
	ErrCannotGenerate = errors.New("crypto: keyring cannot generate a data key")
	// ErrAuthentication: a tag, commitment or signature did not verify.
	// Deliberately uninformative, as crypto/cipher's error is.
	ErrAuthentication = errors.New("crypto: message authentication failed")
	// ErrMalformed: the bytes are not a well-formed ESDK message.
	ErrMalformed = errors.New("crypto: malformed message")
	// ErrPolicy: the message is well formed but the configured policy
	// (commitment, EDK limit, unsigned-only, max length) forbids it.
	ErrPolicy = errors.New("crypto: message rejected by policy")
	// ErrReproducedContext: the reproduced encryption context given to
	// decrypt or rewrap a message does not fit it: a pair disagrees with
	// one the header stores, a required key is missing, or the pairs the
	// message authenticates without storing do not verify (then the error
	// also wraps ErrAuthentication or ErrNoMatchingKey). On encrypt: a
	// required key is not in the context.
	ErrReproducedContext = errors.New("crypto: encryption context does not match the required or reproduced context")
)

// EncryptionRequest asks a materials manager for encryption materials.
type EncryptionRequest struct {
	Suite            *Suite // nil: the manager's default
	Context          EncryptionContext
	PlaintextLength  int64 // -1 when unknown
	CommitmentPolicy CommitmentPolicy
	// RequiredContextKeys are keys of Context the message must
	// authenticate without storing; a manager copies them into the
	// materials (a required-EC CMM adds its own).
	RequiredContextKeys []string
}

// DecryptionRequest asks a materials manager for decryption materials.
type DecryptionRequest struct {
	Suite             *Suite
	Context           EncryptionContext // from the header
	EncryptedDataKeys []EncryptedDataKey
	CommitmentPolicy  CommitmentPolicy
	// ReproducedContext is the context the caller expects the message to
	// have (decrypt's encryption context input): its pairs must equal the
	// ones the header stores, and the others become the message's
	// authenticated-only pairs (DecryptionMaterials.RequiredContextKeys).
	ReproducedContext EncryptionContext
}

// MaterialsManager (CMM) turns requests into materials, typically through a
// keyring. Implementations must be safe for concurrent use.
type MaterialsManager interface {
	GetEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*EncryptionMaterials, error)
	DecryptMaterials(ctx context.Context, req DecryptionRequest) (*DecryptionMaterials, error)
}
