package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/encjob/encjob/crypto"
)

// ECDH keyrings (raw and AWS KMS) share one wire format, defined by the
// ESDK specification's raw ECDH keyring and key agreement schemas:
//
//   - provider id "raw-ecdh" or "aws-kms-ecdh" (either keyring reads both);
//   - provider info: version 0x01, uint32 length + the recipient's
//     compressed public key, uint32 length + the sender's compressed public
//     key;
//   - ciphertext: 32-byte KDF salt, 32-byte commitment key, the AES-256-GCM
//     encryption of the data key (zero IV) and its 16-byte tag.
//
// The 64 bytes of keying material come from NIST SP 800-108 counter-mode
// HMAC-SHA-384 over the ECDH shared secret, with the salt as context and
// the "fixed info" as label: "ecdh-key-derivation", the curve ("p256"...),
// "HMAC_SHA384", sender || recipient compressed keys, the version and the
// canonical encryption context, separated by zero bytes. The first half is
// the commitment key stored in the EDK (checked in constant time on
// decrypt), the second the AES key; the fixed info is also the GCM AAD.
const (
	ProviderIDRawECDH = "raw-ecdh"
	ProviderIDKMSECDH = "aws-kms-ecdh"

	ecdhVersion   = 0x01
	ecdhSaltLen   = 32
	ecdhCommitLen = 32
	ecdhTagLen    = 16
)

// Curve is an ECDH curve specification, named as the MPL names it.
type Curve int

// Supported curves.
const (
	ECCNISTP256 Curve = iota + 1
	ECCNISTP384
	ECCNISTP521
)

var curveInfo = map[Curve]struct {
	name, kdf string
	ecdh      ecdh.Curve
	ec        elliptic.Curve
}{
	ECCNISTP256: {"ECC_NIST_P256", "p256", ecdh.P256(), elliptic.P256()},
	ECCNISTP384: {"ECC_NIST_P384", "p384", ecdh.P384(), elliptic.P384()},
	ECCNISTP521: {"ECC_NIST_P521", "p521", ecdh.P521(), elliptic.P521()},
}

// CurveNames lists the accepted curve names, for usage messages.
var CurveNames = []string{"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"}

func (c Curve) String() string {
	if i, ok := curveInfo[c]; ok {
		return i.name
	}
	return fmt.Sprintf("Curve(%d)", int(c))
}

// ParseCurve parses ECC_NIST_P256, ECC_NIST_P384 or ECC_NIST_P521.
func ParseCurve(s string) (Curve, error) {
	for c, i := range curveInfo {
		if i.name == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("keyring: unknown ECDH curve %q (want %s)", s, strings.Join(CurveNames, ", "))
}

// ECDH returns the crypto/ecdh curve.
func (c Curve) ECDH() ecdh.Curve { return curveInfo[c].ecdh }

// compressedLen is the length of a compressed point on c.
func (c Curve) compressedLen() int { return 1 + (curveInfo[c].ec.Params().BitSize+7)/8 }

// curveOf returns the curve of an ECDH public key.
func curveOf(k *ecdh.PublicKey) (Curve, bool) {
	for c, i := range curveInfo {
		if k.Curve() == i.ecdh {
			return c, true
		}
	}
	return 0, false
}

// Compress returns the compressed SEC 1 form of a NIST-curve public key.
func Compress(k *ecdh.PublicKey) []byte {
	c, _ := curveOf(k)
	x, y := elliptic.Unmarshal(curveInfo[c].ec, k.Bytes()) //nolint:staticcheck // only the point format conversion
	return elliptic.MarshalCompressed(curveInfo[c].ec, x, y)
}

// decompress parses a compressed point on c (rejecting points not on the
// curve and the point at infinity).
func decompress(c Curve, b []byte) (*ecdh.PublicKey, error) {
	if len(b) != c.compressedLen() {
		return nil, fmt.Errorf("public key is %d bytes, a compressed %s key is %d", len(b), c, c.compressedLen())
	}
	x, y := elliptic.UnmarshalCompressed(curveInfo[c].ec, b)
	if x == nil {
		return nil, fmt.Errorf("public key is not a point on %s", c)
	}
	return c.ECDH().NewPublicKey(elliptic.Marshal(curveInfo[c].ec, x, y)) //nolint:staticcheck // point format only
}

// KeyFingerprint names an ECDH public key in messages and logs: the first
// 8 bytes of the SHA-256 of its compressed form, in hex.
func KeyFingerprint(compressed []byte) string {
	sum := sha256.Sum256(compressed)
	return hex.EncodeToString(sum[:8])
}

// ecdhInfo is a parsed ECDH provider info.
type ecdhInfo struct {
	recipient, sender []byte // compressed public keys
}

func parseECDHInfo(info []byte) (ecdhInfo, error) {
	r := info
	if len(r) < 1 || r[0] != ecdhVersion {
		return ecdhInfo{}, errors.New("provider info: not version 1")
	}
	r = r[1:]
	field := func() ([]byte, bool) {
		if len(r) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(r)
		if uint64(len(r)-4) < uint64(n) {
			return nil, false
		}
		f := r[4 : 4+n]
		r = r[4+n:]
		return f, true
	}
	rec, ok1 := field()
	snd, ok2 := field()
	if !ok1 || !ok2 || len(r) != 0 || len(rec) == 0 || len(snd) == 0 {
		return ecdhInfo{}, errors.New("provider info: malformed key lengths")
	}
	return ecdhInfo{recipient: rec, sender: snd}, nil
}

func (p ecdhInfo) marshal() []byte {
	out := []byte{ecdhVersion}
	out = binary.BigEndian.AppendUint32(out, uint32(len(p.recipient)))
	out = append(out, p.recipient...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(p.sender)))
	return append(out, p.sender...)
}

// IsECDHEDK reports whether edk has an ECDH provider id.
func IsECDHEDK(edk crypto.EncryptedDataKey) bool {
	return edk.ProviderID == ProviderIDRawECDH || edk.ProviderID == ProviderIDKMSECDH
}

// ECDHEDKLabel renders an ECDH EDK's key identity for humans and metadata
// logs: provider id and the fingerprints of the recipient and sender
// public keys (see KeyFingerprint). ok is false for other EDKs.
func ECDHEDKLabel(edk crypto.EncryptedDataKey) (label string, ok bool) {
	if !IsECDHEDK(edk) {
		return "", false
	}
	p, err := parseECDHInfo(edk.ProviderInfo)
	if err != nil {
		return edk.ProviderID + "/malformed", true
	}
	return fmt.Sprintf("%s/recipient:%s/sender:%s", edk.ProviderID, KeyFingerprint(p.recipient), KeyFingerprint(p.sender)), true
}

// fixedInfo is the KDF label and GCM AAD of one EDK.
func fixedInfo(c Curve, sender, recipient []byte, ec crypto.EncryptionContext) ([]byte, error) {
	canon, err := ec.Serialize()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("ecdh-key-derivation")
	b.WriteByte(0)
	b.WriteString(curveInfo[c].kdf)
	b.WriteByte(0)
	b.WriteString("HMAC_SHA384")
	b.WriteByte(0)
	b.Write(sender)
	b.Write(recipient)
	b.WriteByte(0)
	b.WriteByte(ecdhVersion)
	b.WriteByte(0)
	b.Write(canon)
	return b.Bytes(), nil
}

// kdfCounter is SP 800-108 counter-mode HMAC-SHA-384 producing 64 bytes:
// block i = HMAC(z, uint32 i || label || 0x00 || context || uint32 512).
func kdfCounter(z, label, context []byte) []byte {
	var out []byte
	for i := uint32(1); len(out) < 64; i++ {
		h := hmac.New(sha512.New384, z)
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], i)
		h.Write(n[:])
		h.Write(label)
		h.Write([]byte{0})
		h.Write(context)
		binary.BigEndian.PutUint32(n[:], 512)
		h.Write(n[:])
		out = h.Sum(out)
	}
	clear(out[64:])
	return out[:64]
}

func ecdhGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ecdhWrap wraps dataKey for an EDK between sender and recipient (both
// compressed) given their shared secret z; it returns the EDK ciphertext.
func ecdhWrap(c Curve, z, sender, recipient, dataKey []byte, ec crypto.EncryptionContext) ([]byte, error) {
	fi, err := fixedInfo(c, sender, recipient, ec)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, ecdhSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	km := kdfCounter(z, fi, salt)
	defer clear(km)
	aead, err := ecdhGCM(km[ecdhCommitLen:])
	if err != nil {
		return nil, err
	}
	out := append(salt, km[:ecdhCommitLen]...)
	return aead.Seal(out, make([]byte, aead.NonceSize()), dataKey, fi), nil
}

// ecdhUnwrap is the inverse of ecdhWrap. Its errors say which check failed
// (never anything secret).
func ecdhUnwrap(c Curve, z []byte, p ecdhInfo, ciphertext []byte, keyLen int, ec crypto.EncryptionContext) ([]byte, error) {
	if len(ciphertext) != ecdhSaltLen+ecdhCommitLen+keyLen+ecdhTagLen {
		return nil, fmt.Errorf("ciphertext is %d bytes, want %d for a %d-byte data key", len(ciphertext), ecdhSaltLen+ecdhCommitLen+keyLen+ecdhTagLen, keyLen)
	}
	fi, err := fixedInfo(c, p.sender, p.recipient, ec)
	if err != nil {
		return nil, err
	}
	km := kdfCounter(z, fi, ciphertext[:ecdhSaltLen])
	defer clear(km)
	if subtle.ConstantTimeCompare(km[:ecdhCommitLen], ciphertext[ecdhSaltLen:ecdhSaltLen+ecdhCommitLen]) != 1 {
		return nil, errors.New("commitment key does not match (another key pair, or another encryption context)")
	}
	aead, err := ecdhGCM(km[ecdhCommitLen:])
	if err != nil {
		return nil, err
	}
	dk, err := aead.Open(nil, make([]byte, aead.NonceSize()), ciphertext[ecdhSaltLen+ecdhCommitLen:], fi)
	if err != nil {
		return nil, errors.New("data key does not authenticate")
	}
	return dk, nil
}
