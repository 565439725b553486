package executor_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/planner"
)

// TestKMSBlobs: items with format: kms are encrypted by KMS directly,
// re-encrypted with ReEncrypt (no Decrypt or Encrypt call: the plaintext
// never leaves KMS), decrypted back; over 4096 bytes is a clear error.
func TestKMSBlobs(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	files := writeTree(t, in, map[string]int{"a": 1, "b": 4096, "c": 100})
	os.WriteFile(filepath.Join(in, "too-big"), make([]byte, 4097), 0o644)
	mk := func(op, src, dst, extra string) string {
		y := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: blobs}
spec:
  operation: ` + op + `
  sources: [{path: "` + src + `", format: kms, encoding: ` + map[bool]string{true: "binary", false: "base64"}[op == "encrypt"] + `}]
  output: ` + dst + `
  keyGroups:
    east: {provider: aws-kms, keys: ["` + k.east + `"]}
    new: {provider: aws-kms, keys: ["` + k.new + `"]}
` + extra
		return y
	}
	enc := filepath.Join(dir, "enc")
	job := loadJob(t, mk("encrypt", in, `{path: "`+enc+`", encoding: base64}`, "  encrypt: {keyGroup: east, context: {tenant: acme}}\n"), nil)
	r := runWith(t, job, k.options())
	if r.sum.Done[planner.Encrypt] != 3 || len(r.sum.Failed) != 1 || !errors.Is(r.sum.Failed[0].Err, kmsblob.ErrPlaintextTooLarge) {
		t.Fatalf("encrypt: %+v %v", r.sum.Done, r.sum.Failed)
	}
	if _, err := os.Stat(filepath.Join(enc, "too-big.encrypted")); err == nil {
		t.Fatal("output written for the oversized item")
	}
	k.emu.ResetCalls()
	job = loadJob(t, mk("reencrypt", enc, `{inPlace: true}`, "  decrypt: {keyGroup: east, requireContext: {tenant: acme}}\n  encrypt: {keyGroup: new}\n  reencrypt: {add: {moved: \"1\"}}\n"), nil)
	job.Output.Encoding = "base64"
	r = runWith(t, job, k.options())
	if !r.sum.OK() || r.sum.Done[planner.Reencrypt] != 3 {
		t.Fatalf("reencrypt: %+v %v", r.sum.Done, r.sum.Failed)
	}
	if c := k.emu.Calls(); c["ReEncrypt"] != 3 || c["Decrypt"] != 0 || c["Encrypt"] != 0 {
		t.Fatalf("KMS calls %v: want exactly 3 ReEncrypt and no Decrypt/Encrypt", c)
	}
	// reencrypt.require rewrap: a blob has no data key to keep, so each
	// is an error item saying so, not a silent ReEncrypt.
	k.emu.ResetCalls()
	job = loadJob(t, mk("reencrypt", enc, `{path: "`+filepath.Join(dir, "rw")+`", encoding: base64}`, "  decrypt: {keyGroup: new}\n  encrypt: {keyGroup: east}\n  reencrypt: {require: rewrap}\n"), nil)
	r = runWith(t, job, k.options())
	if len(r.sum.Failed) != 3 || r.plan.Counts()[planner.Error] != 3 || !strings.Contains(r.sum.Failed[0].Err.Error(), "KMS ciphertext blob (format kms) has no data key to keep") {
		t.Fatalf("require rewrap: %+v %v", r.plan.Counts(), r.sum.Failed)
	}
	if c := k.emu.Calls(); c["ReEncrypt"] != 0 {
		t.Fatalf("require rewrap made KMS calls %v", c)
	}
	if _, err := os.Stat(filepath.Join(dir, "rw")); err == nil {
		t.Fatal("require rewrap wrote outputs")
	}
	dec := filepath.Join(dir, "dec")
	job = loadJob(t, mk("decrypt", enc, `{path: "`+dec+`"}`, "  decrypt: {keyGroup: new, requireContext: {tenant: acme, moved: \"1\"}}\n"), nil)
	r = runWith(t, job, k.options())
	if !r.sum.OK() || r.sum.Done[planner.Decrypt] != 3 {
		t.Fatalf("decrypt: %+v %v", r.sum.Done, r.sum.Failed)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dec, name))
		if err != nil {
			got, err = os.ReadFile(filepath.Join(dec, name+".encrypted"))
		}
		if err != nil {
			entries, _ := os.ReadDir(dec)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("%s: %v (have %s)", name, err, strings.Join(names, " "))
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs", name)
		}
	}
}
