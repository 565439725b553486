package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/encjob/encjob/crypto"
)

// Parameters of the raw AES keyring's AES-GCM wrapping, fixed by the ESDK
// specification and written into every provider info.
const (
	aesWrapTagBits = 128
	aesWrapTagLen  = aesWrapTagBits / 8
	aesWrapIVLen   = 12
)

// RawAES wraps data keys with a local AES-GCM key, as the ESDKs' raw AES
// keyring (and the Python ESDK's raw AES master key) do.
//
// Wire form of each encrypted data key:
//   - provider id: the key namespace;
//   - provider info: key name, uint32 tag length in bits (128), uint32 IV
//     length (12), the IV;
//   - ciphertext: AES-GCM(wrapping key, IV, data key, AAD = canonical
//     serialisation of the message's encryption context), i.e. the
//     encrypted key followed by the 16-byte tag.
type RawAES struct {
	rawAESID
	aead cipher.AEAD
	with string // namespace/name, DecryptionMaterials.DecryptedWith
}

// rawAESID is the identity of a raw AES key: all that EDK matching needs.
type rawAESID struct{ namespace, name string }

// RawAESMatcher returns the EDK matcher of the raw AES key namespace/name
// without its key material: it answers exactly as that key's RawAES does
// (for callers that match headers without reading key files).
func RawAESMatcher(namespace, name string) crypto.EDKMatcher { return rawAESID{namespace, name} }

// MatchesEDK implements crypto.EDKMatcher: the provider id is the
// namespace and the provider info is the name followed by the only
// supported GCM parameters (128-bit tag, 12-byte IV) and an IV.
func (k rawAESID) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	_, ok := k.parseProviderInfo(edk)
	return ok
}

// NewRawAES returns a raw AES keyring. key must be 16, 24 or 32 bytes; the
// keyring keeps no reference to it (the caller may zero it afterwards).
func NewRawAES(namespace, name string, key []byte) (*RawAES, error) {
	if err := checkNames("raw AES", namespace, name); err != nil {
		return nil, err
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("keyring: raw AES key %q: wrapping key is %d bytes, want 16, 24 or 32", name, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: raw AES key %q: %w", name, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: raw AES key %q: %w", name, err)
	}
	return &RawAES{rawAESID: rawAESID{namespace, name}, aead: aead, with: namespace + "/" + name}, nil
}

// Namespace returns the key namespace (the EDK provider id).
func (k *RawAES) Namespace() string { return k.namespace }

// Name returns the key name.
func (k *RawAES) Name() string { return k.name }

func (k *RawAES) String() string { return fmt.Sprintf("raw AES key %s/%s", k.namespace, k.name) }

// OnEncrypt generates the data key with crypto/rand when m has none, then
// appends the data key wrapped under this key.
func (k *RawAES) OnEncrypt(_ context.Context, m *crypto.EncryptionMaterials) error {
	if err := checkEncryptMaterials(m, k); err != nil {
		return err
	}
	aad, err := m.Context.Serialize()
	if err != nil {
		return fmt.Errorf("keyring: %s: %w", k, err)
	}
	generated := false
	if m.DataKey == nil {
		dk := make([]byte, m.Suite.KeyLen)
		if _, err := rand.Read(dk); err != nil {
			return fmt.Errorf("keyring: %s: generating the data key: %w", k, err)
		}
		m.DataKey = dk
		generated = true
	}
	iv := make([]byte, aesWrapIVLen)
	if _, err := rand.Read(iv); err != nil {
		if generated {
			clear(m.DataKey)
			m.DataKey = nil
		}
		return fmt.Errorf("keyring: %s: generating the IV: %w", k, err)
	}
	info := make([]byte, 0, len(k.name)+8+aesWrapIVLen)
	info = append(info, k.name...)
	info = binary.BigEndian.AppendUint32(info, aesWrapTagBits)
	info = binary.BigEndian.AppendUint32(info, aesWrapIVLen)
	info = append(info, iv...)
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, crypto.EncryptedDataKey{
		ProviderID:   k.namespace,
		ProviderInfo: info,
		Ciphertext:   k.aead.Seal(nil, iv, m.DataKey, aad),
	})
	return nil
}

// OnDecrypt tries, in order, every EDK whose provider id is this key's
// namespace and whose provider info names this key with a 128-bit tag and a
// 12-byte IV. The first that unwraps sets m.DataKey. An EDK that fails to
// unwrap (wrong material, tampering, other context) is skipped. When none
// unwraps it returns an error wrapping crypto.ErrNoMatchingKey. If m already
// has a data key it returns nil without looking at the EDKs.
func (k *RawAES) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if err := checkDecryptMaterials(m, k); err != nil || m.DataKey != nil {
		return err
	}
	aad, err := m.Context.Serialize()
	if err != nil {
		return fmt.Errorf("keyring: %s: %w", k, err)
	}
	matched, failed := 0, 0
	for _, edk := range edks {
		if err := ctx.Err(); err != nil {
			return err
		}
		iv, ok := k.parseProviderInfo(edk)
		if !ok {
			continue
		}
		matched++
		if len(edk.Ciphertext) != m.Suite.KeyLen+aesWrapTagLen {
			failed++
			continue
		}
		dk, err := k.aead.Open(nil, iv, edk.Ciphertext, aad)
		if err != nil {
			failed++
			continue
		}
		m.DataKey, m.DecryptedWith = dk, k.with
		return nil
	}
	if matched == 0 {
		return fmt.Errorf("%w: %s: no encrypted data key has provider id %q and this key name", crypto.ErrNoMatchingKey, k, k.namespace)
	}
	return fmt.Errorf("%w: %s: %d encrypted data key(s) name this key but none unwrapped (wrong key material, a different encryption context, or a damaged key)", crypto.ErrNoMatchingKey, k, failed)
}

// parseProviderInfo returns the IV when edk belongs to this key and uses the
// only supported parameters (128-bit tag, 12-byte IV).
func (k rawAESID) parseProviderInfo(edk crypto.EncryptedDataKey) ([]byte, bool) {
	if edk.ProviderID != k.namespace {
		return nil, false
	}
	p, ok := ParseRawAESProviderInfo(edk.ProviderInfo, len(k.name))
	if !ok || p.KeyName != k.name || p.TagLenBits != aesWrapTagBits || p.IVLen != aesWrapIVLen {
		return nil, false
	}
	return p.IV, true
}

// RawAESProviderInfo is the parsed provider info of a raw AES EDK.
type RawAESProviderInfo struct {
	KeyName    string
	TagLenBits uint32
	IVLen      uint32
	IV         []byte
}

// ParseRawAESProviderInfo splits a raw AES provider info whose key name is
// nameLen bytes long. The format does not record the name's length, so the
// caller supplies it; use len(info)-20 for the common 12-byte IV. It reports
// false when the lengths do not add up.
func ParseRawAESProviderInfo(info []byte, nameLen int) (RawAESProviderInfo, bool) {
	if nameLen < 0 || len(info) < nameLen+8 {
		return RawAESProviderInfo{}, false
	}
	p := RawAESProviderInfo{
		KeyName:    string(info[:nameLen]),
		TagLenBits: binary.BigEndian.Uint32(info[nameLen:]),
		IVLen:      binary.BigEndian.Uint32(info[nameLen+4:]),
		IV:         info[nameLen+8:],
	}
	if uint64(len(p.IV)) != uint64(p.IVLen) {
		return RawAESProviderInfo{}, false
	}
	return p, true
}

// checkNames validates a namespace/name pair given to a constructor.
func checkNames(kind, namespace, name string) error {
	switch {
	case namespace == "":
		return fmt.Errorf("keyring: %s key %q: key namespace must not be empty", kind, name)
	case name == "":
		return fmt.Errorf("keyring: %s key in namespace %q: key name must not be empty", kind, namespace)
	case len(namespace) > 0xFFFF || len(name) > 0xFFFF-8-aesWrapIVLen:
		return fmt.Errorf("keyring: %s key: key namespace or name is too long for an encrypted data key", kind)
	case strings.HasPrefix(namespace, "aws-kms"):
		return fmt.Errorf("keyring: %s key %q: key namespace must not start with \"aws-kms\" (reserved for AWS KMS keyrings)", kind, name)
	}
	return nil
}

// errMaterials marks misuse by the caller (materials without a suite, a data
// key of the wrong length). It is fatal, never ErrNoMatchingKey.
var errMaterials = errors.New("invalid materials")

// who names the keyring in an error; a fmt.Stringer so that the name is
// only formatted when there is an error (these checks run per message).
func checkEncryptMaterials(m *crypto.EncryptionMaterials, who fmt.Stringer) error {
	if m == nil || m.Suite == nil {
		return fmt.Errorf("keyring: %s: %w: no algorithm suite", who, errMaterials)
	}
	if m.DataKey != nil && len(m.DataKey) != m.Suite.KeyLen {
		return fmt.Errorf("keyring: %s: %w: data key is %d bytes, suite %s needs %d", who, errMaterials, len(m.DataKey), m.Suite.Hex(), m.Suite.KeyLen)
	}
	return nil
}

func checkDecryptMaterials(m *crypto.DecryptionMaterials, who fmt.Stringer) error {
	if m == nil || m.Suite == nil {
		return fmt.Errorf("keyring: %s: %w: no algorithm suite", who, errMaterials)
	}
	return nil
}

var _ crypto.Keyring = (*RawAES)(nil)
