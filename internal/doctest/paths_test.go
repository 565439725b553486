package doctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSpecPathsRelativeToSpecFile: a spec in its own directory, run
// through the binary from an unrelated working directory, reads and writes
// only next to itself; apply creates the missing directories of the key
// file (0700), the output tree and the metadata log; the key is 0600.
func TestSpecPathsRelativeToSpecFile(t *testing.T) {
	s := newSandbox(t)
	dir := filepath.Join(s.Tmp, "project")
	if err := os.MkdirAll(filepath.Join(dir, "in/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in/sub/a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: paths}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: out/deep/er}
  keyGroups:
    k: {provider: raw-aes, keyFile: secret/keys/k.key, namespace: t, name: k, generate: true}
  encrypt: {keyGroup: k}
  metadata: {output: logs/2026/run.jsonl}
`
	if err := os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := s.Home // the working directory: nothing may land here
	before := snapshot(t, elsewhere)
	r := s.run(t, time.Minute, elsewhere, nil, s.Bin, "apply", "-f", filepath.Join(dir, "job.yaml"))
	if r.Code != 0 {
		t.Fatalf("apply: exit %d\n%s", r.Code, r.Output)
	}
	if d := diffSnapshots(before, snapshot(t, elsewhere)); len(d) > 0 {
		t.Errorf("apply wrote into the working directory:\n  %s", strings.Join(d, "\n  "))
	}
	for p, want := range map[string]os.FileMode{
		"secret":                          0o700 | os.ModeDir,
		"secret/keys":                     0o700 | os.ModeDir,
		"secret/keys/k.key":               0o600,
		"out/deep/er/sub/a.txt.encrypted": 0,
		"logs/2026/run.jsonl":             0,
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if want != 0 && fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "logs/2026/run.jsonl")); err != nil || !strings.Contains(string(b), `"status":"done"`) {
		t.Errorf("metadata log: %v\n%s", err, b)
	}
	// The same spec from its own directory: the same files, nothing to do.
	r = s.run(t, time.Minute, dir, nil, s.Bin, "apply", "-f", "job.yaml")
	if r.Code != 0 || !strings.Contains(r.Output, "1 unchanged") {
		t.Errorf("second apply from the spec's directory: exit %d, want 0 and 1 unchanged\n%s", r.Code, r.Output)
	}
}
