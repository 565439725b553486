package crypto

import (
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// Suite describes one ESDK algorithm suite. Suites are immutable values
// shared by pointer; compare them by ID.
type Suite struct {
	ID             uint16
	Name           string // the name aws-encryption-cli accepts
	MessageVersion int    // 1 or 2
	KeyLen         int    // data key and content key length in bytes
	kdf            func() hash.Hash
	curve          elliptic.Curve
	Committing     bool
}

// Fixed parameters shared by every suite (AES-GCM).
const (
	ivLen        = 12
	tagLen       = 16
	commitKeyLen = 32 // v2 algorithm suite data length
	messageIDV1  = 16
	messageIDV2  = 32
)

// Signed reports whether messages of this suite end with an ECDSA footer.
func (s *Suite) Signed() bool { return s.curve != nil }

// Curve returns the signing curve, or nil for unsigned suites.
func (s *Suite) Curve() elliptic.Curve { return s.curve }

// HasKDF reports whether the data key goes through HKDF (false only for the
// deprecated 0x0014/0x0046/0x0078 suites, which use the data key directly).
func (s *Suite) HasKDF() bool { return s.kdf != nil }

func (s *Suite) String() string { return fmt.Sprintf("0x%04X (%s)", s.ID, s.Name) }

// Hex returns the suite id as aws-encryption-cli prints it, e.g. "0x0578".
func (s *Suite) Hex() string { return fmt.Sprintf("0x%04X", s.ID) }

var suites = []*Suite{
	{ID: 0x0014, Name: "AES_128_GCM_IV12_TAG16", MessageVersion: 1, KeyLen: 16},
	{ID: 0x0046, Name: "AES_192_GCM_IV12_TAG16", MessageVersion: 1, KeyLen: 24},
	{ID: 0x0078, Name: "AES_256_GCM_IV12_TAG16", MessageVersion: 1, KeyLen: 32},
	{ID: 0x0114, Name: "AES_128_GCM_IV12_TAG16_HKDF_SHA256", MessageVersion: 1, KeyLen: 16, kdf: sha256.New},
	{ID: 0x0146, Name: "AES_192_GCM_IV12_TAG16_HKDF_SHA256", MessageVersion: 1, KeyLen: 24, kdf: sha256.New},
	{ID: 0x0178, Name: "AES_256_GCM_IV12_TAG16_HKDF_SHA256", MessageVersion: 1, KeyLen: 32, kdf: sha256.New},
	{ID: 0x0214, Name: "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", MessageVersion: 1, KeyLen: 16, kdf: sha256.New, curve: elliptic.P256()},
	{ID: 0x0346, Name: "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", MessageVersion: 1, KeyLen: 24, kdf: sha512.New384, curve: elliptic.P384()},
	{ID: 0x0378, Name: "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", MessageVersion: 1, KeyLen: 32, kdf: sha512.New384, curve: elliptic.P384()},
	{ID: 0x0478, Name: "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", MessageVersion: 2, KeyLen: 32, kdf: sha512.New, Committing: true},
	{ID: 0x0578, Name: "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", MessageVersion: 2, KeyLen: 32, kdf: sha512.New, curve: elliptic.P384(), Committing: true},
}

// DefaultSuite is the suite used when none is chosen, as in the other ESDKs.
var DefaultSuite = SuiteByID(0x0578)

// Suites returns every supported suite in id order.
func Suites() []*Suite { return append([]*Suite(nil), suites...) }

// SuiteByID returns the suite with the given id, or nil.
func SuiteByID(id uint16) *Suite {
	for _, s := range suites {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// ParseSuite accepts a suite name as aws-encryption-cli spells it
// (case-insensitive) or a hex id such as 0x0578 / 0578.
func ParseSuite(v string) (*Suite, error) {
	t := strings.TrimSpace(v)
	for _, s := range suites {
		if strings.EqualFold(t, s.Name) {
			return s, nil
		}
	}
	h := strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	if n, err := strconv.ParseUint(h, 16, 16); err == nil && len(h) == 4 {
		if s := SuiteByID(uint16(n)); s != nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("crypto: unknown algorithm suite %q (want a name such as AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 or a hex id such as 0x0578)", v)
}

// signHash returns the hash that signed suites sign: SHA-256 for P-256 and
// SHA-384 for P-384.
func (s *Suite) signHash() hash.Hash {
	if s.curve == elliptic.P256() {
		return sha256.New()
	}
	return sha512.New384()
}
