package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/encjob/encjob/internal/policy"
)

const checkPolicy = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: audit}
spec:
  sources: [{path: "${TREE}"}]
  rules:
    - match: ["**/*.md"]
      exempt: true
    - match: ["prod/**"]
      keyGroup: prod
      requireContext: {env: prod, owner: null}
      requireSigned: true
    - match: ["kms/**"]
      keyGroup: kms
    - match: ["shared/**"]
      keyGroup: old
      requireContext: {env: prod}
      algorithm: AES_256_GCM_HKDF_SHA512_COMMIT_KEY
  keyGroups:
    prod: {provider: raw-aes, keyFile: "${PROD}", namespace: encjob, name: prod}
    old: {provider: raw-aes, keyFile: "${OLD}", namespace: encjob, name: old}
    kms: {provider: aws-kms, keys: ["${KMSKEY}"]}
`

type fixture struct {
	kms  *kmsEnv
	tree string
	env  map[string]string
	want map[string][]policy.Code // relative name -> violation codes; nil = compliant
}

// newFixture writes a tree mixing compliant and non-compliant items for
// checkPolicy, with raw-aes and (through the emulator) aws-kms keys.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	e := newKMS(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	prodPath, prod := aesKey(t, dir, "prod")
	oldPath, old := aesKey(t, dir, "old")
	east := e.keyring(t, eastARN)
	pt := []byte("secret value\n")
	const signed, unsigned = 0x0578, 0x0478
	f := &fixture{kms: e, tree: tree, env: map[string]string{"TREE": tree, "PROD": prodPath, "OLD": oldPath, "KMSKEY": eastARN},
		want: map[string][]policy.Code{}}
	add := func(name string, data []byte, codes ...policy.Code) {
		write(t, tree, name, data)
		f.want[name] = codes
	}
	add("README.md", pt)  // exempt
	add("misc/x.txt", pt) // unmatched
	add("prod/ok.env", seal(t, prod, signed, pt, "env=prod", "owner=ops"))
	add("prod/wrongkey.env", seal(t, old, signed, pt, "env=prod", "owner=ops"), policy.CodeKeyGroup)
	add("prod/noowner.env", seal(t, prod, signed, pt, "env=prod"), policy.CodeContextMissing)
	add("prod/unsigned.env", seal(t, prod, unsigned, pt, "env=prod", "owner=ops"), policy.CodeSuite, policy.CodeNotSigned)
	add("prod/plain.env", pt, policy.CodeNotEncrypted)
	add("prod/empty.env", nil, policy.CodeNotEncrypted)
	add("kms/ok.bin", seal(t, east, signed, pt, "app=x"))
	add("kms/raw.bin", seal(t, prod, signed, pt), policy.CodeKeyGroup)
	add("shared/ok.bin", seal(t, old, unsigned, pt, "env=prod", "extra=1"))
	add("shared/dev.bin", seal(t, old, unsigned, pt, "env=dev"), policy.CodeContextValue)
	add("shared/signed.bin", seal(t, old, signed, pt, "env=prod"), policy.CodeSuite)
	e.emu.ResetCalls()
	return f
}

func (f *fixture) options() policy.Options {
	cfg := f.kms.config()
	cfg.Keys = nil
	return policy.Options{KMS: cfg}
}

func TestCheckReportsExactlyTheNonCompliant(t *testing.T) {
	f := newFixture(t)
	pol := loadPolicy(t, checkPolicy, f.env)
	rep, err := policy.Check(context.Background(), pol, f.options())
	if err != nil {
		t.Fatal(err)
	}
	if n := f.kms.total(); n != 0 {
		t.Fatalf("check made %d KMS calls (%v), want 0", n, f.kms.emu.Calls())
	}
	got := map[string]policy.ItemReport{}
	for _, it := range rep.Items {
		rel, _ := filepath.Rel(f.tree, filepath.FromSlash(it.Input))
		got[filepath.ToSlash(rel)] = it
	}
	if len(got) != len(f.want) {
		t.Fatalf("report has %d items, want %d: %v", len(got), len(f.want), got)
	}
	var wantFailing []string
	for name, codes := range f.want {
		it, ok := got[name]
		if !ok {
			t.Errorf("%s: not in the report", name)
			continue
		}
		if len(codes) > 0 {
			wantFailing = append(wantFailing, it.Input)
		}
		if !slices.Equal(it.Codes, codes) {
			t.Errorf("%s: codes %v, want %v (violations %q)", name, it.Codes, codes, it.Violations)
		}
		if len(it.Codes) != len(it.Violations) {
			t.Errorf("%s: %d codes but %d violations", name, len(it.Codes), len(it.Violations))
		}
		if it.Compliant != (len(codes) == 0) {
			t.Errorf("%s: compliant %v with codes %v", name, it.Compliant, codes)
		}
	}
	for name, st := range map[string]policy.Status{"README.md": policy.Exempt, "misc/x.txt": policy.Unmatched,
		"prod/ok.env": policy.Compliant, "kms/ok.bin": policy.Compliant, "prod/plain.env": policy.Violation} {
		if got[name].Status != st {
			t.Errorf("%s: status %s, want %s", name, got[name].Status, st)
		}
	}
	if r := got["prod/wrongkey.env"]; r.Rule != 1 || r.Pattern != "prod/**" {
		t.Errorf("prod/wrongkey.env: rule %d pattern %q, want 1 prod/**", r.Rule, r.Pattern)
	}
	var failing []string
	for _, it := range rep.Failing() {
		failing = append(failing, it.Input)
	}
	if !equalSets(failing, wantFailing) {
		t.Errorf("failing items %v, want %v", failing, wantFailing)
	}
	tot := rep.Totals
	if tot.Items != 13 || tot.Compliant != 3 || tot.Violations != 8 || tot.Exempt != 1 || tot.Unmatched != 1 || tot.Errors != 0 {
		t.Errorf("totals %+v", tot)
	}
	if !rep.HasViolations() {
		t.Error("HasViolations() = false")
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	for _, in := range wantFailing {
		if !strings.Contains(text.String(), in) {
			t.Errorf("text report does not name %s:\n%s", in, text.String())
		}
	}
	if strings.Contains(text.String(), filepath.Join(f.tree, "prod", "ok.env")) {
		t.Errorf("text report names a compliant item:\n%s", text.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back policy.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Totals != rep.Totals || len(back.Items) != len(rep.Items) || back.FormatVersion != policy.ReportVersion {
		t.Errorf("JSON round trip: %+v", back.Totals)
	}
}

func TestCheckCompliantTreeHasNoViolations(t *testing.T) {
	f := newFixture(t)
	pol := loadPolicy(t, checkPolicy, f.env)
	for name, codes := range f.want {
		if len(codes) > 0 {
			pol.Sources[0].Exclude = append(pol.Sources[0].Exclude, "/"+name)
		}
	}
	rep, err := policy.Check(context.Background(), pol, f.options())
	if err != nil {
		t.Fatal(err)
	}
	if rep.HasViolations() || rep.Totals.Compliant != 3 {
		t.Fatalf("violations in a compliant tree: %+v %v", rep.Totals, rep.Failing())
	}
}

// A group named by alias cannot be matched against EDKs (which carry key
// ARNs) without KMS: the check says so, or resolves it when allowed.
func TestCheckAliasGroup(t *testing.T) {
	f := newFixture(t)
	f.env["KMSKEY"] = "alias/east"
	pol := loadPolicy(t, checkPolicy, f.env)
	ctx := context.Background()
	rep, err := policy.Check(ctx, pol, f.options())
	if err != nil {
		t.Fatal(err)
	}
	if n := f.kms.total(); n != 0 {
		t.Fatalf("check made %d KMS calls, want 0", n)
	}
	ok := findItem(t, rep, "kms/ok.bin")
	if ok.Compliant || !slices.Equal(ok.Codes, []policy.Code{policy.CodeKeyGroupUnknown}) {
		t.Errorf("kms/ok.bin with an alias group: %v %q", ok.Codes, ok.Violations)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "alias/east") {
		t.Errorf("notes %q do not name the alias", rep.Notes)
	}

	o := f.options()
	o.ResolveAliases = true
	rep, err = policy.Check(ctx, pol, o)
	if err != nil {
		t.Fatal(err)
	}
	if ok := findItem(t, rep, "kms/ok.bin"); !ok.Compliant {
		t.Errorf("kms/ok.bin with the alias resolved: %q", ok.Violations)
	}
	if n := f.kms.emu.CallCount("DescribeKey"); n != 1 || f.kms.total() != 1 {
		t.Errorf("resolving made %v calls, want one DescribeKey", f.kms.emu.Calls())
	}
}

func findItem(t *testing.T, rep *policy.Report, suffix string) policy.ItemReport {
	t.Helper()
	for _, it := range rep.Items {
		if strings.HasSuffix(it.Input, "/"+suffix) {
			return it
		}
	}
	t.Fatalf("%s not in the report", suffix)
	return policy.ItemReport{}
}
