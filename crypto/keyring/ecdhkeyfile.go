package keyring

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// LoadECPrivateKeyPEM reads an EC private key on a NIST curve from a PEM
// file holding PKCS#8 ("BEGIN PRIVATE KEY", what the specification
// requires) or SEC 1 ("BEGIN EC PRIVATE KEY"). A file holding only a
// public key is refused with an error saying so (a public key can never
// decrypt). Errors name the file, never its contents.
func LoadECPrivateKeyPEM(path string) (*ecdh.PrivateKey, error) {
	data, _, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	block, err := findPEM(path, data, "PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
	if err != nil {
		if _, perr := findPEM(path, data, "PUBLIC KEY"); perr == nil {
			return nil, fmt.Errorf("keyring: EC private key file %s: holds only a public key; this key group needs the private key (PKCS#8 PEM)", path)
		}
		return nil, err
	}
	defer clear(block.Bytes)
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("keyring: EC private key file %s: the key is password-protected, which is not supported (decrypt it first, e.g. with openssl pkey)", path)
	}
	var k any
	if block.Type == "EC PRIVATE KEY" {
		k, err = x509.ParseECPrivateKey(block.Bytes)
	} else {
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: EC private key file %s: not a valid %s block", path, block.Type)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("keyring: EC private key file %s: holds a %s key, not an EC key", path, keyKind(k))
	}
	priv, err := ek.ECDH()
	if err != nil {
		return nil, fmt.Errorf("keyring: EC private key file %s: %w", path, err)
	}
	if _, ok := curveOf(priv.PublicKey()); !ok {
		return nil, fmt.Errorf("keyring: EC private key file %s: curve %s is not supported (want P-256, P-384 or P-521)", path, ek.Curve.Params().Name)
	}
	return priv, nil
}

// LoadECPublicKey reads an EC public key on a NIST curve from a file
// holding a SubjectPublicKeyInfo, PEM ("BEGIN PUBLIC KEY") or DER.
func LoadECPublicKey(path string) (*ecdh.PublicKey, error) {
	data, _, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PUBLIC KEY" {
			clear(data)
			return nil, fmt.Errorf("keyring: EC public key file %s: holds a %q PEM block, want \"PUBLIC KEY\" (SubjectPublicKeyInfo; extract it with openssl pkey -pubout)", path, block.Type)
		}
		der = block.Bytes
	}
	pub, err := ParseECPublicKeyDER(der)
	if err != nil {
		return nil, fmt.Errorf("keyring: EC public key file %s: %w", path, err)
	}
	return pub, nil
}

// ParseECPublicKeyDER parses a DER SubjectPublicKeyInfo holding an EC key
// on a NIST curve (what KMS GetPublicKey returns).
func ParseECPublicKeyDER(der []byte) (*ecdh.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a DER or PEM SubjectPublicKeyInfo")
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("holds a %s key, not an EC key", keyKind(k))
	}
	pub, err := ek.ECDH()
	if err != nil {
		return nil, err
	}
	if _, ok := curveOf(pub); !ok {
		return nil, fmt.Errorf("curve %s is not supported (want P-256, P-384 or P-521)", ek.Curve.Params().Name)
	}
	return pub, nil
}

// MarshalECPublicKeyDER returns the DER SubjectPublicKeyInfo of pub (what
// KMS DeriveSharedSecret takes).
func MarshalECPublicKeyDER(pub *ecdh.PublicKey) ([]byte, error) {
	return x509.MarshalPKIXPublicKey(pub)
}
