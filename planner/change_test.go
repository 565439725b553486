package planner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// provDest keeps its own provenance records (what each commit's
// SourcePrint was), so these tests pin the planner's decisions whatever
// the real destinations store. hide makes it a destination that keeps no
// records at all.
type provDest struct {
	sources.Destination
	mu   *sync.Mutex
	recs map[string]sources.Fingerprint
}

func (d provDest) Create(ctx context.Context, key string, o sources.CreateOptions) (sources.Writer, error) {
	w, err := d.Destination.Create(ctx, key, o)
	if err != nil {
		return nil, err
	}
	return &provWriter{Writer: w, commit: func() { d.mu.Lock(); d.recs[key] = o.SourcePrint; d.mu.Unlock() }}, nil
}

func (d provDest) Provenance(ctx context.Context, key string) (sources.Fingerprint, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fp, ok := d.recs[key]
	return fp, ok, nil
}

// provWriter records at Commit (not CommitAsync: the wrapper hides it, so
// the executor commits synchronously).
type provWriter struct {
	sources.Writer
	commit func()
}

func (w *provWriter) Commit(ctx context.Context) error {
	if err := w.Writer.Commit(ctx); err != nil {
		return err
	}
	w.commit()
	return nil
}

// noProvDest hides every optional capability, provenance included.
type noProvDest struct{ d sources.Destination }

func (n noProvDest) String() string { return n.d.String() }
func (n noProvDest) Create(ctx context.Context, key string, o sources.CreateOptions) (sources.Writer, error) {
	return n.d.Create(ctx, key, o)
}
func (n noProvDest) Stat(ctx context.Context, key string) (sources.Item, error) {
	return n.d.Stat(ctx, key)
}

type world struct {
	t    *testing.T
	dir  string
	mu   sync.Mutex
	recs map[string]sources.Fingerprint
	hide bool
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir(), recs: map[string]sources.Fingerprint{}}
	os.MkdirAll(filepath.Join(w.dir, "in"), 0o755)
	return w
}

func (w *world) options() planner.Options {
	return planner.Options{BaseDir: w.dir, WrapDestination: func(d sources.Destination) sources.Destination {
		if w.hide {
			return noProvDest{d}
		}
		return provDest{Destination: d, mu: &w.mu, recs: w.recs}
	}}
}

func (w *world) job(op, output, extra string) *spec.Job {
	y := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: t}
spec:
  operation: ` + op + `
  sources: [{path: ./in}]
  output: ` + output + `
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./k, namespace: encjob, name: dev, generate: true}
`
	if op != "decrypt" {
		y += "  encrypt: {keyGroup: dev, context: {tenant: acme" + extra + "}}\n"
	}
	if op != "encrypt" {
		y += "  decrypt: {keyGroup: dev}\n"
	}
	docs, err := spec.Parse("job.yaml", []byte(y), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return docs[0].Job
}

// plan plans the job and returns the item of the one source file, a.txt
// (a state directory encjob keeps in the tree is listed as a skip).
func (w *world) plan(job *spec.Job, completed map[string]sources.Fingerprint) planner.Item {
	w.t.Helper()
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, w.options())
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Completed: completed})
	if err != nil {
		w.t.Fatalf("plan: %v", err)
	}
	for _, it := range p.Items {
		if it.Key == "a.txt" {
			return it
		}
	}
	w.t.Fatalf("a.txt not planned: %+v", p.Items)
	return planner.Item{}
}

func (w *world) apply(job *spec.Job) {
	w.t.Helper()
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, w.options())
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	sum, err := executor.Apply(ctx, rt, p, executor.Options{Retries: executor.Retry(0)})
	if err != nil || !sum.OK() {
		w.t.Fatalf("apply: %v %+v", err, sum.Failed)
	}
}

func want(t *testing.T, it planner.Item, action planner.Action, reason string) {
	t.Helper()
	if it.Action != action || !strings.Contains(it.Reason, reason) {
		t.Fatalf("%s: %s (%s), want %s (%q)", it.Input, it.Action, it.Reason, action, reason)
	}
}

// TestUnchangedOnlyWithProvenance: a separate destination is unchanged
// only when its provenance record says it was written from the source's
// current version (and, for encryption, as the job asks); timestamps
// decide nothing, and overwrite: always always rewrites.
func TestUnchangedOnlyWithProvenance(t *testing.T) {
	w := newWorld(t)
	src := filepath.Join(w.dir, "in", "a.txt")
	os.WriteFile(src, []byte("version 1"), 0o644)
	out := func(ow string) string { return "{path: ./out, overwrite: " + ow + "}" }
	w.apply(w.job("encrypt", out("never"), ""))

	for ow, act := range map[string]planner.Action{"never": planner.Unchanged, "if-newer": planner.Unchanged, "always": planner.Encrypt} {
		want(t, w.plan(w.job("encrypt", out(ow), ""), nil), act, map[string]string{
			"never": "completed by an earlier run", "if-newer": "completed by an earlier run", "always": "overwrite: always"}[ow])
	}
	// The job now asks for another context: the output, though made from
	// this very source version, is not what the job wants.
	want(t, w.plan(w.job("encrypt", out("never"), ", stage: prod"), nil), planner.Conflict, "not with the key group")
	want(t, w.plan(w.job("encrypt", out("if-newer"), ", stage: prod"), nil), planner.Encrypt, "overwrite: if-newer")

	// A restore puts newer content under an older mtime than the output's.
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(src, []byte("version 2"), 0o644)
	old := time.Now().Add(-72 * time.Hour)
	os.Chtimes(src, old, old)
	want(t, w.plan(w.job("encrypt", out("never"), ""), nil), planner.Conflict, "written from another version of the source (overwrite: never)")
	want(t, w.plan(w.job("encrypt", out("if-newer"), ""), nil), planner.Encrypt, "another version")
	want(t, w.plan(w.job("encrypt", out("always"), ""), nil), planner.Encrypt, "")

	// An output encjob has no record of (written by another tool, or
	// restored), newer than the source and under the right key: proves
	// nothing.
	w.apply(w.job("encrypt", out("always"), ""))
	w.mu.Lock()
	clear(w.recs)
	w.mu.Unlock()
	want(t, w.plan(w.job("encrypt", out("never"), ""), nil), planner.Conflict, "encjob has no record of writing it")
	want(t, w.plan(w.job("encrypt", out("if-newer"), ""), nil), planner.Encrypt, "no record")

	// A destination that keeps no records at all: the metadata log's
	// word (Completed) is all there is.
	w.hide = true
	fi, _ := os.Stat(src)
	input := w.plan(w.job("encrypt", out("never"), ""), nil).Input
	want(t, w.plan(w.job("encrypt", out("never"), ""), map[string]sources.Fingerprint{input: sources.LocalFingerprint(fi)}), planner.Unchanged, "metadata log")
	want(t, w.plan(w.job("encrypt", out("never"), ""), map[string]sources.Fingerprint{input: "local:old"}), planner.Conflict, "no record")
}

// TestDecryptResumesByProvenance: decrypted outputs (separate and in
// place) that an earlier run committed are unchanged without any
// metadata log; in place, the plaintext an earlier run left is known by
// its provenance, not misread as "not an ESDK message".
func TestDecryptResumesByProvenance(t *testing.T) {
	w := newWorld(t)
	os.WriteFile(filepath.Join(w.dir, "in", "a.txt"), []byte("secret"), 0o644)
	w.apply(w.job("encrypt", "{inPlace: true}", ""))
	if it := w.plan(w.job("encrypt", "{inPlace: true}", ""), nil); it.Action != planner.Unchanged {
		t.Fatalf("in-place encrypt rerun: %+v", it)
	}
	// Separate destination.
	dj := w.job("decrypt", "{path: ./dec}", "")
	want(t, w.plan(dj, nil), planner.Decrypt, "")
	w.apply(dj)
	want(t, w.plan(dj, nil), planner.Unchanged, "completed by an earlier run")
	// In place.
	ij := w.job("decrypt", "{inPlace: true}", "")
	want(t, w.plan(ij, nil), planner.Decrypt, "")
	w.apply(ij)
	if b, _ := os.ReadFile(filepath.Join(w.dir, "in", "a.txt")); string(b) != "secret" {
		t.Fatalf("decrypted in place: %q", b)
	}
	want(t, w.plan(ij, nil), planner.Unchanged, "completed by an earlier run (decrypt in place)")
	// The record is of a decrypt: an in-place encrypt job still
	// encrypts the plaintext.
	want(t, w.plan(w.job("encrypt", "{inPlace: true}", ""), nil), planner.Encrypt, "")
	// Without the record the plaintext is what it always was: an error.
	w.mu.Lock()
	clear(w.recs)
	w.mu.Unlock()
	want(t, w.plan(ij, nil), planner.Error, "not a readable ESDK message")
}
