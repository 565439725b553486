package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EMaxLengthBoundsFramesNotMessages (issue 17.2): --max-length and
// decrypt.maxBodyLength limit the frame length of a framed message and the
// content length of a non-framed one, as aws-encryption-cli does; a 1 MB
// message in 1 KiB frames decrypts under --max-length 1024.
func TestE2EMaxLengthBoundsFramesNotMessages(t *testing.T) {
	dir, _ := setup(t)
	big := make([]byte, 1<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	encrypt := func(name, frame string) {
		t.Helper()
		wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "big.bin", "-o", name, rawKey, "-S", "--frame-length", frame)...), 0)
	}
	encrypt("framed.enc", "1024")
	encrypt("small.enc", "0") // non-framed, content length 1 MiB
	cases := []struct {
		name, in, limit string
		code            int
		want            string
	}{
		{"framed under its frame length", "framed.enc", "1024", 0, ""},
		{"framed under a limit below its frame length", "framed.enc", "1023", 1, "frame length 1024 exceeds the maximum body length of 1023"},
		{"non-framed at its content length", "small.enc", "1048576", 0, ""},
		{"non-framed over the limit", "small.enc", "1048575", 1, "non-framed content length 1048576 exceeds the maximum body length of 1048575"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []string{"decrypt", "reencrypt"} {
				out := op + "-" + strings.ReplaceAll(tc.name, " ", "_")
				a := args(op, "-i", tc.in, "-o", out, rawKey, "-S", "--max-length", tc.limit)
				if op == "reencrypt" {
					a = args(a, "--source-wrapping-keys", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=test")
				}
				r := encjob(t, dir, nil, a...)
				wantCode(t, r, tc.code)
				if tc.code != 0 {
					if !strings.Contains(r.stderr, tc.want) {
						t.Fatalf("%s: stderr does not say %q:\n%s", op, tc.want, r.stderr)
					}
					if _, err := os.Stat(filepath.Join(dir, out)); !os.IsNotExist(err) {
						t.Fatalf("%s: refused message left output %s (%v)", op, out, err)
					}
					continue
				}
				if op == "decrypt" {
					got, err := os.ReadFile(filepath.Join(dir, out))
					if err != nil || !bytes.Equal(got, big) {
						t.Fatalf("decrypted output differs (%v)", err)
					}
				}
			}
		})
	}
	// The spec field means the same.
	os.Mkdir(filepath.Join(dir, "src"), 0o755)
	if err := os.Rename(filepath.Join(dir, "framed.enc"), filepath.Join(dir, "src", "framed.enc")); err != nil {
		t.Fatal(err)
	}
	for limit, code := range map[string]int{"1KiB": 0, "1023": 1} {
		job := "apiVersion: encjob.dev/v1\nkind: EncryptionJob\nmetadata: {name: maxlen}\nspec:\n  operation: decrypt\n" +
			"  sources: [{path: ./src}]\n  output: {path: ./out-" + limit + "}\n" +
			"  keyGroups:\n    k: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}\n" +
			"  decrypt: {keyGroup: k, maxBodyLength: " + limit + "}\n"
		if err := os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644); err != nil {
			t.Fatal(err)
		}
		r := encjob(t, dir, nil, "apply", "-f", "job.yaml", "--auto-approve")
		wantCode(t, r, code)
		if code != 0 && !strings.Contains(r.stderr+r.stdout, "frame length 1024 exceeds the maximum body length of 1023") {
			t.Fatalf("spec maxBodyLength 1023: output does not name the frame length:\n%s\n%s", r.stdout, r.stderr)
		}
	}
}
