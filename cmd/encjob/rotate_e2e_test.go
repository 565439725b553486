package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ERawAESKeyBytesRotated: a raw AES EDK names its key by namespace
// and name only, so after a key file's bytes are replaced (same name) a
// message the old bytes wrapped still "matches" the group. It must not
// be called current: a spec's existing outputs are a conflict
// (overwrite: never) or replaced (if-newer), and a re-encryption from the
// old bytes to the new ones under the same name re-encrypts every item
// instead of keeping it. Each result then opens with the new bytes.
func TestE2ERawAESKeyBytesRotated(t *testing.T) {
	dir, files := setup(t)
	rotate := func(name string) {
		b := make([]byte, 32)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const group = "{provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}"
	encryptCurrent(t, dir, group)
	rotate("key")
	r := encjob(t, dir, nil, "plan", "-f", "never.yaml")
	if out := r.stdout + r.stderr; !strings.Contains(out, "0 unchanged") || !strings.Contains(out, "3 conflicts") || !strings.Contains(out, "key in the key file now") {
		t.Fatalf("after the rotation, overwrite: never: %s", out)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "ifnewer.yaml"), 0)
	wantCode(t, encjob(t, dir, nil, args("decrypt", "-r", "-i", "enc", "-o", "dec", rawKey, "-S")...), 0)
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, "dec", name+".encrypted.decrypted")); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after if-newer: %v", name, err)
		}
	}

	// Re-encryption in place from the old bytes to new ones, same name.
	os.Rename(filepath.Join(dir, "key"), filepath.Join(dir, "old.key"))
	rotate("key")
	old := []string{"provider=raw-aes", "key-file=old.key", "namespace=encjob", "name=test"}
	r = encjob(t, dir, nil, args("reencrypt", "--auto-approve", "-r", "-i", "enc", "-o", "enc", "--source-wrapping-keys", old, rawKey, "-S")...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "3 re-encrypted") {
		t.Fatalf("in-place re-encryption to the new bytes: %s", r.stderr)
	}
	os.RemoveAll(filepath.Join(dir, "dec"))
	os.Mkdir(filepath.Join(dir, "dec"), 0o755)
	wantCode(t, encjob(t, dir, nil, args("decrypt", "-r", "-i", "enc", "-o", "dec", rawKey, "-S")...), 0)
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, "dec", name+".encrypted.decrypted")); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after the re-encryption: %v", name, err)
		}
	}

}

// TestE2ERawRSAPrivateKeyRotated: a raw RSA group whose key file holds a
// private key encrypts (the PEM holds the public half; REFERENCE.md
// promises "public or private to encrypt"), both in a spec and with -w.
// Its EDKs, like raw AES ones, name the key only by namespace and name,
// so after the key file is replaced by another private key under the
// same name the old outputs must not be called current: the plan
// unwraps with the key the file holds now. A public-key-only group still
// encrypts; the private key decrypts what each wrote.
func TestE2ERawRSAPrivateKeyRotated(t *testing.T) {
	dir, files := setup(t)
	// writeKey writes k to rsa.pem as a PKCS#8 PEM, a new key when nil.
	writeKey := func(k *rsa.PrivateKey) *rsa.PrivateKey {
		t.Helper()
		if k == nil {
			var err error
			if k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				t.Fatal(err)
			}
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "rsa.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		return k
	}
	first := writeKey(nil)
	const group = "{provider: raw-rsa, keyFile: ./rsa.pem, namespace: encjob, name: rsa, padding: oaep-sha256}"
	encryptCurrent(t, dir, group)
	rsaKey := []string{"-w", "provider=raw-rsa", "key-file=rsa.pem", "namespace=encjob", "name=rsa", "padding=oaep-sha256"}
	decryptAll := func(out string) {
		t.Helper()
		wantCode(t, encjob(t, dir, nil, args("decrypt", "-r", "-i", "enc", "-o", out, rsaKey, "-S")...), 0)
		for name, want := range files {
			if got, err := os.ReadFile(filepath.Join(dir, out, name+".encrypted.decrypted")); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s in %s: %v", name, out, err)
			}
		}
	}
	os.Mkdir(filepath.Join(dir, "dec1"), 0o755)
	decryptAll("dec1")

	writeKey(nil)
	r := encjob(t, dir, nil, "plan", "-f", "never.yaml")
	if out := r.stdout + r.stderr; !strings.Contains(out, "0 unchanged") || !strings.Contains(out, "3 conflicts") || !strings.Contains(out, "key in the key file now") {
		t.Fatalf("after the rotation, overwrite: never: %s", out)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "ifnewer.yaml"), 0)
	os.Mkdir(filepath.Join(dir, "dec2"), 0o755)
	decryptAll("dec2")

	// -w with the private key encrypts too; a public-key-only file
	// encrypts, and its private half decrypts the result.
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "c-priv.ct", rsaKey, "-S")...), 0)
	der, err := x509.MarshalPKIXPublicKey(&first.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	pubKey := []string{"-w", "provider=raw-rsa", "key-file=pub.pem", "namespace=encjob", "name=rsa", "padding=oaep-sha256"}
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "c.ct", pubKey, "-S")...), 0)
	// c-priv.ct is under the second key; c.ct under the first.
	for _, c := range []struct {
		ct  string
		key *rsa.PrivateKey
	}{{"c-priv.ct", nil}, {"c.ct", first}} {
		if c.key != nil {
			writeKey(c.key)
		}
		wantCode(t, encjob(t, dir, nil, args("decrypt", "-i", c.ct, "-o", c.ct+".back", rsaKey, "-S")...), 0)
		if got, err := os.ReadFile(filepath.Join(dir, c.ct+".back")); err != nil || !bytes.Equal(got, files["b/c.bin"]) {
			t.Fatalf("%s: decrypted with the private key: %v", c.ct, err)
		}
	}
}

// rotationJob is the encrypt job of the rotation tests: in/ to enc/ under
// the one key group dev (a YAML flow mapping).
func rotationJob(overwrite, group string) string {
	return `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: rot}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./enc, overwrite: ` + overwrite + `}
  keyGroups:
    dev: ` + group + `
  encrypt: {keyGroup: dev}
`
}

// encryptCurrent writes never.yaml and ifnewer.yaml (rotationJob under
// group), applies never.yaml and checks that a plan then keeps the three
// outputs of setup's tree as current.
func encryptCurrent(t *testing.T, dir, group string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "never.yaml"), []byte(rotationJob("never", group)), 0o644)
	writeFile(t, filepath.Join(dir, "ifnewer.yaml"), []byte(rotationJob("if-newer", group)), 0o644)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "never.yaml"), 0)
	r := encjob(t, dir, nil, "plan", "-f", "never.yaml")
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr+r.stdout, "3 unchanged") {
		t.Fatalf("before the rotation: %s%s", r.stdout, r.stderr)
	}
}
