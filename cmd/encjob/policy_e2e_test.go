package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

const policyYAML = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: p}
spec:
  sources: [{path: ./tree}]
  keyGroups:
    new: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  rules:
    - match: ["public/**"]
      exempt: true
    - match: ["**"]
      keyGroup: new
      requireContext: {tenant: acme}
`

// TestE2EPolicyCheckApplyExplain: check reports exactly the violations,
// apply reconciles them, a second check is clean, explain names the rule.
func TestE2EPolicyCheckApplyExplain(t *testing.T) {
	dir, _ := setup(t)
	os.MkdirAll(filepath.Join(dir, "tree", "public"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "public", "readme.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "tree", "plain.txt"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "tree", "ok.txt"), []byte("fine"), 0o644)
	r := encjob(t, dir, nil, args("encrypt", "-i", "tree/ok.txt", "-o", "tree/ok.enc", rawKey, "-c", "tenant=acme", "-S")...)
	wantCode(t, r, 0)
	os.Remove(filepath.Join(dir, "tree", "ok.txt"))
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policyYAML), 0o644)

	r = encjob(t, dir, nil, "check", "-f", "policy.yaml", "--json")
	wantCode(t, r, 1)
	var rep struct {
		Items []struct {
			Input     string `json:"input"`
			Compliant bool   `json:"compliant"`
			Status    string `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, r.stdout)
	}
	var bad []string
	for _, it := range rep.Items {
		if it.Status == "violation" {
			bad = append(bad, filepath.Base(it.Input))
		}
	}
	if strings.Join(bad, ",") != "plain.txt" {
		t.Fatalf("violations %v, want exactly plain.txt", bad)
	}
	r = encjob(t, dir, nil, "explain", "-f", "policy.yaml", "./tree/public/readme.txt")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "public/**") {
		t.Fatalf("explain: %s", r.stdout)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "policy.yaml"), 2) // no terminal: needs --auto-approve
	wantCode(t, encjob(t, dir, nil, "apply", "--auto-approve", "-f", "policy.yaml"), 0)
	wantCode(t, encjob(t, dir, nil, "check", "-f", "policy.yaml"), 0)
	if b, _ := os.ReadFile(filepath.Join(dir, "tree", "public", "readme.txt")); string(b) != "hello" {
		t.Fatal("exempt file changed")
	}
}

// TestE2ERenderAndReport: render k8s decodes into a typed Indexed Job;
// report merges shard logs.
func TestE2ERenderAndReport(t *testing.T) {
	dir, _ := setup(t)
	job := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: nightly}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./enc}
  keyGroups: {k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}}
  encrypt: {keyGroup: k}
`
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644)
	r := encjob(t, dir, nil, "render", "k8s", "-f", "job.yaml", "--shards", "4", "--image", "example.com/encjob:1", "--metadata-prefix", "s3://b/runs/nightly/")
	wantCode(t, r, 0)
	parts := strings.Split(r.stdout, "\n---\n")
	var j batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(parts[len(parts)-1]), &j); err != nil {
		t.Fatalf("manifest: %v\n%s", err, r.stdout)
	}
	if *j.Spec.Completions != 4 || j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != batchv1.IndexedCompletion {
		t.Fatalf("job spec %+v", j.Spec)
	}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	for i := 0; i < 2; i++ {
		wantCode(t, encjob(t, dir, nil, "apply", "-f", "job.yaml", "--shard", []string{"0/2", "1/2"}[i], "--metadata-output", []string{"logs/shard-0.jsonl", "logs/shard-1.jsonl"}[i]), 0)
	}
	r = encjob(t, dir, nil, "report", "--json", "logs")
	wantCode(t, r, 0)
	var sum struct {
		Items   int            `json:"items"`
		Actions map[string]int `json:"actions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout)
	}
	if sum.Items != 3 || sum.Actions["encrypt"] != 3 {
		t.Fatalf("report %+v\n%s", sum, r.stdout)
	}
}

// TestE2EPolicyPlanSaved: a policy reconciliation is a plan like a job's:
// plan --detailed-exitcode, --json and --out work, apply PLANFILE applies
// the saved reconciliation, and the library refuses an edited or stale
// one before anything is written.
func TestE2EPolicyPlanSaved(t *testing.T) {
	dir, _ := setup(t)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "public"), 0o755)
	os.WriteFile(filepath.Join(tree, "public", "readme.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(tree, "plain.txt"), []byte("secret"), 0o644)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policyYAML), 0o644)

	r := encjob(t, dir, nil, "plan", "-f", "policy.yaml", "--detailed-exitcode")
	wantCode(t, r, 2)
	if !strings.Contains(r.stdout, "+ 1 encrypt") || !strings.Contains(r.stdout, "plain.txt") {
		t.Fatalf("plan: %s", r.stdout)
	}
	r = encjob(t, dir, nil, "plan", "-f", "policy.yaml", "--json", "--out", "p.json")
	wantCode(t, r, 0)
	var printed, saved struct {
		Kind  string `json:"kind"`
		Parts []struct {
			Action string          `json:"action"`
			Plan   json.RawMessage `json:"plan"`
		} `json:"parts"`
		Others []struct{ Action string } `json:"others"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &printed); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, r.stdout)
	}
	b, err := os.ReadFile(filepath.Join(dir, "p.json"))
	if err != nil || json.Unmarshal(b, &saved) != nil {
		t.Fatalf("--out: %v\n%s", err, b)
	}
	if printed.Kind != "EncryptionPolicyPlan" || saved.Kind != printed.Kind || len(saved.Parts) != 1 || saved.Parts[0].Action != "encrypt" || len(saved.Others) != 1 {
		t.Fatalf("saved plan: %s", b)
	}
	if bytes.Contains(b, []byte("secret")) {
		t.Fatal("the plan holds plaintext")
	}

	// Edited plans are refused by the library (exit 3), nothing written.
	edit := func(name, old, new string) {
		t.Helper()
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%s: %q not in the plan", name, old)
		}
		os.WriteFile(filepath.Join(dir, name), bytes.Replace(b, []byte(old), []byte(new), 1), 0o644)
	}
	edit("out_root.json", `"in_place": true`, `"in_place": false`)
	edit("context.json", `"tenant": "acme"`, `"tenant": "evil"`)
	edit("version.json", `"format_version": 3`, `"format_version": 2`)
	edit("base.json", `"base_dir": "`, `"base_dir": "/elsewhere`)
	for name, why := range map[string]string{"out_root.json": "in_place", "context.json": "policy digest", "version.json": "format version 2", "base.json": "base_dir"} {
		r = encjob(t, dir, nil, "apply", "--auto-approve", name)
		wantCode(t, r, 3)
		if !strings.Contains(r.stderr, why) {
			t.Errorf("%s: refused without naming %q: %s", name, why, r.stderr)
		}
		if got, _ := os.ReadFile(filepath.Join(tree, "plain.txt")); string(got) != "secret" {
			t.Fatalf("%s: a refused plan changed plain.txt", name)
		}
	}

	// Applying the saved plan: confirmation as for -f, then the change.
	wantCode(t, encjob(t, dir, nil, "apply", "p.json"), 2) // no terminal: needs --auto-approve
	wantCode(t, encjob(t, dir, nil, "apply", "--auto-approve", "-f", "policy.yaml", "p.json"), 0)
	if got, _ := os.ReadFile(filepath.Join(tree, "plain.txt")); string(got) == "secret" {
		t.Fatal("plain.txt not encrypted")
	}
	wantCode(t, encjob(t, dir, nil, "check", "-f", "policy.yaml"), 0)
	wantCode(t, encjob(t, dir, nil, "plan", "-f", "policy.yaml", "--detailed-exitcode"), 0)
	// The same plan again: its source changed since planning.
	r = encjob(t, dir, nil, "apply", "--auto-approve", "p.json")
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "stale") {
		t.Errorf("stale plan: %s", r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(tree, "public", "readme.txt")); string(b) != "hello" {
		t.Fatal("exempt file changed")
	}
}
