package keyring

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/encjob/encjob/crypto"
)

// ECDHScheme is a key agreement schema of the ESDK specification.
type ECDHScheme int

// Key agreement schemas. The raw ECDH keyring uses the first three, the
// AWS KMS ECDH keyring (package awskms) the last two.
const (
	// RawPrivateKeyToStaticPublicKey: our static private key with the
	// recipient's static public key; encrypts and decrypts (either party
	// of the pair decrypts with its own private key and the other's
	// public key).
	RawPrivateKeyToStaticPublicKey ECDHScheme = iota + 1
	// EphemeralPrivateKeyToStaticPublicKey: a fresh key pair per EDK with
	// the recipient's public key; encrypts only.
	EphemeralPrivateKeyToStaticPublicKey
	// PublicKeyDiscovery: the recipient's static private key with whatever
	// sender key the EDK names; decrypts only.
	PublicKeyDiscovery
	// KmsPrivateKeyToStaticPublicKey: a KMS key-agreement key with the
	// recipient's static public key; encrypts and decrypts.
	KmsPrivateKeyToStaticPublicKey
	// KmsPublicKeyDiscovery: the recipient's KMS key-agreement key with
	// whatever sender key the EDK names; decrypts only.
	KmsPublicKeyDiscovery
)

var schemeNames = map[ECDHScheme]string{
	RawPrivateKeyToStaticPublicKey:       "RawPrivateKeyToStaticPublicKey",
	EphemeralPrivateKeyToStaticPublicKey: "EphemeralPrivateKeyToStaticPublicKey",
	PublicKeyDiscovery:                   "PublicKeyDiscovery",
	KmsPrivateKeyToStaticPublicKey:       "KmsPrivateKeyToStaticPublicKey",
	KmsPublicKeyDiscovery:                "KmsPublicKeyDiscovery",
}

func (s ECDHScheme) String() string {
	if n, ok := schemeNames[s]; ok {
		return n
	}
	return fmt.Sprintf("ECDHScheme(%d)", int(s))
}

// ParseECDHScheme parses a scheme name (as String prints it).
func ParseECDHScheme(s string) (ECDHScheme, error) {
	for k, n := range schemeNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("keyring: unknown ECDH key agreement scheme %q", s)
}

// CanEncrypt and CanDecrypt say which directions a scheme supports.
func (s ECDHScheme) CanEncrypt() bool { return s != PublicKeyDiscovery && s != KmsPublicKeyDiscovery }

// CanDecrypt reports whether keyrings of scheme s can decrypt.
func (s ECDHScheme) CanDecrypt() bool { return s != EphemeralPrivateKeyToStaticPublicKey }

func (s ECDHScheme) discovery() bool { return s == PublicKeyDiscovery || s == KmsPublicKeyDiscovery }

// Errors of keyrings used in a direction they do not support. They are
// setup errors: the key group is wrong for the operation.
var (
	ErrEncryptOnly = errors.New("keyring: this keyring can only encrypt (its key agreement scheme has no recipient private key)")
	ErrDecryptOnly = errors.New("keyring: this keyring can only decrypt (discovery has no recipient to encrypt to)")
)

// KeyAgreement computes the ECDH shared secret between the keyring's
// private key and a peer public key on the keyring's curve: locally (raw
// ECDH) or in AWS KMS (DeriveSharedSecret). Errors must not contain key
// material. Implementations must be safe for concurrent use.
type KeyAgreement interface {
	SharedSecret(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error)
}

// ECDHConfig configures an ECDH keyring (see NewECDH).
type ECDHConfig struct {
	ProviderID string // ProviderIDRawECDH or ProviderIDKMSECDH: what OnEncrypt writes
	Curve      Curve
	Scheme     ECDHScheme
	// Own is the public key of the keyring's private key: the sender's
	// static key, or the recipient's for discovery; nil for the ephemeral
	// scheme.
	Own *ecdh.PublicKey
	// Recipient is the recipient's public key; nil for discovery.
	Recipient *ecdh.PublicKey
	// Agreement holds the private key of Own; nil for the ephemeral scheme.
	Agreement KeyAgreement
	// Describe names the keyring in errors ("raw ECDH", "AWS KMS ECDH key
	// ARN"); DecryptedWith is what decryption materials record.
	Describe, DecryptedWith string
}

// ECDH is an ECDH keyring: the raw ECDH keyring (NewRawECDH) or, with a
// KMS KeyAgreement, the AWS KMS ECDH keyring. Wire format: see ecdh.go.
type ECDH struct {
	cfg        ECDHConfig
	own, recip []byte // compressed; nil when not configured
}

// NewECDH checks that cfg has exactly the keys its scheme needs, all on
// cfg.Curve, and returns the keyring.
func NewECDH(cfg ECDHConfig) (*ECDH, error) {
	if _, ok := curveInfo[cfg.Curve]; !ok {
		return nil, fmt.Errorf("keyring: %s: unsupported curve %v", cfg.Describe, cfg.Curve)
	}
	if _, ok := schemeNames[cfg.Scheme]; !ok {
		return nil, fmt.Errorf("keyring: %s: unsupported key agreement scheme %v", cfg.Describe, cfg.Scheme)
	}
	ephemeral := cfg.Scheme == EphemeralPrivateKeyToStaticPublicKey
	switch {
	case ephemeral && (cfg.Own != nil || cfg.Agreement != nil):
		return nil, fmt.Errorf("keyring: %s: %v takes no private key (a new one is made for every message)", cfg.Describe, cfg.Scheme)
	case !ephemeral && (cfg.Own == nil || cfg.Agreement == nil):
		return nil, fmt.Errorf("keyring: %s: %v needs a private key", cfg.Describe, cfg.Scheme)
	case cfg.Scheme.discovery() && cfg.Recipient != nil:
		return nil, fmt.Errorf("keyring: %s: %v takes no recipient public key (the private key is the recipient's)", cfg.Describe, cfg.Scheme)
	case !cfg.Scheme.discovery() && cfg.Recipient == nil:
		return nil, fmt.Errorf("keyring: %s: %v needs the recipient's public key", cfg.Describe, cfg.Scheme)
	}
	k := &ECDH{cfg: cfg}
	for _, p := range []struct {
		what string
		key  *ecdh.PublicKey
		dst  *[]byte
	}{{"private key", cfg.Own, &k.own}, {"recipient public key", cfg.Recipient, &k.recip}} {
		if p.key == nil {
			continue
		}
		if c, ok := curveOf(p.key); !ok || c != cfg.Curve {
			return nil, fmt.Errorf("keyring: %s: the %s is on %s, the key group's curve is %s", cfg.Describe, p.what, curveName(p.key), cfg.Curve)
		}
		*p.dst = Compress(p.key)
	}
	return k, nil
}

func curveName(k *ecdh.PublicKey) string {
	if c, ok := curveOf(k); ok {
		return c.String()
	}
	return fmt.Sprint(k.Curve())
}

// KeyID names the keyring's key in logs and metadata: the KMS key ARN, or
// "raw-ecdh/" and the fingerprint of our static key (the recipient's for
// the ephemeral scheme). It is what decryption materials record.
func (k *ECDH) KeyID() string { return k.cfg.DecryptedWith }

// Scheme returns the key agreement scheme.
func (k *ECDH) Scheme() ECDHScheme { return k.cfg.Scheme }

// Curve returns the curve.
func (k *ECDH) Curve() Curve { return k.cfg.Curve }

func (k *ECDH) String() string {
	var parts []string
	if k.own != nil {
		role := "sender"
		if k.cfg.Scheme.discovery() {
			role = "recipient"
		}
		parts = append(parts, role+" "+KeyFingerprint(k.own))
	}
	if k.recip != nil {
		parts = append(parts, "recipient "+KeyFingerprint(k.recip))
	}
	return fmt.Sprintf("%s keyring (%s, %s, %s)", k.cfg.Describe, k.cfg.Curve, k.cfg.Scheme, strings.Join(parts, ", "))
}

// OnEncrypt generates the data key when m has none, derives a wrapping key
// from the shared secret of the sender key (ours, or a fresh ephemeral
// one) and the recipient's public key, and appends the EDK.
func (k *ECDH) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	if err := checkEncryptMaterials(m, k); err != nil {
		return err
	}
	if !k.cfg.Scheme.CanEncrypt() {
		return fmt.Errorf("%s: %w", k, ErrDecryptOnly)
	}
	sender, z, err := k.encryptSecret(ctx)
	if err != nil {
		return err
	}
	defer clear(z)
	generated := m.DataKey == nil
	dk := m.DataKey
	if generated {
		dk = make([]byte, m.Suite.KeyLen)
		if _, err := rand.Read(dk); err != nil {
			return fmt.Errorf("keyring: %s: generating data key: %w", k, err)
		}
	}
	ct, err := ecdhWrap(k.cfg.Curve, z, sender, k.recip, dk, m.Context)
	if err != nil {
		if generated {
			clear(dk)
		}
		return fmt.Errorf("keyring: %s: wrapping the data key: %w", k, err)
	}
	m.DataKey = dk
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, crypto.EncryptedDataKey{
		ProviderID:   k.cfg.ProviderID,
		ProviderInfo: ecdhInfo{recipient: k.recip, sender: sender}.marshal(),
		Ciphertext:   ct,
	})
	return nil
}

// encryptSecret returns the sender's compressed public key and the shared
// secret with the recipient.
func (k *ECDH) encryptSecret(ctx context.Context) (sender, z []byte, err error) {
	if k.cfg.Scheme != EphemeralPrivateKeyToStaticPublicKey {
		z, err = k.cfg.Agreement.SharedSecret(ctx, k.cfg.Recipient)
		if err != nil {
			return nil, nil, fmt.Errorf("keyring: %s: key agreement: %w", k, err)
		}
		return k.own, z, nil
	}
	eph, err := k.cfg.Curve.ECDH().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: %s: ephemeral key: %w", k, err)
	}
	z, err = eph.ECDH(k.cfg.Recipient)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: %s: key agreement: %w", k, err)
	}
	return Compress(eph.PublicKey()), z, nil
}

// MatchesEDK implements crypto.EDKMatcher: an ECDH EDK (either provider id)
// between this keyring's keys — for the static schemes our key and the
// peer's in either role, for discovery our key as recipient, for the
// ephemeral scheme the configured recipient.
func (k *ECDH) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	_, _, why := k.match(edk)
	return why == ""
}

// match returns the parsed provider info and the compressed public key of
// the other party whose shared secret with our private key unwraps edk,
// or why edk is not ours.
func (k *ECDH) match(edk crypto.EncryptedDataKey) (ecdhInfo, []byte, string) {
	if !IsECDHEDK(edk) {
		return ecdhInfo{}, nil, "not an ECDH encrypted data key"
	}
	p, err := parseECDHInfo(edk.ProviderInfo)
	if err != nil {
		return ecdhInfo{}, nil, err.Error()
	}
	if n := k.cfg.Curve.compressedLen(); len(p.recipient) != n || len(p.sender) != n {
		return ecdhInfo{}, nil, fmt.Sprintf("its public keys are %d bytes, not on %s (another curve)", len(p.recipient), k.cfg.Curve)
	}
	switch {
	case k.cfg.Scheme == EphemeralPrivateKeyToStaticPublicKey:
		if bytes.Equal(p.recipient, k.recip) {
			return p, nil, ""
		}
	case k.cfg.Scheme.discovery():
		if bytes.Equal(p.recipient, k.own) {
			return p, p.sender, ""
		}
	case bytes.Equal(p.sender, k.own) && bytes.Equal(p.recipient, k.recip):
		return p, p.recipient, ""
	case bytes.Equal(p.recipient, k.own) && bytes.Equal(p.sender, k.recip):
		return p, p.sender, ""
	}
	return ecdhInfo{}, nil, fmt.Sprintf("recipient %s, sender %s: not this keyring's key pair", KeyFingerprint(p.recipient), KeyFingerprint(p.sender))
}

// OnDecrypt tries every ECDH EDK between this keyring's keys (MatchesEDK)
// in order; the first that unwraps sets m.DataKey. When none does it
// returns an *ECDHNoMatchError (wrapping crypto.ErrNoMatchingKey) that
// says why each ECDH EDK was skipped or failed. An ephemeral-sender
// keyring cannot decrypt: its error wraps ErrEncryptOnly too.
func (k *ECDH) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if err := checkDecryptMaterials(m, k); err != nil || m.DataKey != nil {
		return err
	}
	if !k.cfg.Scheme.CanDecrypt() {
		return fmt.Errorf("%s: %w: %w", k, ErrEncryptOnly, crypto.ErrNoMatchingKey)
	}
	nm := &ECDHNoMatchError{Keyring: k.String()}
	for i, edk := range edks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !IsECDHEDK(edk) {
			continue
		}
		p, peer, why := k.match(edk)
		if why != "" {
			nm.Skipped = append(nm.Skipped, fmt.Sprintf("encrypted data key %d: %s", i, why))
			continue
		}
		dk, err := k.unwrap(ctx, m, p, peer, edk)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			nm.Failures = append(nm.Failures, fmt.Errorf("encrypted data key %d: %w", i, err))
			continue
		}
		m.DataKey, m.DecryptedWith = dk, k.cfg.DecryptedWith
		return nil
	}
	return nm
}

func (k *ECDH) unwrap(ctx context.Context, m *crypto.DecryptionMaterials, p ecdhInfo, peer []byte, edk crypto.EncryptedDataKey) ([]byte, error) {
	pub, err := decompress(k.cfg.Curve, peer)
	if err != nil {
		return nil, err
	}
	z, err := k.cfg.Agreement.SharedSecret(ctx, pub)
	if err != nil {
		return nil, fmt.Errorf("key agreement: %w", err)
	}
	defer clear(z)
	return ecdhUnwrap(k.cfg.Curve, z, p, edk.Ciphertext, m.Suite.KeyLen, m.Context)
}

// ECDHNoMatchError is an ECDH keyring's OnDecrypt failure: no EDK between
// its keys unwrapped. Skipped says why ECDH EDKs were not tried (another
// recipient, another curve, malformed), Failures why tried ones failed.
type ECDHNoMatchError struct {
	Keyring  string
	Skipped  []string
	Failures []error
}

func (e *ECDHNoMatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyring: %s: no encrypted data key is for this key pair", e.Keyring)
	if len(e.Skipped) == 0 && len(e.Failures) == 0 {
		b.WriteString(" (the message has no ECDH encrypted data key)")
	}
	// One entry per EDK of an untrusted header: bounded, with a count.
	parts := make([]string, 0, len(e.Failures)+len(e.Skipped))
	for _, f := range e.Failures {
		parts = append(parts, f.Error())
	}
	parts = append(parts, e.Skipped...)
	if len(parts) > 0 {
		b.WriteString("; " + crypto.BoundedList(parts, "; "))
	}
	return b.String()
}

// Unwrap returns crypto.ErrNoMatchingKey and the failures.
func (e *ECDHNoMatchError) Unwrap() []error {
	return append([]error{crypto.ErrNoMatchingKey}, e.Failures...)
}

// localAgreement is a KeyAgreement with a private key in memory.
type localAgreement struct{ priv *ecdh.PrivateKey }

func (a localAgreement) SharedSecret(_ context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	return a.priv.ECDH(peer)
}

// NewRawECDH returns a raw ECDH keyring. The scheme says which keys it
// needs: RawPrivateKeyToStaticPublicKey both (ours and the recipient's
// public key), EphemeralPrivateKeyToStaticPublicKey only recipient,
// PublicKeyDiscovery only priv (the recipient's own private key). Every
// key must be on curve.
func NewRawECDH(curve Curve, scheme ECDHScheme, priv *ecdh.PrivateKey, recipient *ecdh.PublicKey) (*ECDH, error) {
	switch scheme {
	case RawPrivateKeyToStaticPublicKey, EphemeralPrivateKeyToStaticPublicKey, PublicKeyDiscovery:
	default:
		return nil, fmt.Errorf("keyring: raw ECDH: scheme %v is not a raw ECDH scheme", scheme)
	}
	cfg := ECDHConfig{ProviderID: ProviderIDRawECDH, Curve: curve, Scheme: scheme, Recipient: recipient, Describe: "raw ECDH"}
	if priv != nil {
		cfg.Own, cfg.Agreement = priv.PublicKey(), localAgreement{priv}
	}
	k, err := NewECDH(cfg)
	if err != nil {
		return nil, err
	}
	label := k.own
	if label == nil {
		label = k.recip
	}
	k.cfg.DecryptedWith = ProviderIDRawECDH + "/" + KeyFingerprint(label)
	return k, nil
}

var (
	_ crypto.Keyring    = (*ECDH)(nil)
	_ crypto.EDKMatcher = (*ECDH)(nil)
)
