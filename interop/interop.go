// Package interop checks that encjob's ESDK messages interoperate with the
// official AWS Encryption SDKs. It is a nested module so that the main
// module never depends on them.
//
// Two peers are driven by the tests in this directory:
//
//   - the AWS Encryption SDK for JavaScript (@aws-crypto/client-node 5.x),
//     through the small CLI in jspeer/peer.js, run in batches by [JSPeer];
//   - the AWS Encryption SDK for Go (package goesdk), called in process.
//
// Both peers take keys in the same JSON shape, [Key], the shape of the
// keys.json of encjob's test vectors.
package interop

import (
	"crypto/ecdh"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// Key describes one raw wrapping key in the JSON shape both peers read.
type Key struct {
	Type      string `json:"type"` // "raw-aes" or "raw-rsa"
	Namespace string `json:"key_namespace"`
	Name      string `json:"key_name"`
	// Material is the AES key (raw-aes only). encoding/json writes it as
	// base64.
	Material []byte `json:"material_b64,omitempty"`
	// Padding is the RSA padding (raw-rsa only): pkcs1, oaep-sha1,
	// oaep-sha256, oaep-sha384 or oaep-sha512.
	Padding       string `json:"padding,omitempty"`
	PrivateKeyPEM string `json:"private_key_pem,omitempty"` // PKCS#8
	PublicKeyPEM  string `json:"public_key_pem,omitempty"`  // SubjectPublicKeyInfo

	// ECDH keys (raw-ecdh, aws-kms-ecdh): the curve (ECC_NIST_P256...) and
	// key agreement scheme as the MPL names them. PrivateKeyPEM is our
	// static private key, PublicKeyPEM the recipient's public key.
	Curve  string `json:"curve,omitempty"`
	Scheme string `json:"scheme,omitempty"`
	// AWS KMS keys (aws-kms-rsa, aws-kms-ecdh) through the emulator: the
	// key ARN (for ECDH: the sender's, or the recipient's for discovery),
	// the KMS endpoint and, for RSA, the encryption algorithm
	// (RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256).
	KMSKeyID            string `json:"kms_key_id,omitempty"`
	KMSEndpoint         string `json:"kms_endpoint,omitempty"`
	EncryptionAlgorithm string `json:"encryption_algorithm,omitempty"`
}

// Paddings lists the RSA paddings every peer supports, by the names [Key]
// uses.
var Paddings = []string{"pkcs1", "oaep-sha1", "oaep-sha256", "oaep-sha384", "oaep-sha512"}

// AESKey returns a raw AES key description.
func AESKey(namespace, name string, material []byte) Key {
	return Key{Type: "raw-aes", Namespace: namespace, Name: name, Material: material}
}

// RSAKey returns a raw RSA key description holding both halves of priv.
func RSAKey(namespace, name string, priv *rsa.PrivateKey, padding string) (Key, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("interop: rsa key %q: %w", name, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return Key{}, fmt.Errorf("interop: rsa key %q: %w", name, err)
	}
	return Key{
		Type:          "raw-rsa",
		Namespace:     namespace,
		Name:          name,
		Padding:       padding,
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		PublicKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}, nil
}

// RSAPrivateKey parses k's private key.
func (k Key) RSAPrivateKey() (*rsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(k.PrivateKeyPEM))
	if b == nil {
		return nil, fmt.Errorf("interop: rsa key %q: no PEM private key", k.Name)
	}
	p, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("interop: rsa key %q: %w", k.Name, err)
	}
	priv, ok := p.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("interop: rsa key %q: private key is %T, not RSA", k.Name, p)
	}
	return priv, nil
}

// RSAPublicKey parses k's public key.
func (k Key) RSAPublicKey() (*rsa.PublicKey, error) {
	b, _ := pem.Decode([]byte(k.PublicKeyPEM))
	if b == nil {
		return nil, fmt.Errorf("interop: rsa key %q: no PEM public key", k.Name)
	}
	p, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("interop: rsa key %q: %w", k.Name, err)
	}
	pub, ok := p.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("interop: rsa key %q: public key is %T, not RSA", k.Name, p)
	}
	return pub, nil
}

// PublicOnly returns k without its private half (an encrypt-only RSA key).
func (k Key) PublicOnly() Key {
	k.PrivateKeyPEM = ""
	return k
}

// ECDHKey returns an ECDH key description: typ raw-ecdh or aws-kms-ecdh,
// priv our static private key (nil for the ephemeral and KMS schemes),
// recipient the recipient's public key (nil for discovery).
func ECDHKey(typ, curve, scheme string, priv *ecdh.PrivateKey, recipient *ecdh.PublicKey) (Key, error) {
	k := Key{Type: typ, Curve: curve, Scheme: scheme}
	if priv != nil {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return Key{}, fmt.Errorf("interop: ecdh key: %w", err)
		}
		k.PrivateKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	if recipient != nil {
		der, err := x509.MarshalPKIXPublicKey(recipient)
		if err != nil {
			return Key{}, fmt.Errorf("interop: ecdh key: %w", err)
		}
		k.PublicKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	return k, nil
}

// PublicKeyDER returns the DER of k's PublicKeyPEM, nil when it has none.
func (k Key) PublicKeyDER() ([]byte, error) {
	if k.PublicKeyPEM == "" {
		return nil, nil
	}
	b, _ := pem.Decode([]byte(k.PublicKeyPEM))
	if b == nil {
		return nil, fmt.Errorf("interop: key %q: no PEM public key", k.Name)
	}
	return b.Bytes, nil
}
