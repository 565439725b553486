package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
)

func headerOf(t *testing.T, path string) *crypto.Header {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestE2ERequiredContext (issue 15.1) through the binary: encrypt with
// --required-context-keys keeps the pairs out of the header; decrypt and
// reencrypt need --reproduced-encryption-context, and a wrong, missing or
// contradicting value fails the item with the typed error naming the key;
// -c requirements see the reproduced pairs; reencrypt keeps the pairs out
// unless --store-required-context.
func TestE2ERequiredContext(t *testing.T) {
	dir, _ := setup(t)
	plain := make([]byte, 10000)
	rand.Read(plain)
	os.WriteFile(filepath.Join(dir, "p.bin"), plain, 0o644)
	const mismatch = "does not match the required or reproduced context"
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "p.bin", "-o", "p.enc", rawKey, "-S", "--frame-length", "1000",
		"-c", "tenant=acme", "Ünïcode=東京", "purpose=x", "--required-context-keys", "tenant,Ünïcode")...), 0)
	h := headerOf(t, filepath.Join(dir, "p.enc"))
	if _, ok := h.Context["tenant"]; ok || h.Context["purpose"] != "x" || len(h.Context) != 2 { // + aws-crypto-public-key
		t.Fatalf("stored context %v", h.Context)
	}
	good := []string{"--reproduced-encryption-context", "tenant=acme", "Ünïcode=東京"}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"reproduced", good, 0, ""},
		{"reproduced with the stored pair and a requirement", args(good, "--reproduced-encryption-context", "purpose=x", "-c", "tenant=acme"), 0, ""},
		{"missing", nil, 1, "a different encryption context"}, // raw AES binds the whole context to its EDKs
		{"one missing", []string{"--reproduced-encryption-context", "tenant=acme"}, 1, mismatch},
		{"wrong value", []string{"--reproduced-encryption-context", "tenant=evil", "Ünïcode=東京"}, 1, `"tenant"`},
		{"stored pair differs", args(good, "--reproduced-encryption-context", "purpose=y"), 1, `"purpose"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := "out-" + strings.ReplaceAll(tc.name, " ", "_")
			r := encjob(t, dir, nil, args("decrypt", "-i", "p.enc", "-o", out, rawKey, "-S", tc.args)...)
			wantCode(t, r, tc.code)
			if tc.code != 0 {
				if !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("stderr lacks %q:\n%s", tc.want, r.stderr)
				}
				if _, err := os.Stat(filepath.Join(dir, out)); !os.IsNotExist(err) {
					t.Fatal("a refused message left output")
				}
				return
			}
			if got, _ := os.ReadFile(filepath.Join(dir, out)); !bytes.Equal(got, plain) {
				t.Fatal("plaintext differs")
			}
		})
	}
	// reencrypt: the new message keeps the pairs out, or stores them.
	for _, store := range []bool{false, true} {
		out := "re.enc"
		a := args("reencrypt", "-i", "p.enc", "-o", out, rawKey, "--source-wrapping-keys", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=test", good)
		if store {
			out = "re-stored.enc"
			a = args("reencrypt", "-i", "p.enc", "-o", out, rawKey, "--source-wrapping-keys", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=test", good, "--store-required-context")
		}
		wantCode(t, encjob(t, dir, nil, a...), 0)
		nh := headerOf(t, filepath.Join(dir, out))
		if _, stored := nh.Context["tenant"]; stored != store || nh.Context["purpose"] != "x" {
			t.Fatalf("store=%v: new header context %v", store, nh.Context)
		}
		var again []string
		if !store {
			again = good
		}
		wantCode(t, encjob(t, dir, nil, args("decrypt", "-i", out, "-o", out+".dec", rawKey, "-S", again)...), 0)
		if got, _ := os.ReadFile(filepath.Join(dir, out+".dec")); !bytes.Equal(got, plain) {
			t.Fatal("re-encrypted plaintext differs")
		}
	}
	// A missing required key on encrypt is a usage (spec) error.
	r := encjob(t, dir, nil, args("encrypt", "-i", "p.bin", "-o", "x.enc", rawKey, "-S", "-c", "a=b", "--required-context-keys", "tenant")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "--required-context-keys") || !strings.Contains(r.stderr, "tenant") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

// TestE2ERequiredContextPlan: the planner's skip and unchanged decisions
// read messages whose header lacks the required pairs through the
// reproduced context: requireContext is not a skip, and an in-place
// re-encryption is unchanged on its second run (the pairs stay out).
func TestE2ERequiredContextPlan(t *testing.T) {
	dir, _ := setup(t)
	key2 := make([]byte, 32)
	rand.Read(key2)
	os.WriteFile(filepath.Join(dir, "key2"), key2, 0o600)
	enc := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: reqec}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./enc}
  keyGroups:
    k1: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: k1}
  encrypt: {keyGroup: k1, context: {tenant: acme, purpose: x}, requiredContextKeys: [tenant]}
`
	os.WriteFile(filepath.Join(dir, "enc.yaml"), []byte(enc), 0o644)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "enc.yaml", "--auto-approve"), 0)
	r := encjob(t, dir, nil, "plan", "-f", "enc.yaml", "--detailed-exitcode")
	wantCode(t, r, 0)
	rot := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: rotate}
spec:
  operation: reencrypt
  sources: [{path: ./enc}]
  output: {inPlace: true}
  keyGroups:
    k1: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: k1}
    k2: {provider: raw-aes, keyFile: ./key2, namespace: encjob, name: k2}
    both:
      members:
        - {provider: raw-aes, keyFile: ./key, namespace: encjob, name: k1}
        - {provider: raw-aes, keyFile: ./key2, namespace: encjob, name: k2}
  decrypt: {keyGroup: both, requireContext: {tenant: acme}, reproducedContext: {tenant: acme}}
  encrypt: {keyGroup: k2}
`
	os.WriteFile(filepath.Join(dir, "rot.yaml"), []byte(rot), 0o644)
	r = encjob(t, dir, nil, "plan", "-f", "rot.yaml", "--detailed-exitcode")
	wantCode(t, r, 2)
	if !strings.Contains(r.stdout, "3 to re-encrypt") {
		t.Fatalf("first plan: %s", r.stdout)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "rot.yaml", "--auto-approve"), 0)
	r = encjob(t, dir, nil, "plan", "-f", "rot.yaml", "--detailed-exitcode")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "3 unchanged") {
		t.Fatalf("second plan: %s", r.stdout)
	}
	if h := headerOf(t, filepath.Join(dir, "enc", "b", "c.bin.encrypted")); hasContextKey(h, "tenant") || h.Context["purpose"] != "x" {
		t.Fatalf("re-encrypted header stores %v", h.Context)
	}
	// Asked to store them now: every item changes.
	os.WriteFile(filepath.Join(dir, "rot.yaml"), []byte(strings.Replace(rot, "encrypt: {keyGroup: k2}", "encrypt: {keyGroup: k2}\n  reencrypt: {storeRequiredContext: true}", 1)), 0o644)
	r = encjob(t, dir, nil, "plan", "-f", "rot.yaml", "--detailed-exitcode")
	wantCode(t, r, 2)
	// Without the reproduced context, requireContext skips them (the
	// header alone does not carry tenant).
	os.WriteFile(filepath.Join(dir, "rot.yaml"), []byte(strings.Replace(rot, ", reproducedContext: {tenant: acme}", "", 1)), 0o644)
	r = encjob(t, dir, nil, "plan", "-f", "rot.yaml")
	if !strings.Contains(r.stdout+r.stderr, "Missing encryption context") && !strings.Contains(r.stdout+r.stderr, "skip") {
		t.Fatalf("plan without the reproduced context: %s %s", r.stdout, r.stderr)
	}
}

func hasContextKey(h *crypto.Header, k string) bool { _, ok := h.Context[k]; return ok }
