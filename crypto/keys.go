package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// messageKeys holds what a message's data key yields: the content AEAD
// and, for committing suites, the commitment value.
type messageKeys struct {
	aead      cipher.AEAD
	commitKey []byte
	// netV400 marks keys derived the ESDK-.NET 4.0.0 way (HKDF info
	// without the message id, v1 HKDF suites only): they differ from the
	// standard ones, so a message read with them cannot keep its body
	// under a standard header (Rewrap refuses it).
	netV400 bool
}

// deriveKeys turns a data key into the message's content key (and
// commitment key) as the suite prescribes.
func deriveKeys(s *Suite, dataKey, messageID []byte) (*messageKeys, error) {
	return deriveKeysInfo(s, dataKey, messageID, false)
}

// netV400KDFDiffers reports whether ESDK-.NET 4.0.0 derived the content
// key of suite s differently from the specification: for message format 1
// suites with HKDF, it left the message id out of the HKDF info.
func netV400KDFDiffers(s *Suite) bool { return s.kdf != nil && !s.Committing && s.MessageVersion == 1 }

// deriveKeysInfo is deriveKeys; with netV400 it derives as ESDK-.NET 4.0.0
// did (see netV400KDFDiffers), for its retry policy.
func deriveKeysInfo(s *Suite, dataKey, messageID []byte, netV400 bool) (*messageKeys, error) {
	if len(dataKey) != s.KeyLen {
		return nil, fmt.Errorf("crypto: data key is %d bytes, suite %s needs %d", len(dataKey), s, s.KeyLen)
	}
	var contentKey []byte
	var mk messageKeys
	switch {
	case s.Committing:
		info := string(binary.BigEndian.AppendUint16(nil, s.ID)) + "DERIVEKEY"
		k, err := hkdf.Key(sha512.New, dataKey, messageID, info, s.KeyLen)
		if err != nil {
			return nil, err
		}
		contentKey = k
		if mk.commitKey, err = hkdf.Key(sha512.New, dataKey, messageID, "COMMITKEY", commitKeyLen); err != nil {
			return nil, err
		}
	case s.kdf != nil:
		info := string(binary.BigEndian.AppendUint16(nil, s.ID))
		if !netV400 {
			info += string(messageID)
		}
		mk.netV400 = netV400
		k, err := hkdf.Key(s.kdf, dataKey, nil, info, s.KeyLen)
		if err != nil {
			return nil, err
		}
		contentKey = k
	default:
		contentKey = append([]byte(nil), dataKey...)
	}
	block, err := aes.NewCipher(contentKey)
	clear(contentKey)
	if err != nil {
		return nil, err
	}
	if mk.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return &mk, nil
}

// checkCommitment compares the header's commitment value with the derived
// one in constant time.
func (mk *messageKeys) checkCommitment(h *Header) error {
	if h.Suite.Committing && subtle.ConstantTimeCompare(mk.commitKey, h.CommitKey) != 1 {
		return fmt.Errorf("%w: key commitment does not match", ErrAuthentication)
	}
	return nil
}

// Body AAD content strings.
const (
	aadFrame      = "AWSKMSEncryptionClient Frame"
	aadFinalFrame = "AWSKMSEncryptionClient Final Frame"
	aadSingle     = "AWSKMSEncryptionClient Single Block"
)

// bodyAAD builds the AAD of one frame or of the non-framed body.
func bodyAAD(dst, messageID []byte, content string, seq uint32, length uint64) []byte {
	dst = append(dst[:0], messageID...)
	dst = append(dst, content...)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	return binary.BigEndian.AppendUint64(dst, length)
}

// frameIV is the deterministic IV of frame seq: the sequence number, big
// endian, right-aligned in 12 bytes.
func frameIV(seq uint32) []byte {
	iv := make([]byte, ivLen)
	binary.BigEndian.PutUint32(iv[8:], seq)
	return iv
}
