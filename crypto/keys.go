package crypto

import (
	"crypto/aes"
	"crypto/cipher"
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
		// Both keys come from one extraction (salt: the message id).
		k := newKDF(sha512.New, dataKey, messageID)
		var info [2 + len("DERIVEKEY")]byte
		binary.BigEndian.PutUint16(info[:], s.ID)
		copy(info[2:], "DERIVEKEY")
		contentKey = k.expand(info[:], s.KeyLen)
		mk.commitKey = k.expand([]byte("COMMITKEY"), commitKeyLen)
		k.clear()
	case s.kdf != nil:
		info := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(messageID)), s.ID)
		if !netV400 {
			info = append(info, messageID...)
		}
		mk.netV400 = netV400
		k := newKDF(s.kdf, dataKey, nil)
		contentKey = k.expand(info, s.KeyLen)
		k.clear()
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

// aadMax is the longest body AAD: a v2 message id, the final frame's
// content string, the sequence number and the length.
const aadMax = messageIDV2 + len(aadFinalFrame) + 4 + 8

// bodyAAD builds the AAD of one frame or of the non-framed body.
func bodyAAD(dst, messageID []byte, content string, seq uint32, length uint64) []byte {
	dst = append(dst[:0], messageID...)
	dst = append(dst, content...)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	return binary.BigEndian.AppendUint64(dst, length)
}

// appendFrameIV appends the deterministic IV of frame seq to dst: the
// sequence number, big endian, right-aligned in 12 bytes.
func appendFrameIV(dst []byte, seq uint32) []byte {
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(dst, seq)
}
