package policy_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/policy"
)

const reqecPolicy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: reqec}
spec:
  sources: [{path: "${TREE}"}]
  rules:
    - match: ["**"]
      keyGroup: k
      requireContext: {tenant: acme, env: prod}
      requiredContextKeys: [tenant]
  keyGroups:
    k: {provider: raw-aes, keyFile: "${KEY}", namespace: encjob, name: k}
`

// TestCheckRequiredContextKeys: a header that keeps a requiredContextKeys
// pair out is compliant (only decryption can prove its value), one that
// stores it is context-stored; reconciliation re-encrypts the latter and
// encrypts plaintext so that the pair is authenticated, not stored.
func TestCheckRequiredContextKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	keyPath, kr := aesKey(t, dir, "k")
	rcmm, err := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(kr), []string{"tenant"})
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte("p"), 5000)
	omitted, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: rcmm, Context: crypto.EncryptionContext{"tenant": "acme", "env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	write(t, tree, "omitted.bin", omitted)
	write(t, tree, "stored.bin", seal(t, kr, 0x0578, pt, "tenant=acme", "env=prod"))
	write(t, tree, "plain.txt", pt)
	pol := loadPolicy(t, reqecPolicy, map[string]string{"TREE": tree, "KEY": keyPath})
	rep, err := policy.Check(ctx, pol, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]policy.Code{"omitted.bin": nil, "stored.bin": {policy.CodeContextStored}, "plain.txt": {policy.CodeNotEncrypted}}
	for _, it := range rep.Items {
		name := filepath.Base(it.Input)
		if !slices.Equal(it.Codes, want[name]) {
			t.Errorf("%s: codes %v (%v), want %v", name, it.Codes, it.Violations, want[name])
		}
	}
	rec, err := policy.Plan(ctx, pol, policy.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := rec.Apply(ctx, executor.Options{}); err != nil || !sum.OK() {
		t.Fatalf("apply: %v %+v", err, sum.Failed)
	}
	rep, err = policy.Check(ctx, pol, policy.Options{})
	if err != nil || rep.HasViolations() || rep.Totals.Compliant != 3 {
		t.Fatalf("after apply: %v %+v %+v", err, rep.Totals, rep.Failing())
	}
	for _, name := range []string{"omitted.bin", "stored.bin", "plain.txt"} {
		msg, err := os.ReadFile(filepath.Join(tree, name))
		if err != nil {
			t.Fatal(err)
		}
		got, h, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: rcmm, ReproducedContext: crypto.EncryptionContext{"tenant": "acme"}})
		if err != nil || !bytes.Equal(got, pt) || h.Context["env"] != "prod" {
			t.Fatalf("%s after apply: %v", name, err)
		}
		if _, stored := h.Context["tenant"]; stored {
			t.Errorf("%s stores tenant after apply", name)
		}
	}
}
