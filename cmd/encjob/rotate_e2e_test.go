package main

import (
	"bytes"
	"crypto/rand"
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
	job := func(overwrite string) string {
		return `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: rot}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./enc, overwrite: ` + overwrite + `}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}
  encrypt: {keyGroup: dev}
`
	}
	writeFile(t, filepath.Join(dir, "never.yaml"), []byte(job("never")), 0o644)
	writeFile(t, filepath.Join(dir, "ifnewer.yaml"), []byte(job("if-newer")), 0o644)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "never.yaml"), 0)
	r := encjob(t, dir, nil, "plan", "-f", "never.yaml")
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr+r.stdout, "3 unchanged") {
		t.Fatalf("before the rotation: %s%s", r.stdout, r.stderr)
	}
	rotate("key")
	r = encjob(t, dir, nil, "plan", "-f", "never.yaml")
	if out := r.stdout + r.stderr; !strings.Contains(out, "0 unchanged") || !strings.Contains(out, "3 conflicts") || !strings.Contains(out, "key file's bytes") {
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
