package kmsemu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
)

// Ciphertext blob format (the emulator's own; real KMS blobs differ):
//
//	version  byte = 1
//	account  uint8 length, bytes
//	key id   uint8 length, bytes
//	nonce    12 bytes
//	sealed   AES-256-GCM ciphertext and 16-byte tag
//
// The additional authenticated data is every byte before the nonce followed
// by the canonical encoding of the encryption context, so the key identity
// and the context are both authenticated. The region is deliberately not
// bound: a multi-region key's replicas decrypt each other's ciphertexts.

const (
	blobVersion = 1
	nonceSize   = 12
	tagSize     = 16
	// maxCiphertextBlob is the service's limit on CiphertextBlob.
	maxCiphertextBlob = 6144
	// maxPlaintext is the service's limit on Encrypt's Plaintext.
	maxPlaintext = 4096
)

// material is the secret of a key; replicas of a multi-region key share one.
// cipher.AEAD values from crypto/cipher are safe for concurrent use.
type material struct {
	aead cipher.AEAD
}

func newMaterial(secret []byte) (*material, error) {
	if secret == nil {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &material{aead: aead}, nil
}

// blobHeader is the authenticated identity of the key that sealed a blob.
type blobHeader struct {
	account, keyID string
}

var errBadBlob = errors.New("malformed ciphertext blob")

func (h blobHeader) marshal() []byte {
	b := make([]byte, 0, 3+len(h.account)+len(h.keyID))
	b = append(b, blobVersion, byte(len(h.account)))
	b = append(b, h.account...)
	b = append(b, byte(len(h.keyID)))
	return append(b, h.keyID...)
}

// parseBlob splits a blob into its header, the header's bytes, the nonce and
// the sealed part. It authenticates nothing.
func parseBlob(blob []byte) (h blobHeader, head, nonce, sealed []byte, err error) {
	rest := blob
	field := func() (string, bool) {
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 || rest[0] == 0 {
			return "", false
		}
		n := int(rest[0])
		s := string(rest[1 : 1+n])
		rest = rest[1+n:]
		return s, true
	}
	if len(rest) < 1 || rest[0] != blobVersion {
		return h, nil, nil, nil, errBadBlob
	}
	rest = rest[1:]
	var ok1, ok2 bool
	h.account, ok1 = field()
	h.keyID, ok2 = field()
	if !ok1 || !ok2 || !isAccount(h.account) || !validKeyID(h.keyID) || len(rest) < nonceSize+tagSize {
		return h, nil, nil, nil, errBadBlob
	}
	head = blob[:len(blob)-len(rest)]
	return h, head, rest[:nonceSize], rest[nonceSize:], nil
}

// contextAAD appends the canonical encoding of an encryption context: the
// pair count, then each pair sorted by key, every string length-prefixed.
func contextAAD(dst []byte, ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(keys)))
	for _, k := range keys {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(ec[k])))
		dst = append(dst, ec[k]...)
	}
	return dst
}

// seal encrypts plaintext under m for the key h with context ec.
func (m *material) seal(h blobHeader, plaintext []byte, ec map[string]string) []byte {
	head := h.marshal()
	aad := contextAAD(slices.Clone(head), ec)
	out := make([]byte, 0, len(head)+nonceSize+len(plaintext)+tagSize)
	out = append(out, head...)
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	out = append(out, nonce...)
	return m.aead.Seal(out, nonce, plaintext, aad)
}

// open authenticates and decrypts a blob parsed by parseBlob.
func (m *material) open(head, nonce, sealed []byte, ec map[string]string) ([]byte, error) {
	aad := contextAAD(slices.Clone(head), ec)
	return m.aead.Open(nil, nonce, sealed, aad)
}
