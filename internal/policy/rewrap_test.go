package policy_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/policy"
	"github.com/encjob/encjob/planner"
)

const rewrapPolicy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: rotate}
spec:
  sources: [{path: "${TREE}"}]
  rules:
    - match: ["fast/**"]
      keyGroup: aesnew
      algorithm: AES_256_GCM_HKDF_SHA512_COMMIT_KEY
      reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}
    - match: ["guarded/**"]
      keyGroup: aesnew
      algorithm: AES_256_GCM_HKDF_SHA512_COMMIT_KEY
      reencrypt: {mode: rewrap}
    - match: ["**"]
      keyGroup: aesnew
  keyGroups:
    aesold: {provider: raw-aes, keyFile: "${AESOLD}", namespace: encjob, name: aesold}
    aesnew: {provider: raw-aes, keyFile: "${AESNEW}", namespace: encjob, name: aesnew}
`

// TestPolicyRuleRewrap: a rule with reencrypt.mode rewrap moves messages
// that violate it only by key group with a rewrap (^, message id and body
// kept), but one that also violates the suite with a full re-encryption
// (a rewrap keeps suites); without allowHeaderNonceReuse the v2 item is
// re-encrypted in full by the planner's guard; a rule without the field
// re-encrypts. After apply everything complies and a second plan is empty
// (idempotence from the headers alone).
func TestPolicyRuleRewrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	oldPath, aesOld := aesKey(t, dir, "aesold")
	newPath, aesNew := aesKey(t, dir, "aesnew")
	pt := []byte(strings.Repeat("p", 9000))
	msgs := map[string][]byte{
		"fast/a.bin":    seal(t, aesOld, 0x0478, pt, "tenant=acme"), // ^ key group only
		"fast/b.bin":    seal(t, aesOld, 0x0578, pt),                // ~ suite too
		"guarded/c.bin": seal(t, aesOld, 0x0478, pt),                // ~ v2 without the opt-in
		"other/d.bin":   seal(t, aesOld, 0x0578, pt),                // ~ no reencrypt field
	}
	for name, m := range msgs {
		write(t, tree, name, m)
	}
	pol := loadPolicy(t, rewrapPolicy, map[string]string{"TREE": tree, "AESOLD": oldPath, "AESNEW": newPath})
	rec, err := policy.Plan(ctx, pol, policy.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]planner.Action{"fast/a.bin": planner.Rewrap, "fast/b.bin": planner.Reencrypt,
		"guarded/c.bin": planner.Reencrypt, "other/d.bin": planner.Reencrypt}
	for _, it := range rec.Items() {
		rel, _ := filepath.Rel(tree, it.Input)
		if w, ok := want[filepath.ToSlash(rel)]; ok && it.Action != w {
			t.Errorf("%s: %s (%s), want %s", rel, it.Action, it.Reason, w)
		}
		if rel == "guarded/c.bin" && !strings.Contains(it.Reason, "header nonce") {
			t.Errorf("guarded item: reason %q", it.Reason)
		}
	}
	var names []string
	for _, p := range rec.Parts {
		names = append(names, p.Name())
	}
	if got := strings.Join(names, " "); got != "rule-0/reencrypt-from-aesold rule-0/rewrap-from-aesold rule-1/rewrap-from-aesold rule-2/reencrypt-from-aesold" {
		t.Errorf("parts %s", got)
	}
	sum, err := rec.Apply(ctx, executor.Options{})
	if err != nil || !sum.OK() || sum.Done[planner.Rewrap] != 1 || sum.Done[planner.Reencrypt] != 3 {
		t.Fatalf("apply: %v %+v %v", err, sum.Done, sum.Failed)
	}
	for name, old := range msgs {
		got, h := open(t, aesNew, filepath.Join(tree, name))
		if !bytes.Equal(got, pt) || h.Suite.ID != 0x0478 && name != "other/d.bin" {
			t.Fatalf("%s: content or suite %s", name, h.Suite)
		}
		oh, err := crypto.ParseHeader(bytes.NewReader(old))
		if err != nil {
			t.Fatal(err)
		}
		if kept := bytes.Equal(h.MessageID, oh.MessageID); kept != (name == "fast/a.bin") {
			t.Fatalf("%s: message id kept %v", name, kept)
		}
	}
	rep, err := policy.Check(ctx, pol, policy.Options{})
	if err != nil || rep.HasViolations() {
		t.Fatalf("after apply: %v %+v", err, rep.Failing())
	}
	rec2, err := policy.Plan(ctx, pol, policy.PlanOptions{})
	if err != nil || rec2.HasChanges() {
		t.Fatalf("second plan: %v %v", err, planner.Count(rec2.Items()))
	}
}
