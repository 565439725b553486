package policy_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/policy"
	"github.com/encjob/encjob/planner"
)

const applyPolicy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: migrate}
spec:
  sources: [{path: "${TREE}"}]
  rules:
    - match: ["**/*.md"]
      exempt: true
    - match: ["kms/**"]
      keyGroup: kmsnew
      requireContext: {env: prod}
    - match: ["**"]
      keyGroup: aesnew
      requireCommitting: true
  keyGroups:
    kmsold: {provider: aws-kms, keys: ["${EAST}"]}
    kmsnew: {provider: aws-kms, keys: ["${WEST}"]}
    aesold: {provider: raw-aes, keyFile: "${AESOLD}", namespace: encjob, name: aesold}
    aesnew: {provider: raw-aes, keyFile: "${AESNEW}", namespace: encjob, name: aesnew}
`

// TestApplyThenApplyAgain reconciles a mixed tree, checks the result, and
// shows that a second apply changes nothing and calls KMS zero times.
func TestApplyThenApplyAgain(t *testing.T) {
	e := newKMS(t)
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	oldPath, aesOld := aesKey(t, dir, "aesold")
	newPath, aesNew := aesKey(t, dir, "aesnew")
	east, west := e.keyring(t, eastARN), e.keyring(t, westARN)
	plain := map[string][]byte{}
	put := func(name string, pt, data []byte) {
		plain[name] = pt
		write(t, tree, name, data)
	}
	pt := func(s string) []byte { return []byte(strings.Repeat(s, 3000)) }              // > one frame
	put("kms/a.bin", pt("a"), seal(t, east, 0x0578, pt("a"), "env=dev", "app=billing")) // ~ from kmsold, env fixed
	put("kms/b.bin", pt("b"), seal(t, west, 0x0578, pt("b"), "env=prod"))               // = compliant
	put("kms/c.txt", pt("c"), pt("c"))                                                  // + encrypt under kmsnew
	put("data/x.bin", pt("x"), seal(t, aesOld, 0x0478, pt("x"), "tenant=acme"))         // ~ from aesold
	put("data/y.txt", pt("y"), pt("y"))                                                 // + encrypt under aesnew
	put("data/z.bin", pt("z"), seal(t, aesNew, 0x0578, pt("z")))                        // = compliant
	put("README.md", pt("r"), pt("r"))                                                  // exempt
	env := map[string]string{"TREE": tree, "EAST": eastARN, "WEST": westARN, "AESOLD": oldPath, "AESNEW": newPath}
	pol := loadPolicy(t, applyPolicy, env)
	cfg := e.config()
	cfg.Keys = nil
	o := policy.PlanOptions{Options: policy.Options{KMS: cfg}}
	e.emu.ResetCalls()

	rec, err := policy.Plan(ctx, pol, o)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.total(); n != 0 {
		t.Fatalf("planning made %d KMS calls, want 0", n)
	}
	wantActions := map[string]planner.Action{
		"kms/a.bin": planner.Reencrypt, "kms/b.bin": planner.Unchanged, "kms/c.txt": planner.Encrypt,
		"data/x.bin": planner.Reencrypt, "data/y.txt": planner.Encrypt, "data/z.bin": planner.Unchanged,
		"README.md": planner.Skip,
	}
	items := rec.Items()
	if len(items) != len(wantActions) {
		t.Fatalf("%d items, want %d: %+v", len(items), len(wantActions), items)
	}
	for _, it := range items {
		rel, _ := filepath.Rel(tree, it.Input)
		if want := wantActions[filepath.ToSlash(rel)]; it.Action != want {
			t.Errorf("%s: %s (%s), want %s", rel, it.Action, it.Reason, want)
		}
	}
	var names []string
	for _, p := range rec.Parts {
		names = append(names, p.Name())
	}
	if want := []string{"rule-1/encrypt", "rule-1/reencrypt-from-kmsold", "rule-2/encrypt", "rule-2/reencrypt-from-aesold"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("parts %v, want %v", names, want)
	}

	// The reconciliation saved and read back is what is applied; a part
	// whose job is edited (with a matching digest) is refused on reading.
	var buf bytes.Buffer
	if err := rec.Write(&buf); err != nil {
		t.Fatal(err)
	}
	edited, err := policy.ReadPlan(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	pj := edited.Parts[0].Plan
	pj.Job.Encrypt.Context = map[string]string{"owner": "mallory"}
	pj.SpecDigest = pj.Job.Digest()
	var ebuf bytes.Buffer
	if err := edited.Write(&ebuf); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.ReadPlan(&ebuf); err == nil || !strings.Contains(err.Error(), "not the one the policy implies") {
		t.Fatalf("edited part job: %v", err)
	}
	saved, err := policy.ReadPlan(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := saved.Prepare(ctx, planner.Options{KMS: cfg}); err != nil {
		t.Fatal(err)
	}
	sum, err := saved.Apply(ctx, executor.Options{})
	if err != nil || !sum.OK() {
		t.Fatalf("apply: %v %+v", err, sum.Failed)
	}
	if sum.Done[planner.Reencrypt] != 2 || sum.Done[planner.Encrypt] != 2 || sum.Done[planner.Unchanged] != 2 || sum.Done[planner.Skip] != 1 {
		t.Errorf("done %v", sum.Done)
	}

	// Every item now complies, with its plaintext and context intact.
	rep, err := policy.Check(ctx, pol, o.Options)
	if err != nil {
		t.Fatal(err)
	}
	if rep.HasViolations() || rep.Totals.Compliant != 6 {
		t.Fatalf("after apply: %+v %+v", rep.Totals, rep.Failing())
	}
	for _, c := range []struct {
		name string
		ctx  map[string]string
	}{
		{"kms/a.bin", map[string]string{"env": "prod", "app": "billing"}},
		{"kms/b.bin", map[string]string{"env": "prod"}},
		{"kms/c.txt", map[string]string{"env": "prod"}},
	} {
		got, h := open(t, west, filepath.Join(tree, c.name))
		if !bytes.Equal(got, plain[c.name]) {
			t.Errorf("%s: plaintext changed", c.name)
		}
		for k, v := range c.ctx {
			if h.Context[k] != v {
				t.Errorf("%s: context %q = %q, want %q", c.name, k, h.Context[k], v)
			}
		}
	}
	for _, name := range []string{"data/x.bin", "data/y.txt", "data/z.bin"} {
		got, h := open(t, aesNew, filepath.Join(tree, name))
		if !bytes.Equal(got, plain[name]) {
			t.Errorf("%s: plaintext changed", name)
		}
		if name == "data/x.bin" && h.Context["tenant"] != "acme" {
			t.Errorf("%s: context not kept: %v", name, h.Context)
		}
		if h.Suite.ID != 0x0578 {
			t.Errorf("%s: suite %s", name, h.Suite)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(tree, "README.md")); !bytes.Equal(b, plain["README.md"]) {
		t.Error("README.md (exempt) changed")
	}

	// Second apply: nothing to do, not a single KMS call.
	e.emu.ResetCalls()
	rec2, err := policy.Plan(ctx, pol, o)
	if err != nil {
		t.Fatal(err)
	}
	if rec2.HasChanges() || len(rec2.Parts) != 0 {
		t.Fatalf("second plan has changes: %v", planner.Count(rec2.Items()))
	}
	sum2, err := rec2.Apply(ctx, executor.Options{})
	if err != nil || !sum2.OK() {
		t.Fatalf("second apply: %v %+v", err, sum2.Failed)
	}
	// The eighth item is the tree's .encjob-state directory, which the
	// first apply created: listed as a skip, never an item.
	stateSkips := 0
	for _, it := range rec2.Items() {
		if it.Action == planner.Skip && it.Reason == "encjob state directory" {
			stateSkips++
		}
	}
	if stateSkips != 1 {
		t.Errorf("second plan: %d skipped state directories, want 1", stateSkips)
	}
	if sum2.Done[planner.Unchanged] != 6 || sum2.Done[planner.Skip] != 2 || sum2.Items != 8 {
		t.Errorf("second apply: %v", sum2.Done)
	}
	if n := e.total(); n != 0 {
		t.Errorf("second plan+apply made %d KMS calls (%v), want 0", n, e.emu.Calls())
	}
}

// An item that lacks a required key without a value cannot be fixed: the
// plan says so and leaves it alone.
func TestPlanCannotInventContextValues(t *testing.T) {
	f := newFixture(t)
	pol := loadPolicy(t, checkPolicy, f.env)
	rec, err := policy.Plan(context.Background(), pol, policy.PlanOptions{Options: f.options()})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range rec.Items() {
		rel, _ := filepath.Rel(f.tree, it.Input)
		switch filepath.ToSlash(rel) {
		case "prod/noowner.env", "prod/plain.env":
			if it.Action != planner.Error || !strings.Contains(it.Reason, "owner") {
				t.Errorf("%s: %s %q, want an error naming owner", rel, it.Action, it.Reason)
			}
		case "prod/wrongkey.env", "prod/unsigned.env", "kms/raw.bin", "shared/dev.bin", "shared/signed.bin":
			if it.Action != planner.Reencrypt {
				t.Errorf("%s: %s %q, want reencrypt", rel, it.Action, it.Reason)
			}
		}
	}
}
