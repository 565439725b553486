package executor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// writeTree creates files under dir from name -> size and returns their
// contents.
func writeTree(t *testing.T, dir string, files map[string]int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, size := range files {
		b := make([]byte, size)
		rand.Read(b)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

func loadJob(t *testing.T, yaml string, env map[string]string) *spec.Job {
	t.Helper()
	docs, err := spec.Parse("job.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	return docs[0].Job
}

type runOut struct {
	plan    *planner.Plan
	sum     *executor.Summary
	records []executor.Record
}

func run(t *testing.T, job *spec.Job) runOut {
	t.Helper()
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, planner.Options{})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "test"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var meta bytes.Buffer
	sum, err := executor.Apply(ctx, rt, p, executor.Options{Metadata: executor.NewMetadataLog(&meta)})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	var recs []executor.Record
	for _, line := range strings.Split(strings.TrimSpace(meta.String()), "\n") {
		if line == "" {
			continue
		}
		var r executor.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("metadata line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return runOut{p, sum, recs}
}

const rawAESJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: t}
spec:
  operation: ${OP}
  sources: [{path: "${IN}"}]
  output: {path: "${OUT}"}
  keyGroups:
    dev: {provider: raw-aes, keyFile: "${KEY}", namespace: encjob, name: dev, generate: true}
`

func jobFor(t *testing.T, env map[string]string) *spec.Job {
	y := rawAESJob
	if env["OP"] != "decrypt" {
		y += "  encrypt: {keyGroup: dev, context: {tenant: acme}}\n"
	}
	if env["OP"] != "encrypt" {
		y += "  decrypt: {keyGroup: dev, requireContext: {tenant: acme}}\n"
	}
	return loadJob(t, y, env)
}

func TestEncryptDecryptTree(t *testing.T) {
	dir := t.TempDir()
	in, enc, dec := filepath.Join(dir, "in"), filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
	files := writeTree(t, in, map[string]int{"a.txt": 0, "b/c.bin": 4096, "b/d/e.bin": 100000})
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "dev.key")}
	r := run(t, jobFor(t, env))
	if r.sum.Done[planner.Encrypt] != 3 || !r.sum.OK() {
		t.Fatalf("encrypt summary %+v", r.sum)
	}
	if fi, err := os.Stat(env["KEY"]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v %v", fi, err)
	}
	for name := range files {
		if _, err := os.Stat(filepath.Join(enc, name+".encrypted")); err != nil {
			t.Fatalf("missing output: %v", err)
		}
	}
	if len(r.records) != 3 || r.records[0].Header == nil || r.records[0].Mode != "encrypt" {
		t.Fatalf("metadata %+v", r.records)
	}
	// Re-running changes nothing.
	r = run(t, jobFor(t, env))
	if r.plan.HasChanges() || r.sum.Done[planner.Unchanged] != 3 {
		t.Fatalf("second run should be unchanged: %+v", r.plan.Counts())
	}
	env["OP"], env["IN"], env["OUT"] = "decrypt", enc, dec
	r = run(t, jobFor(t, env))
	if r.sum.Done[planner.Decrypt] != 3 || !r.sum.OK() {
		t.Fatalf("decrypt summary %+v %+v", r.sum, r.sum.Failed)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dec, name+".encrypted.decrypted"))
		if err != nil {
			// spec default strips .encrypted on decrypt
			got, err = os.ReadFile(filepath.Join(dec, name))
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: round trip failed: %v", name, err)
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
