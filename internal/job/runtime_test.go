package job_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/internal/job"
	"github.com/encjob/encjob/spec"
)

const twoGroups = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: t}
spec:
  operation: ${OP}
  sources: [{path: in}]
  output: {path: out}
  keyGroups:
    new: {provider: raw-aes, keyFile: new.key, namespace: encjob, name: new, generate: true}
    old: {provider: raw-aes, keyFile: old.key, namespace: encjob, name: old}
  caching: {capacity: 10, maxAge: 1m}
`

func parse(t *testing.T, op, extra string) *spec.Job {
	t.Helper()
	y := twoGroups + extra
	docs, err := spec.Parse("job.yaml", []byte(y), func(k string) (string, bool) {
		if k == "OP" {
			return op, true
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	return docs[0].Job
}

// TestPrepareBuildsWhatTheOperationNeeds: an encryption builds the
// encrypt group only (the decrypt group's missing key file is never
// read), a re-encryption both; caching CMMs wrap the default ones; the
// sources are opened relative to the base directory.
func TestPrepareBuildsWhatTheOperationNeeds(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt, err := job.Prepare(ctx, parse(t, "encrypt", "  encrypt: {keyGroup: new}\n"), job.Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Groups) != 1 || rt.Groups["new"] == nil {
		t.Fatalf("groups %v, want only new", rt.Groups)
	}
	if rt.EncryptCMM == nil || rt.DecryptCMM != nil || rt.Suite == nil {
		t.Fatalf("encrypt CMM %v, decrypt CMM %v, suite %v", rt.EncryptCMM, rt.DecryptCMM, rt.Suite)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Prepare wrote the key file (stat: %v); only GenerateKeys may", err)
	}
	if len(rt.Sources) != 1 || rt.Locations[0].Path != filepath.Join(dir, "in") {
		t.Fatalf("sources %v at %v", rt.Sources, rt.Locations)
	}
	notes, err := rt.GenerateKeys()
	if err != nil || len(notes) != 1 {
		t.Fatalf("GenerateKeys: %v %v", notes, err)
	}

	// Re-encrypting from old needs old.key, which does not exist.
	_, err = job.Prepare(ctx, parse(t, "reencrypt", "  encrypt: {keyGroup: new}\n  decrypt: {keyGroup: old}\n"), job.Options{BaseDir: dir})
	var se *job.SetupError
	if !errors.As(err, &se) {
		t.Fatalf("missing key file: %v (%T), want a *job.SetupError", err, err)
	}
}

// TestPrepareBeforeOpen: the hook runs after the locations are parsed and
// before any key group is built; its error is Prepare's.
func TestPrepareBeforeOpen(t *testing.T) {
	dir := t.TempDir()
	refused := errors.New("refused by the hook")
	var saw []string
	j := parse(t, "reencrypt", "  encrypt: {keyGroup: new}\n  decrypt: {keyGroup: old}\n")
	_, err := job.Prepare(context.Background(), j, job.Options{BaseDir: dir, BeforeOpen: func(_ context.Context, rt *job.Runtime) error {
		saw = append(saw, rt.Locations[0].Path)
		if len(rt.Groups) != 0 || rt.Sources != nil {
			t.Errorf("hook ran after groups (%v) or sources (%v) were made", rt.Groups, rt.Sources)
		}
		return refused
	}})
	if !errors.Is(err, refused) {
		t.Fatalf("Prepare: %v, want the hook's error (before the missing old.key is noticed)", err)
	}
	if len(saw) != 1 || saw[0] != filepath.Join(dir, "in") {
		t.Fatalf("hook saw %v", saw)
	}
}

// TestKMSConfig: what the caller set wins; the spec fills the rest.
func TestKMSConfig(t *testing.T) {
	k := spec.KMSConfig{RateLimit: 5, RetryMode: "adaptive", MaxAttempts: 7, Endpoint: "http://spec", Timeout: spec.Duration{Duration: time.Second}}
	got := job.KMSConfig(awskms.Config{Endpoint: "http://flag", MaxAttempts: 2}, k)
	if got.Endpoint != "http://flag" || got.MaxAttempts != 2 || got.RateLimit != 5 || got.RetryMode != "adaptive" || got.Timeout != time.Second {
		t.Fatalf("%+v", got)
	}
}

// TestStorage: paths resolve against the base directory; one destination
// per output root.
func TestStorage(t *testing.T) {
	s := job.NewStorage("/base", spec.S3Config{}, job.StorageOptions{})
	for in, want := range map[string]string{"a/b": "/base/a/b", "/abs": "/abs", "-": "-", "s3://b/k": "s3://b/k"} {
		if got := s.Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
	ctx := context.Background()
	root := t.TempDir()
	d1, err := s.Destination(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := s.Destination(ctx, root)
	other, _ := s.Destination(ctx, t.TempDir())
	if d1 != d2 || d1 == other || len(s.Destinations()) != 2 {
		t.Fatalf("destinations: %v %v %v (%d opened)", d1, d2, other, len(s.Destinations()))
	}
}
