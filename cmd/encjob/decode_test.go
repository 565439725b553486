package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EDecodeOnEncrypt: --decode on encrypt encrypts what the base64
// text decodes to (wrapped lines included), so decrypting gives back the
// decoded bytes, as with aws-encryption-cli; --verify checks the decoded
// plaintext; text that is not base64 fails the item and leaves no output.
func TestE2EDecodeOnEncrypt(t *testing.T) {
	dir, _ := setup(t)
	data := make([]byte, 70000)
	rand.Read(data)
	text := base64.StdEncoding.EncodeToString(data)
	var wrapped strings.Builder
	for i := 0; i < len(text); i += 76 {
		wrapped.WriteString(text[i:min(i+76, len(text))] + "\n")
	}
	os.WriteFile(filepath.Join(dir, "in.b64"), []byte(wrapped.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.b64"), []byte("this is not base64!\n"), 0o644)
	// The same through a job: sources[].encoding base64, with
	// output.verify (the digest compared is the decoded plaintext's).
	job := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: decode}
spec:
  operation: encrypt
  sources: [{path: in.b64, encoding: base64}]
  output: {path: enc, verify: true}
  keyGroups:
    k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  encrypt: {keyGroup: k}
`
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644)
	for _, enc := range [][]string{
		{"encrypt", "-i", "in.b64", "-o", "enc", rawKey[0], rawKey[1], rawKey[2], rawKey[3], rawKey[4], "--decode", "-S"},
		{"apply", "-f", "job.yaml"},
	} {
		os.RemoveAll(filepath.Join(dir, "enc"))
		os.RemoveAll(filepath.Join(dir, "dec"))
		os.Mkdir(filepath.Join(dir, "enc"), 0o755)
		os.Mkdir(filepath.Join(dir, "dec"), 0o755)
		wantCode(t, encjob(t, dir, nil, enc...), 0)
		wantCode(t, encjob(t, dir, nil, args("decrypt", "-i", "enc/in.b64.encrypted", "-o", "dec", rawKey, "-S")...), 0)
		got, err := os.ReadFile(filepath.Join(dir, "dec", "in.b64.encrypted.decrypted"))
		if err != nil {
			entries, _ := os.ReadDir(filepath.Join(dir, "dec"))
			t.Fatalf("%v (dec has %v)", err, entries)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%v: decrypted %d bytes, want the %d decoded bytes (not the %d-byte text)", enc[0], len(got), len(data), wrapped.Len())
		}
	}
	r := encjob(t, dir, nil, args("encrypt", "-i", "bad.b64", "-o", "enc", rawKey, "--decode", "-S")...)
	wantCode(t, r, 1)
	if _, err := os.Stat(filepath.Join(dir, "enc", "bad.b64.encrypted")); err == nil {
		t.Fatal("invalid base64 left an output")
	}
	if !strings.Contains(r.stderr, "bad.b64") {
		t.Errorf("the error does not name the input: %s", r.stderr)
	}
}
