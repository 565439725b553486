package hierarchy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keystore"
)

// EDK ciphertext layout: salt ‖ IV ‖ branch key version (16-byte UUID) ‖
// AES-256-GCM(data key) ‖ tag.
const (
	saltLen    = 16
	ivLen      = 12
	versionLen = 16
	tagLen     = 16
	headerLen  = saltLen + ivLen + versionLen
)

// deriveKey is the KDF in counter mode (NIST SP 800-108) with HMAC-SHA-256
// that the hierarchical keyring uses to derive a one-use wrapping key from
// the branch key and a random salt: one block, HMAC(branchKey, 1 ‖ label ‖
// 0x00 ‖ salt ‖ 256), all integers 32-bit big-endian.
func deriveKey(branchKey, salt []byte) []byte {
	h := hmac.New(sha256.New, branchKey)
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], 1)
	h.Write(buf[:])
	h.Write([]byte(ProviderID))
	h.Write([]byte{0})
	h.Write(salt)
	binary.BigEndian.PutUint32(buf[:], 256)
	h.Write(buf[:])
	return h.Sum(nil)
}

// aad binds the wrapped key to the provider id, branch key id and version,
// and the message's encryption context.
func aad(branchKeyID string, version []byte, ec crypto.EncryptionContext) ([]byte, error) {
	ser, err := ec.Serialize()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(ProviderID)+len(branchKeyID)+len(version)+len(ser))
	out = append(out, ProviderID...)
	out = append(out, branchKeyID...)
	out = append(out, version...)
	return append(out, ser...), nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// wrap encrypts dataKey under bk for a message with context ec.
func wrap(bk *keystore.BranchKey, dataKey []byte, ec crypto.EncryptionContext) (crypto.EncryptedDataKey, error) {
	version, err := keystore.VersionBytes(bk.Version)
	if err != nil {
		return crypto.EncryptedDataKey{}, err
	}
	a, err := aad(bk.ID, version[:], ec)
	if err != nil {
		return crypto.EncryptedDataKey{}, err
	}
	out := make([]byte, headerLen, headerLen+len(dataKey)+tagLen)
	if _, err := rand.Read(out[:saltLen+ivLen]); err != nil {
		return crypto.EncryptedDataKey{}, err
	}
	copy(out[saltLen+ivLen:], version[:])
	wk := deriveKey(bk.Key, out[:saltLen])
	defer clear(wk)
	g, err := gcm(wk)
	if err != nil {
		return crypto.EncryptedDataKey{}, err
	}
	out = g.Seal(out, out[saltLen:saltLen+ivLen], dataKey, a)
	return crypto.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: []byte(bk.ID), Ciphertext: out}, nil
}

// unwrap decrypts an EDK's ciphertext with bk (whose version the caller
// took from the same ciphertext).
func unwrap(bk *keystore.BranchKey, ct []byte, ec crypto.EncryptionContext, keyLen int) ([]byte, error) {
	if len(ct) != headerLen+keyLen+tagLen {
		return nil, fmt.Errorf("ciphertext is %d bytes, want %d for a %d-byte data key", len(ct), headerLen+keyLen+tagLen, keyLen)
	}
	a, err := aad(bk.ID, ct[saltLen+ivLen:headerLen], ec)
	if err != nil {
		return nil, err
	}
	wk := deriveKey(bk.Key, ct[:saltLen])
	defer clear(wk)
	g, err := gcm(wk)
	if err != nil {
		return nil, err
	}
	dk, err := g.Open(nil, ct[saltLen:saltLen+ivLen], ct[headerLen:], a)
	if err != nil {
		return nil, errors.New("the wrapped data key did not authenticate (wrong branch key, or changed message context or key)")
	}
	return dk, nil
}

// EDKInfo is what a hierarchical encrypted data key says about its branch
// key, read from the header alone (no key store or KMS call).
type EDKInfo struct {
	BranchKeyID string
	Version     string // UUID string
}

// ParseEDK reads the branch key id and version of a hierarchical keyring
// EDK. It fails for other providers and malformed ciphertexts.
func ParseEDK(edk crypto.EncryptedDataKey) (EDKInfo, error) {
	if edk.ProviderID != ProviderID {
		return EDKInfo{}, fmt.Errorf("hierarchy: provider id %q is not %q", edk.ProviderID, ProviderID)
	}
	if len(edk.ProviderInfo) == 0 {
		return EDKInfo{}, errors.New("hierarchy: encrypted data key names no branch key")
	}
	if !utf8.Valid(edk.ProviderInfo) {
		return EDKInfo{}, errors.New("hierarchy: branch key id in the encrypted data key is not UTF-8")
	}
	if len(edk.Ciphertext) < headerLen+tagLen {
		return EDKInfo{}, fmt.Errorf("hierarchy: encrypted data key ciphertext is %d bytes, shorter than %d", len(edk.Ciphertext), headerLen+tagLen)
	}
	v, _ := keystore.VersionString(edk.Ciphertext[saltLen+ivLen : headerLen])
	return EDKInfo{BranchKeyID: string(edk.ProviderInfo), Version: v}, nil
}

// Label renders the EDK's key identity for humans and metadata logs:
// aws-kms-hierarchy/BRANCH-KEY-ID:VERSION.
func (i EDKInfo) Label() string { return ProviderID + "/" + i.BranchKeyID + ":" + i.Version }
