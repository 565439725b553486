package keyring

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask-independent
		t.Fatal(err)
	}
	return p
}

func TestLoadAESKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := randKey(t, 32)
	b64 := base64.StdEncoding.EncodeToString(key)
	for name, c := range map[string]struct {
		data     []byte
		encoding string
	}{
		"raw":            {key, ""},
		"raw explicit":   {key, "raw"},
		"base64":         {[]byte(b64), "base64"},
		"base64 spaces":  {[]byte("\n  " + b64 + "\r\n\n"), "BASE64"},
		"base64 no pad":  {[]byte(strings.TrimRight(b64, "=") + "\n"), "base64"},
		"hex":            {[]byte(hex.EncodeToString(key) + "\n"), "hex"},
		"raw 16 bytes":   {key[:16], ""},
		"base64 24 byte": {[]byte(base64.StdEncoding.EncodeToString(key[:24])), "base64"},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(name, " ", "_"), c.data, 0o600)
			got, warnings, err := LoadAESKeyFile(p, c.encoding)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(key, got) || (len(got) != 16 && len(got) != 24 && len(got) != 32) || len(warnings) != 0 {
				t.Fatalf("got %d bytes, warnings %v", len(got), warnings)
			}
		})
	}
}

func TestLoadAESKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQ" // base64 of a 20-byte secret-ish value
	for name, c := range map[string]struct {
		data     []byte
		encoding string
	}{
		"raw wrong length":    {[]byte("0123456789abcdef0"), ""},
		"raw text":            {[]byte(secret + "\n"), ""},
		"base64 wrong length": {[]byte(secret), "base64"},
		"not base64":          {[]byte("!!" + secret + "!!"), "base64"},
		"not hex":             {[]byte("zz" + secret), "hex"},
		"unknown encoding":    {bytes.Repeat([]byte{1}, 16), "pem"},
		"empty":               {nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(name, " ", "_"), c.data, 0o600)
			_, _, err := LoadAESKeyFile(p, c.encoding)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if len(c.data) > 0 && strings.Contains(err.Error(), string(c.data)) || strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the file contents: %v", err)
			}
		})
	}
	if _, _, err := LoadAESKeyFile(filepath.Join(dir, "missing"), ""); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := LoadAESKeyFile(dir, ""); err == nil {
		t.Error("directory accepted")
	}
}

func TestLoadAESKeyFilePermissionWarning(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions only")
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "k", randKey(t, 16), 0o644)
	_, warnings, err := LoadAESKeyFile(p, "")
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], p) || !strings.Contains(warnings[0], "0644") {
		t.Fatalf("warnings %v, err %v", warnings, err)
	}
}

func TestGenerateAESKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, bits := range []int{128, 192, 256} {
		p := filepath.Join(dir, "key"+string(rune('0'+bits/64)))
		if err := GenerateAESKeyFile(p, bits); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %o", st.Mode().Perm())
		}
		key, warnings, err := LoadAESKeyFile(p, "")
		if err != nil || len(key) != bits/8 || len(warnings) != 0 {
			t.Fatalf("load generated %d-bit key: %d bytes, %v, %v", bits, len(key), warnings, err)
		}
		// Refuses to overwrite.
		if err := GenerateAESKeyFile(p, bits); err == nil {
			t.Fatal("overwrote an existing key file")
		}
		again, _, _ := LoadAESKeyFile(p, "")
		if !bytes.Equal(again, key) {
			t.Fatal("existing key file changed")
		}
	}
	p := filepath.Join(dir, "bad")
	if err := GenerateAESKeyFile(p, 512); err == nil {
		t.Fatal("512 bits accepted")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("a failed generation left a file")
	}
}

func TestLoadRSAKeysPEM(t *testing.T) {
	a, b := testRSAKeys(t)
	dir := t.TempDir()
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(a)
	spki, _ := x509.MarshalPKIXPublicKey(&a.PublicKey)
	enc := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &b.PublicKey, b)
	if err != nil {
		t.Fatal(err)
	}

	privFiles := map[string][]byte{
		"pkcs8":          enc("PRIVATE KEY", pkcs8),
		"pkcs1":          enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a)),
		"after a cert":   append(enc("CERTIFICATE", cert), enc("PRIVATE KEY", pkcs8)...),
		"with preamble":  append([]byte("some comment\n"), enc("PRIVATE KEY", pkcs8)...),
		"pkcs8 and spki": append(enc("PUBLIC KEY", spki), enc("PRIVATE KEY", pkcs8)...),
	}
	for name, data := range privFiles {
		p := writeFile(t, dir, "priv-"+strings.ReplaceAll(name, " ", "_"), data, 0o600)
		k, err := LoadRSAPrivateKeyPEM(p)
		if err != nil || !k.Equal(a) {
			t.Errorf("private %s: %v", name, err)
		}
	}
	pubFiles := map[string][]byte{
		"spki":  enc("PUBLIC KEY", spki),
		"pkcs1": enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&a.PublicKey)),
	}
	for name, data := range pubFiles {
		p := writeFile(t, dir, "pub-"+name, data, 0o644)
		k, err := LoadRSAPublicKeyPEM(p)
		if err != nil || !k.Equal(&a.PublicKey) {
			t.Errorf("public %s: %v", name, err)
		}
	}
	p := writeFile(t, dir, "cert", enc("CERTIFICATE", cert), 0o644)
	if k, err := LoadRSAPublicKeyPEM(p); err != nil || !k.Equal(&b.PublicKey) {
		t.Errorf("certificate: %v", err)
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	garbage := []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n")
	badPriv := map[string][]byte{
		"ecdsa":     enc("PRIVATE KEY", ecDER),
		"garbage":   garbage,
		"not pem":   pkcs8,
		"public":    enc("PUBLIC KEY", spki),
		"encrypted": enc("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}),
	}
	for name, data := range badPriv {
		p := writeFile(t, dir, "badpriv-"+name, data, 0o600)
		_, err := LoadRSAPrivateKeyPEM(p)
		if err == nil || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("bad private %s: %v", name, err)
		}
	}
	badPub := map[string][]byte{
		"ecdsa":   enc("PUBLIC KEY", ecPub),
		"private": enc("PRIVATE KEY", pkcs8),
		"garbage": []byte("-----BEGIN PUBLIC KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PUBLIC KEY-----\n"),
	}
	for name, data := range badPub {
		p := writeFile(t, dir, "badpub-"+name, data, 0o644)
		_, err := LoadRSAPublicKeyPEM(p)
		if err == nil || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("bad public %s: %v", name, err)
		}
	}
}
