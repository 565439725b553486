package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// inproc runs one command line in-process (no binary, no subprocess),
// driving the real dispatch with buffers.
func inproc(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var so, se bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &so, stderr: &se, getenv: func(string) string { return "" }}
	code := run(context.Background(), e, args)
	return result{so.String(), se.String(), code}
}

// TestHelpPerCommand: `encjob help CMD` and `encjob CMD --help` print the
// same help, with the command's flags and without pflag's noise.
func TestHelpPerCommand(t *testing.T) {
	for _, name := range commandNames() {
		a := inproc(t, "", "help", name)
		if a.code != 0 || !strings.HasPrefix(a.stdout, "Usage: encjob "+name) {
			t.Fatalf("help %s: exit %d\n%s%s", name, a.code, a.stdout, a.stderr)
		}
		if name != "help" {
			for _, h := range []string{"--help", "-h"} {
				b := inproc(t, "", name, h)
				if b.code != 0 || b.stdout != a.stdout {
					t.Errorf("%s %s differs from help %s (exit %d):\n%s\n---\n%s", name, h, name, b.code, b.stdout, a.stdout)
				}
			}
		}
		for _, noise := range []string{"[=true|false]", "(default -1)", "(default false)", "(default 0)", "(default [])", "Usage of"} {
			if strings.Contains(a.stdout, noise) {
				t.Errorf("help %s has %q:\n%s", name, noise, a.stdout)
			}
		}
		if fs := flagSetOf(name); fs != nil && !strings.Contains(a.stdout, "Flags:") {
			t.Errorf("help %s lists no flags", name)
		}
	}
	if r := inproc(t, "", "-e", "--help"); r.code != 0 || !strings.Contains(r.stdout, "--wrapping-keys") {
		t.Errorf("-e --help: %d %s", r.code, r.stdout)
	}
	for _, want := range []string{"-i, --input IN", "-w, --wrapping-keys K=V…", "--frame-length BYTES"} {
		if r := inproc(t, "", "help", "encrypt"); !strings.Contains(r.stdout, want) {
			t.Errorf("help encrypt lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := inproc(t, "", "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "encjob") {
			t.Fatalf("completion %s: %d %s", sh, r.code, r.stderr)
		}
		for _, want := range []string{"plan", "reencrypt", "detailed-exitcode", "wrapping-keys"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("completion %s lacks %q", sh, want)
			}
		}
		if path, err := exec.LookPath(sh); err == nil {
			f := filepath.Join(t.TempDir(), "c."+sh)
			os.WriteFile(f, []byte(r.stdout), 0o600)
			if out, err := exec.Command(path, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, out)
			}
		}
	}
	// bash: complete commands and a command's flags for real.
	bash, err := exec.LookPath("bash")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bash is required in CI")
		}
		t.Skip("no bash")
	}
	script := inproc(t, "", "completion", "bash").stdout + `
COMP_WORDS=(encjob pl); COMP_CWORD=1; _encjob; echo "1:${COMPREPLY[*]}"
COMP_WORDS=(encjob plan --det); COMP_CWORD=2; _encjob; echo "2:${COMPREPLY[*]}"
COMP_WORDS=(encjob decrypt --strip); COMP_CWORD=2; _encjob; echo "3:${COMPREPLY[*]}"
COMP_WORDS=(encjob completion z); COMP_CWORD=2; _encjob; echo "4:${COMPREPLY[*]}"
`
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for _, want := range []string{"1:plan", "2:--detailed-exitcode", "3:--strip-suffix", "4:zsh"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("bash completion: want %q in\n%s", want, out)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain.txt":        "plain.txt",
		"café/日本.txt":      "café/日本.txt",
		"red\x1b[31mx":     `red\x1b[31mx`,
		"a\rb\nc\td\x07":   `a\rb\nc\td\x07`,
		"bad\xff\xfeutf8":  `bad\xff\xfeutf8`,
		"del\x7f":          `del\x7f`,
		"c1\u009b31m":      `c1\u009b31m`,
		"bidi\u202etxt.sh": `bidi\u202etxt.sh`,
		"zw\u200bj":        `zw\u200bj`,
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// hostileTermNames are file names that would drive a terminal if printed raw.
var hostileTermNames = []string{"red\x1b[31mX", "cr\rover", "nl\nencjob: done: forged", "bell\x07", "bad\xff\xfe", "bidi\u202etxt.exe"}

// assertTerminalSafe fails when text holds a control character other than
// a line break, or invalid UTF-8.
func assertTerminalSafe(t *testing.T, what, text string) {
	t.Helper()
	if !utf8.ValidString(text) {
		t.Errorf("%s: invalid UTF-8 reached the terminal: %q", what, text)
	}
	for _, r := range text {
		if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x202e {
			t.Errorf("%s: control character %U reached the terminal: %q", what, r, text)
			return
		}
	}
}

// TestE2EHostileNamesEscaped: every human line (verbose item lines,
// failures, skips, summaries, plan lines, notes) escapes names.
func TestE2EHostileNamesEscaped(t *testing.T) {
	dir, _ := setup(t)
	for _, n := range hostileTermNames {
		if err := os.WriteFile(filepath.Join(dir, "in", n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := filepath.Join(dir, "job.yaml")
	os.WriteFile(spec, []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: hostile}
spec:
  operation: encrypt
  keyGroups:
    k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  encrypt: {keyGroup: k}
  sources: [{path: in}]
  output: {path: enc}
`), 0o644)
	for _, a := range [][]string{
		{"plan", "-f", "job.yaml"},
		{"plan", "-f", "job.yaml", "-v"},
		args("encrypt", "-i", "in", "-o", "enc", "-r", rawKey, "-S", "-vv", "--no-progress"),
		// Decrypting plaintext fails every item: the failure lines name them.
		args("decrypt", "-i", "in", "-o", "dec", "-r", rawKey, "-S"),
		{"inspect", "in/" + hostileTermNames[0]},
		{"validate", "in/" + hostileTermNames[2]},
	} {
		r := encjob(t, dir, nil, a...)
		assertTerminalSafe(t, strings.Join(a, " ")+" (stderr)", r.stderr)
		if a[0] != "inspect" {
			assertTerminalSafe(t, strings.Join(a, " ")+" (stdout)", r.stdout)
		}
		if a[0] == "decrypt" && (r.code != 1 || !strings.Contains(r.stderr, `red\x1b[31mX`)) {
			t.Errorf("decrypt: exit %d, escaped name missing:\n%s", r.code, r.stderr)
		}
	}
}

// TestE2ESpecFromStdin: -f - reads the spec from standard input; paths
// in it are relative to the working directory.
func TestE2ESpecFromStdin(t *testing.T) {
	dir, files := setup(t)
	spec := []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: stdin}
spec:
  operation: encrypt
  keyGroups:
    k: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  encrypt: {keyGroup: k}
  sources: [{path: in}]
  output: {path: enc}
`)
	r := encjob(t, dir, spec, "validate", "-f", "-")
	wantCode(t, r, 0)
	r = encjob(t, dir, spec, "plan", "-f", "-")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "3 to encrypt") {
		t.Fatalf("plan -f -: %s", r.stdout)
	}
	r = encjob(t, dir, spec, "apply", "-f", "-")
	wantCode(t, r, 0)
	for name := range files {
		if _, err := os.Stat(filepath.Join(dir, "enc", name+".encrypted")); err != nil {
			t.Fatalf("apply -f -: %v", err)
		}
	}
	r = encjob(t, dir, []byte("spec: [unclosed\n"), "plan", "-f", "-")
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "<stdin>:") {
		t.Fatalf("stdin spec error names no position: %s", r.stderr)
	}
	r = encjob(t, dir, nil, "plan", "-f", "-")
	wantCode(t, r, 2)
}

// TestE2EVersionFromBuild: ldflags (deploy/Dockerfile) set version and
// revision.
func TestE2EVersionFromBuild(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "encjob")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.revision=0123abc", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	got, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(got), "encjob v9.8.7 (0123abc, go") {
		t.Fatalf("version: %q %v", got, err)
	}
}

// TestPanicExitsInternal: a panic outside any item exits 4 (internal
// error, retryable), never 2.
func TestPanicExitsInternal(t *testing.T) {
	commands = append(commands, &command{name: "x-panic", hidden: true, run: func(context.Context, *env, *console, []string) error {
		panic("test panic")
	}})
	defer func() { commands = commands[:len(commands)-1] }()
	r := inproc(t, "", "x-panic")
	if r.code != exitInternal || !strings.Contains(r.stderr, "encjob: internal error: test panic") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}
