package crypto

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
)

// DefaultCMM is the default materials manager: it asks its keyring for a
// data key and, for signed suites, makes the message's ECDSA key pair and
// records the public key in the encryption context.
type DefaultCMM struct {
	Keyring Keyring
}

// NewDefaultCMM returns the default materials manager over k.
func NewDefaultCMM(k Keyring) MaterialsManager { return &DefaultCMM{Keyring: k} }

// DefaultSuiteFor is the suite used when none is chosen: 0x0578, or 0x0378
// when the policy forbids committing suites (as the other ESDKs do).
func DefaultSuiteFor(p CommitmentPolicy) *Suite {
	if p == ForbidEncryptAllowDecrypt {
		return SuiteByID(0x0378)
	}
	return DefaultSuite
}

// GetEncryptionMaterials implements MaterialsManager.
func (c *DefaultCMM) GetEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*EncryptionMaterials, error) {
	s := req.Suite
	if s == nil {
		s = DefaultSuiteFor(req.CommitmentPolicy)
	}
	if err := req.CommitmentPolicy.checkEncrypt(s); err != nil {
		return nil, err
	}
	if _, ok := req.Context[publicKeyContextKey]; ok {
		return nil, fmt.Errorf("crypto: encryption context key %q is reserved", publicKeyContextKey)
	}
	m := &EncryptionMaterials{Suite: s, Context: req.Context.Clone(), RequiredContextKeys: slices.Clone(req.RequiredContextKeys)}
	if err := checkRequired(m.Context, m.RequiredContextKeys); err != nil {
		return nil, err
	}
	if s.Signed() {
		priv, err := ecdsa.GenerateKey(s.curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("crypto: generating signing key: %w", err)
		}
		pub, err := compressPublicKey(&priv.PublicKey)
		if err != nil {
			return nil, err
		}
		m.SigningKey = priv
		m.Context[publicKeyContextKey] = pub
	}
	if err := c.Keyring.OnEncrypt(ctx, m); err != nil {
		return nil, err
	}
	if len(m.DataKey) != s.KeyLen {
		return nil, fmt.Errorf("crypto: keyring produced no data key of %d bytes", s.KeyLen)
	}
	if len(m.EncryptedDataKeys) == 0 {
		return nil, fmt.Errorf("crypto: keyring produced no encrypted data key")
	}
	return m, nil
}

// DecryptMaterials implements MaterialsManager.
func (c *DefaultCMM) DecryptMaterials(ctx context.Context, req DecryptionRequest) (*DecryptionMaterials, error) {
	if err := req.CommitmentPolicy.checkDecrypt(req.Suite); err != nil {
		return nil, err
	}
	// The keyring sees the full context (stored and reproduced pairs), as
	// it did on encrypt, so keyrings that bind the context to their
	// encrypted data keys check the reproduced values too.
	full, only, err := mergeReproduced(req.Context, req.ReproducedContext)
	if err != nil {
		return nil, err
	}
	m := &DecryptionMaterials{Suite: req.Suite, Context: full, RequiredContextKeys: only}
	encoded, ok := req.Context[publicKeyContextKey]
	switch {
	case req.Suite.Signed() && !ok:
		return nil, malformed("signed suite %s but no %s in the encryption context", req.Suite, publicKeyContextKey)
	case !req.Suite.Signed() && ok:
		return nil, malformed("unsigned suite %s with a %s in the encryption context", req.Suite, publicKeyContextKey)
	case ok:
		pub, err := decompressPublicKey(req.Suite.curve, encoded)
		if err != nil {
			return nil, err
		}
		m.VerificationKey = pub
	}
	if err := c.Keyring.OnDecrypt(ctx, m, req.EncryptedDataKeys); err != nil {
		return nil, err
	}
	if len(m.DataKey) != req.Suite.KeyLen {
		return nil, fmt.Errorf("crypto: keyring returned no data key of %d bytes", req.Suite.KeyLen)
	}
	return m, nil
}

// compressPublicKey encodes a public key as the ESDKs do: base64 of the
// SEC 1 compressed point.
func compressPublicKey(pub *ecdsa.PublicKey) (string, error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return "", err
	}
	n := (len(raw) - 1) / 2
	out := make([]byte, 1+n)
	out[0] = 0x02 | raw[len(raw)-1]&1
	copy(out[1:], raw[1:1+n])
	return base64.StdEncoding.EncodeToString(out), nil
}

func decompressPublicKey(curve elliptic.Curve, encoded string) (*ecdsa.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, malformed("%s is not base64", publicKeyContextKey)
	}
	x, y := elliptic.UnmarshalCompressed(curve, raw)
	if x == nil {
		return nil, malformed("%s is not a compressed %s point", publicKeyContextKey, curve.Params().Name)
	}
	n := (curve.Params().BitSize + 7) / 8
	full := make([]byte, 1+2*n)
	full[0] = 4
	x.FillBytes(full[1 : 1+n])
	y.FillBytes(full[1+n:])
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, full)
	if err != nil {
		return nil, malformed("%s: %v", publicKeyContextKey, err)
	}
	return pub, nil
}

var _ MaterialsManager = (*DefaultCMM)(nil)
