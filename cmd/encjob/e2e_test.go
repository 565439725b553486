package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/sources"
)

var binPath string

// TestMain serves two purposes. testscript.Main makes this test binary
// the "encjob" command of the scripts in testdata/script (it re-executes
// itself and runs main, so the scripts need no build); otherwise it runs
// the tests, after building the real binary the Go end-to-end tests run.
func TestMain(m *testing.M) {
	testscript.Main(buildingM{m}, map[string]func(){"encjob": main})
}

// buildingM builds the binary around the test run.
type buildingM struct{ m *testing.M }

func (b buildingM) Run() int {
	dir, err := os.MkdirTemp("", "encjob-cli-test")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "encjob")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		panic("building encjob: " + err.Error() + "\n" + string(out))
	}
	return b.m.Run()
}

type result struct {
	stdout, stderr string
	code           int
}

// encjob runs the built binary in dir with a clean environment.
func encjob(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	return encjobEnv(t, dir, cleanEnv(), stdin, args...)
}

// encjobEnv runs the built binary in dir with the environment env.
func encjobEnv(t *testing.T, dir string, env []string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running encjob: %v", err)
	}
	return result{so.String(), se.String(), code}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "JOB_COMPLETION_INDEX=") || strings.HasPrefix(kv, "ENCJOB_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

// setup writes a raw AES key (key) and a tree in/ of files and returns
// their contents by relative path.
func setup(t *testing.T) (dir string, files map[string][]byte) {
	t.Helper()
	dir = t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	files = map[string][]byte{}
	for name, size := range map[string]int{"a.txt": 0, "b/c.bin": 5000, "b/d/e.bin": 70000} {
		b := make([]byte, size)
		rand.Read(b)
		p := filepath.Join(dir, "in", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	for _, d := range []string{"enc", "dec"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	return dir, files
}

var rawKey = []string{"-w", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=test"}

func args(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	return out
}

func readMetadata(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metadata line %q: %v", line, err)
		}
		if in, _ := m["input"].(string); strings.HasSuffix(in, "/"+sources.StateDir) {
			continue // an earlier run's state directory, listed as skipped
		}
		recs = append(recs, m)
	}
	return recs
}

func TestE2EContextMismatchSkipped(t *testing.T) {
	dir, _ := setup(t)
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-c", "tenant=acme", "-S")...), 0)
	r := encjob(t, dir, nil, args("decrypt", "-i", "enc/c.bin.encrypted", "-o", "dec", rawKey, "-c", "tenant=other", "class", "--metadata-output", "m.jsonl")...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "skipped: enc/c.bin.encrypted") {
		t.Errorf("skipped item not listed: %s", r.stderr)
	}
	rec := readMetadata(t, filepath.Join(dir, "m.jsonl"))[0]
	if rec["skipped"] != true || rec["reason"] != "Missing encryption context key or value" {
		t.Fatalf("record %v", rec)
	}
	if keys := rec["missing_encryption_context_keys"].([]any); len(keys) != 1 || keys[0] != "class" {
		t.Fatalf("missing keys %v", keys)
	}
	if pairs := rec["missing_encryption_context_pairs"].([]any); len(pairs) != 1 {
		t.Fatalf("missing pairs %v", pairs)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "dec")); len(ents) != 0 {
		t.Fatalf("skipped item wrote output: %v", ents)
	}
}

func TestE2ENoOverwriteConflict(t *testing.T) {
	dir, _ := setup(t)
	existing := filepath.Join(dir, "enc", "c.bin.encrypted")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	r := encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--no-overwrite")...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "conflict: in/b/c.bin") {
		t.Errorf("conflict not listed: %s", r.stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("--no-overwrite replaced the existing output")
	}
	// Without it, as aws-encryption-cli, the output is replaced.
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S")...), 0)
	if b, _ := os.ReadFile(existing); string(b) == "keep me" {
		t.Fatal("existing output not replaced")
	}
}

const jobYAML = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: e2e}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./enc}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: dev}
  encrypt: {keyGroup: dev, context: {tenant: acme}}
`

func TestE2ESavedPlanRefusedWhenStale(t *testing.T) {
	dir, files := setup(t)
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(jobYAML), 0o644)
	wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p1.json"), 0)
	wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p2.json"), 0)
	// A source changes after planning: the plan is refused, nothing written.
	time.Sleep(10 * time.Millisecond) // a distinct mtime is part of the fingerprint, but size differs anyway
	os.WriteFile(filepath.Join(dir, "in", "a.txt"), []byte("changed"), 0o644)
	r := encjob(t, dir, nil, "apply", "p1.json")
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "stale") || !strings.Contains(r.stderr, "encjob: hint:") {
		t.Errorf("stderr: %s", r.stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "enc")); len(ents) != 0 {
		t.Fatalf("refused plan wrote outputs: %v", ents)
	}
	// A plan whose job was edited is refused too.
	b, _ := os.ReadFile(filepath.Join(dir, "p2.json"))
	os.WriteFile(filepath.Join(dir, "p2.json"), bytes.Replace(b, []byte(`"acme"`), []byte(`"evil"`), 1), 0o644)
	r = encjob(t, dir, nil, "apply", "p2.json")
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "digest") {
		t.Errorf("stderr: %s", r.stderr)
	}
	// A fresh plan applies.
	wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p3.json"), 0)
	wantCode(t, encjob(t, dir, nil, "apply", "p3.json", "-f", "job.yaml"), 0)
	if _, err := os.Stat(filepath.Join(dir, "enc", "b", "d", "e.bin.encrypted")); err != nil {
		t.Fatal(err)
	}
	_ = files
}

func TestE2EStdinStdoutRoundTrip(t *testing.T) {
	dir, files := setup(t)
	plain := files["b/d/e.bin"]
	r := encjob(t, dir, plain, args("encrypt", "-i", "-", "-o", "-", rawKey, "-S", "-c", "k=v")...)
	wantCode(t, r, 0)
	if len(r.stdout) <= len(plain) {
		t.Fatalf("ciphertext of %d bytes for %d bytes of plaintext", len(r.stdout), len(plain))
	}
	r = encjob(t, dir, []byte(r.stdout), args("decrypt", "-i", "-", "-o", "-", rawKey, "-c", "k=v", "--metadata-output", "m.jsonl")...)
	wantCode(t, r, 0)
	if !bytes.Equal([]byte(r.stdout), plain) {
		t.Fatal("stdin -> stdout round trip changed the data")
	}
	// Base64: --encode on encrypt, --decode on decrypt.
	r = encjob(t, dir, plain, args("encrypt", "-i", "-", "-o", "-", rawKey, "-S", "--encode")...)
	wantCode(t, r, 0)
	r = encjob(t, dir, []byte(r.stdout), args("decrypt", "-i", "-", "-o", "-", rawKey, "-S", "--decode")...)
	wantCode(t, r, 0)
	if !bytes.Equal([]byte(r.stdout), plain) {
		t.Fatal("base64 round trip changed the data")
	}
	// --encode on decrypt base64-encodes the plaintext, as aws-encryption-cli does.
	r = encjob(t, dir, plain, args("encrypt", "-i", "-", "-o", "-", rawKey, "-S")...)
	wantCode(t, r, 0)
	r = encjob(t, dir, []byte(r.stdout), args("decrypt", "-i", "-", "-o", "-", rawKey, "-S", "--encode")...)
	wantCode(t, r, 0)
	if got, err := base64.StdEncoding.DecodeString(r.stdout); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt --encode: %v", err)
	}
}

func TestE2EArgfile(t *testing.T) {
	dir, files := setup(t)
	os.WriteFile(filepath.Join(dir, "enc.args"), []byte(`# encrypt the tree
--encrypt -i in -o enc -r
-w provider=raw-aes key-file=key namespace=encjob name=test   # the dev key
-c "purpose=argfile test"
-S
`), 0o644)
	wantCode(t, encjob(t, dir, nil, "@enc.args"), 0)
	r := encjob(t, dir, nil, "inspect", "enc/b/c.bin.encrypted")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, `"purpose": "argfile test"`) {
		t.Fatalf("context from argfile missing: %s", r.stdout)
	}
	_ = files
}

func TestE2EInspect(t *testing.T) {
	dir, _ := setup(t)
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--frame-length", "1024", "--encode")...), 0)
	r := encjob(t, dir, nil, "inspect", "--decode", "enc/c.bin.encrypted")
	wantCode(t, r, 0)
	var h map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("inspect output: %v\n%s", err, r.stdout)
	}
	if h["version"] != "2.0" || h["frame_length"] != float64(1024) || h["algorithm"] != "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384" {
		t.Fatalf("header %v", h)
	}
	if edks := h["encrypted_data_keys"].([]any); len(edks) != 1 {
		t.Fatalf("edks %v", edks)
	}
	r = encjob(t, dir, nil, "inspect", "in/b/c.bin")
	wantCode(t, r, 1)
	if !strings.HasPrefix(r.stderr, "encjob: error: in/b/c.bin: not an ESDK message") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestE2EValidateVersionCheck(t *testing.T) {
	dir := t.TempDir()
	bad, _ := filepath.Abs("testdata/bad-job.yaml")
	r := encjob(t, dir, nil, "validate", "-f", bad)
	wantCode(t, r, 2)
	for _, want := range []string{bad + ":8:17: spec.sources[0].include[0]", bad + ":9:36: spec.output.overwrite", bad + ":12:23: spec.encrypt.keyGroup"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("validate output lacks %q:\n%s", want, r.stderr)
		}
	}
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(jobYAML), 0o644)
	r = encjob(t, dir, nil, "validate", "job.yaml")
	wantCode(t, r, 0)
	wantCode(t, encjob(t, dir, nil, "version"), 0)
	r = encjob(t, dir, nil, "check")
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "no policy file given") {
		t.Errorf("check: %s", r.stderr)
	}
	r = encjob(t, dir, nil, "encrypt", "-i", "x")
	wantCode(t, r, 2)
	if !strings.HasPrefix(r.stderr, "encjob: error: ") {
		t.Errorf("usage error format: %s", r.stderr)
	}
	r = encjob(t, dir, nil, "--help")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "130  interrupted") {
		t.Errorf("help lacks exit codes: %s", r.stdout)
	}
}

// TestE2EInterruptLeavesNoPartialOutput interrupts an encryption whose
// input (stdin) is still arriving: the run stops with 130 and leaves
// neither the output nor a temporary file behind.
func TestE2EInterruptLeavesNoPartialOutput(t *testing.T) {
	dir, _ := setup(t)
	cmd := exec.Command(binPath, args("encrypt", "-i", "-", "-o", "enc/stream.enc", rawKey, "-S")...)
	cmd.Dir, cmd.Env = dir, cleanEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	// Feed data until the output is being written: its directory exists
	// and megabytes went through (the pipe holds only 64 KiB). The
	// output is an unnamed O_TMPFILE, so no file shows before the commit.
	deadline := time.Now().Add(20 * time.Second)
	for fed := 0; ; fed += len(chunk) {
		if _, err := stdin.Write(chunk); err != nil {
			t.Fatalf("writing stdin: %v (stderr: %s)", err, se.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "enc")); err == nil && fed >= 4<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the output was not started")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	stdin.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want code 130; stderr: %s", err, se.String())
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "enc")); len(ents) != 0 {
		t.Fatalf("interrupted run left %v", ents)
	}
	if !strings.Contains(se.String(), "interrupted") {
		t.Errorf("stderr: %s", se.String())
	}
}

// TestE2EMultiProviderKeys: -w groups of two providers make one key group
// (aws-encryption-cli's multi-keyring): every message carries a data key
// wrapped by each, the first group's key generating it, and either key
// alone decrypts.
func TestE2EMultiProviderKeys(t *testing.T) {
	dir, files := setup(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{"rsa.pem": {Type: "PRIVATE KEY", Bytes: privDER}, "rsa.pub.pem": {Type: "PUBLIC KEY", Bytes: pubDER}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rsaKey := func(file string) []string {
		return []string{"-w", "provider=raw-rsa", "key-file=" + file, "namespace=encjob", "name=rsa", "padding=oaep-sha256"}
	}

	r := encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc", "-r", rawKey, rsaKey("rsa.pub.pem"), "-S")...)
	wantCode(t, r, 0)
	for name := range files {
		f, err := os.Open(filepath.Join(dir, "enc", name+".encrypted"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := crypto.ParseHeader(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The AES key generated (its EDK first); the RSA key wrapped it too.
		var labels []string
		for _, e := range h.EncryptedDataKeys {
			labels = append(labels, keygroup.EDKLabel(e))
		}
		if !slices.Equal(labels, []string{"encjob/test", "encjob/rsa"}) {
			t.Fatalf("%s: EDKs %q, want the AES key's then the RSA key's", name, labels)
		}
	}

	for _, tc := range []struct {
		name string
		key  []string
	}{{"rsa only", rsaKey("rsa.pem")}, {"aes only", rawKey}} {
		out := filepath.Join(dir, "dec-"+strings.ReplaceAll(tc.name, " ", "-"))
		os.Mkdir(out, 0o755)
		r := encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", out, "-r", tc.key, "--strip-suffix", "-S")...)
		wantCode(t, r, 0)
		for name, want := range files {
			if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %s not decrypted back byte-identical: %v", tc.name, name, err)
			}
		}
	}

	// A key of neither group decrypts nothing.
	other := make([]byte, 32)
	rand.Read(other)
	os.WriteFile(filepath.Join(dir, "other.key"), other, 0o600)
	os.Mkdir(filepath.Join(dir, "dec-other"), 0o755)
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", "dec-other", "-r", "-w", "provider=raw-aes", "key-file=other.key", "namespace=encjob", "name=other", "--strip-suffix", "-S")...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "3 failed") || !strings.Contains(r.stderr, "message keys: encjob/test, encjob/rsa") {
		t.Fatalf("stderr does not report the items failed for want of a key:\n%s", r.stderr)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "dec-other")); len(left) != 0 {
		t.Fatalf("a failed decrypt left %d entries in its output", len(left))
	}
}
