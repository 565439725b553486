package keyring

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"

	"github.com/encjob/encjob/crypto"
)

// Padding is an RSA encryption padding scheme supported by the raw RSA
// keyring. OAEP paddings use the same hash for MGF1, as the ESDKs do.
type Padding int

// The supported paddings. The zero value is not a padding.
const (
	PKCS1v15 Padding = iota + 1
	OAEPSHA1
	OAEPSHA256
	OAEPSHA384
	OAEPSHA512
)

var paddingNames = map[Padding]string{
	PKCS1v15:   "pkcs1",
	OAEPSHA1:   "oaep-sha1",
	OAEPSHA256: "oaep-sha256",
	OAEPSHA384: "oaep-sha384",
	OAEPSHA512: "oaep-sha512",
}

// String returns the canonical name accepted by ParsePadding, e.g.
// "oaep-sha256".
func (p Padding) String() string {
	if n, ok := paddingNames[p]; ok {
		return n
	}
	return fmt.Sprintf("Padding(%d)", int(p))
}

// ParsePadding accepts, case-insensitively, the names oaep-sha1,
// oaep-sha256, oaep-sha384, oaep-sha512 and pkcs1, and the spellings the
// ESDKs and aws-encryption-cli use: OAEP_SHA256_MGF1, RSA_OAEP_SHA256_MGF1,
// OAEP-SHA256, PKCS1, RSA_PKCS1, PKCS1_V1_5 …
func ParsePadding(s string) (Padding, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.NewReplacer("_", "-", ".", "-").Replace(t)
	t = strings.TrimPrefix(t, "rsa-")
	t = strings.TrimSuffix(t, "-mgf1")
	t = strings.TrimSuffix(t, "-padding")
	switch t {
	case "pkcs1-v1-5", "pkcs1v15", "pkcs1-v15", "pkcs1v1-5":
		t = "pkcs1"
	case "oaep-sha-1":
		t = "oaep-sha1"
	case "oaep-sha-256":
		t = "oaep-sha256"
	case "oaep-sha-384":
		t = "oaep-sha384"
	case "oaep-sha-512":
		t = "oaep-sha512"
	}
	for p, n := range paddingNames {
		if t == n {
			return p, nil
		}
	}
	return 0, fmt.Errorf("keyring: unknown RSA padding %q (want oaep-sha1, oaep-sha256, oaep-sha384, oaep-sha512 or pkcs1)", s)
}

func (p Padding) hash() func() hash.Hash {
	switch p {
	case OAEPSHA1:
		return sha1.New
	case OAEPSHA256:
		return sha256.New
	case OAEPSHA384:
		return sha512.New384
	case OAEPSHA512:
		return sha512.New
	}
	return nil
}

// RawRSA wraps data keys with a local RSA key pair, as the ESDKs' raw RSA
// keyring (and the Python ESDK's raw RSA master key) do: provider id = key
// namespace, provider info = key name, ciphertext = RSA encryption of the
// data key. A keyring with only a public key can encrypt (and generate the
// data key) but not decrypt; one with only a private key can only decrypt.
type RawRSA struct {
	rawRSAID
	priv    *rsa.PrivateKey
	pub     *rsa.PublicKey
	padding Padding
}

// NewRawRSA returns a raw RSA keyring. At least one of priv and pub must be
// set; when both are, they must be the two halves of one key pair.
func NewRawRSA(namespace, name string, priv *rsa.PrivateKey, pub *rsa.PublicKey, padding Padding) (*RawRSA, error) {
	if err := checkNames("raw RSA", namespace, name); err != nil {
		return nil, err
	}
	if _, ok := paddingNames[padding]; !ok {
		return nil, fmt.Errorf("keyring: raw RSA key %q: unsupported padding %v", name, padding)
	}
	switch {
	case priv == nil && pub == nil:
		return nil, fmt.Errorf("keyring: raw RSA key %q: needs a public key, a private key or both", name)
	case priv != nil && pub != nil && !priv.PublicKey.Equal(pub):
		return nil, fmt.Errorf("keyring: raw RSA key %q: the public key does not belong to the private key", name)
	}
	for _, k := range []*rsa.PublicKey{pub, publicOf(priv)} {
		if k != nil && (k.N == nil || k.N.BitLen() < 1024) {
			return nil, fmt.Errorf("keyring: raw RSA key %q: modulus is shorter than 1024 bits", name)
		}
	}
	if priv != nil {
		if err := priv.Validate(); err != nil {
			return nil, fmt.Errorf("keyring: raw RSA key %q: invalid private key: %w", name, err)
		}
	}
	return &RawRSA{rawRSAID: rawRSAID{namespace, name}, priv: priv, pub: pub, padding: padding}, nil
}

// rawRSAID is the identity of a raw RSA key: all that EDK matching needs.
type rawRSAID struct{ namespace, name string }

// RawRSAMatcher returns the EDK matcher of the raw RSA key namespace/name
// without reading the key: it answers exactly as that key's RawRSA does.
func RawRSAMatcher(namespace, name string) crypto.EDKMatcher { return rawRSAID{namespace, name} }

// MatchesEDK implements crypto.EDKMatcher: provider id = namespace,
// provider info = name. A public-key-only keyring answers for its key too
// (see the interface's contract).
func (k rawRSAID) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	return edk.ProviderID == k.namespace && string(edk.ProviderInfo) == k.name
}

func publicOf(priv *rsa.PrivateKey) *rsa.PublicKey {
	if priv == nil {
		return nil
	}
	return &priv.PublicKey
}

// Namespace returns the key namespace (the EDK provider id).
func (k *RawRSA) Namespace() string { return k.namespace }

// Name returns the key name (the EDK provider info).
func (k *RawRSA) Name() string { return k.name }

// CanDecrypt reports whether the keyring holds the private key.
func (k *RawRSA) CanDecrypt() bool { return k.priv != nil }

// Padding returns the keyring's padding scheme.
func (k *RawRSA) Padding() Padding { return k.padding }

func (k *RawRSA) String() string {
	return fmt.Sprintf("raw RSA key %s/%s (%s)", k.namespace, k.name, k.padding)
}

// OnEncrypt generates the data key with crypto/rand when m has none, then
// appends the data key encrypted under the public key. It fails when the
// keyring has no public key.
func (k *RawRSA) OnEncrypt(_ context.Context, m *crypto.EncryptionMaterials) error {
	if err := checkEncryptMaterials(m, k); err != nil {
		return err
	}
	if k.pub == nil {
		return fmt.Errorf("keyring: %s has no public key, so it can only decrypt", k)
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
	var ct []byte
	var err error
	if h := k.padding.hash(); h != nil {
		ct, err = rsa.EncryptOAEP(h(), rand.Reader, k.pub, m.DataKey, nil)
	} else {
		// PKCS#1 v1.5 is deprecated in Go but still written and read by
		// every ESDK; it is offered only for compatibility.
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, k.pub, m.DataKey)
	}
	if err != nil {
		if generated {
			clear(m.DataKey)
			m.DataKey = nil
		}
		return fmt.Errorf("keyring: %s: wrapping the %d-byte data key: %w", k, m.Suite.KeyLen, err)
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, crypto.EncryptedDataKey{
		ProviderID:   k.namespace,
		ProviderInfo: []byte(k.name),
		Ciphertext:   ct,
	})
	return nil
}

// OnDecrypt tries, in order, every EDK whose provider id is this key's
// namespace and whose provider info is this key's name; the first that
// decrypts to a data key of the suite's length sets m.DataKey. Failures are
// skipped. When none decrypts (or the keyring has no private key) it
// returns an error wrapping crypto.ErrNoMatchingKey. If m already has a data
// key it returns nil without looking at the EDKs.
func (k *RawRSA) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if err := checkDecryptMaterials(m, k); err != nil || m.DataKey != nil {
		return err
	}
	if k.priv == nil {
		return fmt.Errorf("%w: %s has no private key", crypto.ErrNoMatchingKey, k)
	}
	matched, failed := 0, 0
	for _, edk := range edks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !k.MatchesEDK(edk) {
			continue
		}
		matched++
		var dk []byte
		var err error
		if h := k.padding.hash(); h != nil {
			dk, err = rsa.DecryptOAEP(h(), nil, k.priv, edk.Ciphertext, nil)
		} else {
			dk, err = rsa.DecryptPKCS1v15(nil, k.priv, edk.Ciphertext)
		}
		if err != nil || len(dk) != m.Suite.KeyLen {
			clear(dk)
			failed++
			continue
		}
		m.DataKey, m.DecryptedWith = dk, k.namespace+"/"+k.name
		return nil
	}
	if matched == 0 {
		return fmt.Errorf("%w: %s: no encrypted data key has provider id %q and this key name", crypto.ErrNoMatchingKey, k, k.namespace)
	}
	return fmt.Errorf("%w: %s: %d encrypted data key(s) name this key but none decrypted (wrong key pair or padding, or a damaged key)", crypto.ErrNoMatchingKey, k, failed)
}

var _ crypto.Keyring = (*RawRSA)(nil)
