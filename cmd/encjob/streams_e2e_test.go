package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EOneStream: the data on stdout, the metadata log and apply's JSON
// summary never go into one file under two names - "-" and /dev/stdout,
// /proc/self/fd/1, a symlink to them, or the file the shell redirected
// stdout to - whether stdout is a pipe or a regular file: the log's lines
// appended to a ciphertext made it undecryptable. Each is exit 2 with
// nothing written; a terminal or /dev/null may take several.
func TestE2EOneStream(t *testing.T) {
	dir, _ := setup(t)
	os.Symlink("/dev/stdout", filepath.Join(dir, "so-link"))
	job := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: j}
spec:
  operation: encrypt
  keyGroups: {g: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}}
  encrypt: {keyGroup: g}
  sources: [{path: in}]
  output: {path: enc}
`
	if err := os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	type run struct {
		name   string
		args   []string
		toFile string // stdout redirected to this file in dir ("" a pipe)
		want   string
	}
	runs := []run{
		{"-o - with the log on /dev/stdout", args("encrypt", "-i", "in/b/c.bin", "-o", "-", "--metadata-output", "/dev/stdout", rawKey), "", "is the same file as stdout"},
		{"-o - with the log on /proc/self/fd/1", args("encrypt", "-i", "in/b/c.bin", "-o", "-", "--metadata-output", "/proc/self/fd/1", rawKey), "out.bin", "is the same file as stdout"},
		{"-o - with the log through a symlink", args("encrypt", "-i", "in/b/c.bin", "-o", "-", "--metadata-output", "so-link", rawKey), "", "is the same file as stdout"},
		{"-o - with the log on the file stdout is", args("encrypt", "-i", "in/b/c.bin", "-o", "-", "--metadata-output", "out.bin", rawKey), "out.bin", "is the same file as stdout"},
		{"-o /dev/stdout with the log on -", args("encrypt", "-i", "in/b/c.bin", "-o", "/dev/stdout", "--metadata-output", "-", rawKey), "out.bin", "the same file as"},
		{"apply --json with the log on /dev/stdout", args("apply", "-f", "job.yaml", "--json", "--metadata-output", "/dev/stdout"), "", "is the same file as"},
		{"apply --json with the log on the file stdout is", args("apply", "-f", "job.yaml", "--json", "--metadata-output", "sum.json"), "sum.json", "is the same file as"},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			cmd := exec.Command(binPath, r.args...)
			cmd.Dir, cmd.Env = dir, cleanEnv()
			var so, se bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, &se
			if r.toFile != "" {
				f, err := os.Create(filepath.Join(dir, r.toFile))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				cmd.Stdout = f
			}
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(se.String(), r.want) {
				t.Fatalf("want exit 2 saying %q, got %v: %s", r.want, err, se.String())
			}
			if r.toFile != "" {
				if b, _ := os.ReadFile(filepath.Join(dir, r.toFile)); len(b) != 0 {
					t.Errorf("%s holds %d bytes, want none", r.toFile, len(b))
				}
			} else if so.Len() != 0 {
				t.Errorf("stdout got %d bytes, want none", so.Len())
			}
			if ents, _ := os.ReadDir(filepath.Join(dir, "enc")); len(ents) != 0 {
				t.Errorf("enc/ holds %d entries, want none", len(ents))
			}
		})
	}
	// Apart, both are written, and the ciphertext decrypts.
	r := encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "-", "--metadata-output", "/dev/null", rawKey)...)
	wantCode(t, r, 0)
	if err := os.WriteFile(filepath.Join(dir, "c.enc"), []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	wantCode(t, encjob(t, dir, nil, args("decrypt", "-i", "c.enc", "-o", "-", "-S", rawKey)...), 0)
	// The log on /dev/stderr, which the shell made a file holding other
	// text (2>>file): a stream of the caller's, appended to whatever it
	// holds, not refused as "not a metadata log".
	errf := filepath.Join(dir, "err.txt")
	f := appendTo(t, errf, "earlier text\n")
	cmd := exec.Command(binPath, args("encrypt", "-i", "in/b/c.bin", "-o", "c2.enc", "--metadata-output", "/dev/stderr", rawKey)...)
	cmd.Dir, cmd.Env, cmd.Stderr = dir, cleanEnv(), f
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(errf)
		t.Fatalf("--metadata-output /dev/stderr: %v: %s", err, b)
	}
	if b, _ := os.ReadFile(errf); !bytes.Contains(b, []byte(`"action":"encrypt"`)) {
		t.Errorf("no record on stderr: %s", b)
	}
}

// appendTo writes content to a new file at p and returns it opened for
// appending, as a shell's ">>" would hand it to a command; closed at the
// end of the test.
func appendTo(t *testing.T, p, content string) *os.File {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
