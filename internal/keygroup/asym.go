package keygroup

import (
	"context"
	"crypto/ecdh"
	"fmt"
	"os"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/spec"
)

// Builders of the asymmetric providers (issue 15): raw-ecdh, aws-kms-ecdh
// and aws-kms-rsa. Key files are read at build time; the KMS ECDH group
// calls GetPublicKey for its key unless publicKeyFile gives it, the KMS
// RSA group only on its first encryption (decrypting never needs it).

func ecdhParams(name string, g *spec.KeyGroup) (keyring.Curve, keyring.ECDHScheme, error) {
	c, err := keyring.ParseCurve(g.Curve)
	if err != nil {
		return 0, 0, fmt.Errorf("key group %q: %w", name, err)
	}
	s, err := keyring.ParseECDHScheme(g.Scheme)
	if err != nil {
		return 0, 0, fmt.Errorf("key group %q: %w", name, err)
	}
	return c, s, nil
}

// optionalPublicKey loads an EC public key file, nil when path is "".
func optionalPublicKey(name, path string) (*ecdh.PublicKey, error) {
	if path == "" {
		return nil, nil
	}
	pub, err := keyring.LoadECPublicKey(path)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	return pub, nil
}

func buildRawECDH(_ context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	curve, scheme, err := ecdhParams(name, g)
	if err != nil {
		return nil, err
	}
	var priv *ecdh.PrivateKey
	if g.PrivateKeyFile != "" {
		if priv, err = keyring.LoadECPrivateKeyPEM(resolvePath(o.BaseDir, g.PrivateKeyFile)); err != nil {
			return nil, fmt.Errorf("key group %q: %w", name, err)
		}
	}
	recip, err := optionalPublicKey(name, resolvePath(o.BaseDir, g.RecipientPublicKeyFile))
	if err != nil {
		return nil, err
	}
	kr, err := keyring.NewRawECDH(curve, scheme, priv, recip)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	out := &Group{Name: name, Spec: g, Keyring: kr, keyIDs: []string{kr.KeyID()}}
	out.Notes = append(out.Notes, keyFileNotes(name, o.BaseDir, g.PrivateKeyFile)...)
	return out, nil
}

// keyFileNotes warns about a private key file readable by group or others.
func keyFileNotes(name, base, path string) []string {
	if path == "" {
		return nil
	}
	p := resolvePath(base, path)
	if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
		return []string{fmt.Sprintf("key group %q: key file %s has mode %04o and is accessible by group or others; restrict it with chmod 600 %s", name, p, st.Mode().Perm(), p)}
	}
	return nil
}

// kmsClientConfig is the KMS client configuration of a group: the job's,
// with the group's region, profile, endpoint and grant tokens.
func kmsClientConfig(g *spec.KeyGroup, o Options) awskms.Config {
	cfg := o.KMS
	cfg.GrantTokens = g.GrantTokens
	if g.Region != "" {
		cfg.Region = g.Region
	}
	if g.Profile != "" {
		cfg.Profile = g.Profile
	}
	if g.Endpoint != "" {
		cfg.Endpoint = g.Endpoint
	}
	return cfg
}

func buildKMSECDH(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	curve, scheme, err := ecdhParams(name, g)
	if err != nil {
		return nil, err
	}
	cfg := awskms.ECDHConfig{Client: kmsClientConfig(g, o), Curve: curve, Scheme: scheme}
	if len(g.Keys) != 1 {
		return nil, fmt.Errorf("key group %q: an aws-kms-ecdh group names exactly one KMS key", name)
	}
	cfg.KeyID = g.Keys[0]
	if cfg.OwnPublicKey, err = optionalPublicKey(name, resolvePath(o.BaseDir, g.PublicKeyFile)); err != nil {
		return nil, err
	}
	if cfg.RecipientPublicKey, err = optionalPublicKey(name, resolvePath(o.BaseDir, g.RecipientPublicKeyFile)); err != nil {
		return nil, err
	}
	kr, err := awskms.NewECDH(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	return &Group{Name: name, Spec: g, Keyring: kr, keyIDs: []string{kr.KeyID()}}, nil
}

func buildKMSRSA(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	cfg := awskms.RSAConfig{Client: kmsClientConfig(g, o), Algorithm: g.EncryptionAlgorithm, FetchPublicKey: true}
	if len(g.Keys) != 1 {
		return nil, fmt.Errorf("key group %q: an aws-kms-rsa group names exactly one KMS key ARN", name)
	}
	cfg.KeyARN = g.Keys[0]
	if g.PublicKeyFile != "" {
		p := resolvePath(o.BaseDir, g.PublicKeyFile)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key group %q: public key file: %w", name, err)
		}
		cfg.PublicKeyPEM = b
	}
	kr, err := awskms.NewRSA(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	return &Group{Name: name, Spec: g, Keyring: kr, keyIDs: []string{kr.KeyARN()}}, nil
}

// offlineKMSRSA: the key ARN is all matching needs.
func offlineKMSRSA(g *spec.KeyGroup) (crypto.EDKMatcher, []string, bool) {
	if len(g.Keys) != 1 {
		return nil, nil, false
	}
	m, err := awskms.NewRSAMatcher(g.Keys[0])
	if err != nil {
		return nil, nil, false
	}
	return m, []string{g.Keys[0]}, true
}
