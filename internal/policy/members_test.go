package policy_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/encjob/encjob/internal/policy"
)

const membersPolicy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: members}
spec:
  sources: [{path: "${TREE}"}]
  rules:
    - match: ["**"]
      keyGroup: both
  keyGroups:
    both:
      members:
        - {provider: raw-aes, keyFile: "${PROD}", namespace: encjob, name: prod}
        - {provider: aws-kms, keys: ["${KMSKEY}"]}
`

// TestCheckMembersGroup: an item is under a group with members when any
// member holds one of its EDKs; checking needs no KMS call.
func TestCheckMembersGroup(t *testing.T) {
	e := newKMS(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	prodPath, prod := aesKey(t, dir, "prod")
	_, old := aesKey(t, dir, "old")
	pt := []byte("secret value\n")
	write(t, tree, "aes.bin", seal(t, prod, 0x0578, pt))
	write(t, tree, "kms.bin", seal(t, e.keyring(t, eastARN), 0x0578, pt))
	write(t, tree, "old.bin", seal(t, old, 0x0578, pt))
	e.emu.ResetCalls()
	env := map[string]string{"TREE": tree, "PROD": prodPath, "KMSKEY": eastARN}
	cfg := e.config()
	cfg.Keys = nil
	ctx := context.Background()

	rep, err := policy.Check(ctx, loadPolicy(t, membersPolicy, env), policy.Options{KMS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.total(); n != 0 {
		t.Fatalf("check made %d KMS calls, want 0", n)
	}
	for name, want := range map[string][]policy.Code{"aes.bin": nil, "kms.bin": nil, "old.bin": {policy.CodeKeyGroup}} {
		if it := findItem(t, rep, name); it.Compliant != (want == nil) || !slices.Equal(it.Codes, want) {
			t.Errorf("%s: compliant %v codes %v, want %v", name, it.Compliant, it.Codes, want)
		}
	}

	// A member naming its key by alias cannot be checked offline; the
	// note names the member.
	env["KMSKEY"] = "alias/east"
	rep, err = policy.Check(ctx, loadPolicy(t, membersPolicy, env), policy.Options{KMS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if it := findItem(t, rep, "aes.bin"); !slices.Equal(it.Codes, []policy.Code{policy.CodeKeyGroupUnknown}) {
		t.Errorf("aes.bin with an alias member: %v %q", it.Codes, it.Violations)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], `"both.members[1]"`) {
		t.Errorf("notes %q do not name the member", rep.Notes)
	}
}
