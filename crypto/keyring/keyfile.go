package keyring

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// maxKeyFileSize bounds what the loaders read: a key file is small, and a
// path pointing at something large is a mistake, not a key.
const maxKeyFileSize = 1 << 20

// LoadAESKeyFile reads an AES wrapping key from path. encoding is "" or
// "raw" (the file holds the key bytes), "base64" (standard base64, padded or
// not, surrounding whitespace allowed) or "hex". The key must decode to 16,
// 24 or 32 bytes. The warnings say when the file is accessible by group or
// others. Errors name the file, never its contents.
func LoadAESKeyFile(path, encoding string) ([]byte, []string, error) {
	data, warnings, err := readKeyFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer clear(data)
	var key []byte
	switch strings.ToLower(encoding) {
	case "", "raw":
		key = bytes.Clone(data)
		if n := len(key); n != 16 && n != 24 && n != 32 && looksLikeText(data) {
			clear(key)
			return nil, nil, fmt.Errorf("keyring: AES key file %s: %d bytes of text, but a raw key must be 16, 24 or 32 bytes (is the key base64 or hex? then set the encoding)", path, n)
		}
	case "base64":
		text := bytes.TrimSpace(data)
		enc := base64.StdEncoding
		if len(text)%4 != 0 {
			enc = base64.RawStdEncoding
		}
		key = make([]byte, enc.DecodedLen(len(text)))
		n, err := enc.Decode(key, text)
		if err != nil {
			clear(key)
			return nil, nil, fmt.Errorf("keyring: AES key file %s: not valid base64 text", path)
		}
		key = key[:n]
	case "hex":
		text := bytes.TrimSpace(data)
		key = make([]byte, hex.DecodedLen(len(text)))
		n, err := hex.Decode(key, text)
		if err != nil {
			clear(key)
			return nil, nil, fmt.Errorf("keyring: AES key file %s: not valid hex text", path)
		}
		key = key[:n]
	default:
		return nil, nil, fmt.Errorf("keyring: AES key file %s: unknown key encoding %q (want raw, base64 or hex)", path, encoding)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, warnings, nil
	}
	n := len(key)
	clear(key)
	return nil, nil, fmt.Errorf("keyring: AES key file %s: key is %d bytes, want 16, 24 or 32 (AES-128, AES-192 or AES-256)", path, n)
}

// looksLikeText reports whether b is printable ASCII and whitespace only,
// which a raw key of the wrong length almost never is.
func looksLikeText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return len(b) > 0
}

// GenerateAESKeyFile writes a new random AES key of bits (128, 192 or 256)
// to path as raw bytes. The file is created with mode 0600 and must not
// already exist; on any failure nothing is left behind.
func GenerateAESKeyFile(path string, bits int) (err error) {
	if bits != 128 && bits != 192 && bits != 256 {
		return fmt.Errorf("keyring: generating AES key file %s: key size %d bits, want 128, 192 or 256", path, bits)
	}
	key := make([]byte, bits/8)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("keyring: generating AES key file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keyring: generating AES key file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if _, err = f.Write(key); err != nil {
		return fmt.Errorf("keyring: writing AES key file %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("keyring: writing AES key file %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("keyring: writing AES key file %s: %w", path, err)
	}
	return nil
}

// LoadRSAPrivateKeyPEM reads an RSA private key from a PEM file holding a
// PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1 ("BEGIN RSA PRIVATE KEY") key.
// Encrypted PEM keys are not supported. Errors name the file, never its
// contents.
func LoadRSAPrivateKeyPEM(path string) (*rsa.PrivateKey, error) {
	data, _, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	block, err := findPEM(path, data, "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	defer clear(block.Bytes)
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("keyring: RSA private key file %s: the key is password-protected, which is not supported (decrypt it first, e.g. with openssl pkey)", path)
	}
	var key *rsa.PrivateKey
	if block.Type == "RSA PRIVATE KEY" {
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keyring: RSA private key file %s: not a valid PKCS#1 RSA private key", path)
		}
	} else {
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("keyring: RSA private key file %s: not a valid PKCS#8 private key", path)
		}
		var ok bool
		if key, ok = k.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("keyring: RSA private key file %s: holds a %s key, not an RSA key", path, keyKind(k))
		}
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("keyring: RSA private key file %s: invalid RSA key: %w", path, err)
	}
	return key, nil
}

// LoadRSAPublicKeyPEM reads an RSA public key from a PEM file holding a
// SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"), a PKCS#1 ("BEGIN RSA PUBLIC
// KEY") key, or an X.509 certificate ("BEGIN CERTIFICATE", whose key is
// used; the certificate itself is not verified).
func LoadRSAPublicKeyPEM(path string) (*rsa.PublicKey, error) {
	data, _, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	block, err := findPEM(path, data, "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE")
	if err != nil {
		if _, perr := findPEM(path, data, "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"); perr == nil {
			clear(data)
			return nil, fmt.Errorf("keyring: RSA public key file %s: holds a private key; give it as the private key, or extract the public key (openssl pkey -pubout)", path)
		}
		return nil, err
	}
	var pub any
	switch block.Type {
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: RSA public key file %s: not a valid %s block", path, block.Type)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("keyring: RSA public key file %s: holds a %s key, not an RSA key", path, keyKind(pub))
	}
	return key, nil
}

// findPEM returns the first PEM block of one of the wanted types.
func findPEM(path string, data []byte, types ...string) (*pem.Block, error) {
	rest := data
	var seen []string
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		for _, t := range types {
			if block.Type == t {
				return block, nil
			}
		}
		seen = append(seen, fmt.Sprintf("%q", block.Type))
		clear(block.Bytes)
	}
	// Say what is wrong with the file, not only what is missing.
	want := strings.Join(quoteAll(types), " or ")
	switch {
	case len(seen) > 0:
		return nil, fmt.Errorf("keyring: key file %s: no PEM block of type %s found (the file holds %s)", path, want, strings.Join(seen, ", "))
	case bytes.Contains(data, []byte("-----BEGIN ")):
		return nil, fmt.Errorf("keyring: key file %s: malformed PEM: a -----BEGIN line is present but the block does not decode (invalid base64, or a missing or mismatched -----END line)", path)
	}
	return nil, fmt.Errorf("keyring: key file %s: not a PEM file (no -----BEGIN line); want a PEM block of type %s", path, want)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

func keyKind(k any) string {
	switch fmt.Sprintf("%T", k) {
	case "*ecdsa.PrivateKey", "*ecdsa.PublicKey":
		return "ECDSA"
	case "ed25519.PrivateKey", "ed25519.PublicKey":
		return "Ed25519"
	case "*ecdh.PrivateKey", "*ecdh.PublicKey":
		return "ECDH"
	}
	return fmt.Sprintf("%T", k)
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "fifo"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// readKeyFile reads a small key file and reports whether it is accessible
// by group or others.
func readKeyFile(path string) ([]byte, []string, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer (and a
	// device must not be read): the descriptor is checked first.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: key file: %w", err)
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("keyring: key file %s is a directory", path)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("keyring: key file %s is a %s, not a regular file", path, fileKind(st.Mode()))
	}
	var warnings []string
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("key file %s has mode %04o and is accessible by group or others; restrict it with chmod 600 %s", path, perm, path))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		clear(data)
		return nil, nil, fmt.Errorf("keyring: reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		clear(data)
		return nil, nil, fmt.Errorf("keyring: key file %s is larger than %d bytes; it is not a key", path, maxKeyFileSize)
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("keyring: key file %s is empty", path)
	}
	return data, warnings, nil
}
