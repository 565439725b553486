package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// runEnv runs the binary in dir with the clean environment plus extra,
// and a HOME of its own (no ~/.aws of the machine running the tests).
func runEnv(t *testing.T, dir string, extra []string, a ...string) (result, time.Duration) {
	t.Helper()
	cmd := exec.Command(binPath, a...)
	home := t.TempDir()
	cmd.Dir = dir
	cmd.Env = append(append(cleanEnv(), "HOME="+home), extra...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{so.String(), se.String(), code}, el
}

func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "encjob: error:") || strings.Contains(l, "failed:") || strings.HasPrefix(l, "SDK ") {
			out = append(out, l)
		}
	}
	return out
}

// wantSetupError checks a run stopped before any item: exit 2, one error
// line containing want, nothing written, within limit.
func wantSetupError(t *testing.T, r result, el time.Duration, limit time.Duration, want string, dir string) {
	t.Helper()
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
	}
	lines := errorLines(r.stderr)
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("want one error line containing %q, got %q\nstderr: %s", want, lines, r.stderr)
	}
	if el > limit {
		t.Fatalf("took %v, want under %v", el, limit)
	}
	if len(r.stderr) > 1000 {
		t.Errorf("stderr is %d bytes: %s", len(r.stderr), r.stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "enc")); len(ents) != 0 {
		t.Errorf("outputs written before the setup error: %v", ents)
	}
}

const noCredsARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestE2ENoCredentials: a run without any AWS credentials fails once,
// before any item, with exit 2, one short error line and no SDK lines.
func TestE2ENoCredentials(t *testing.T) {
	dir, _ := setup(t)
	env := []string{"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
	for _, a := range [][]string{
		{"encrypt", "-i", "in", "-o", "enc", "-r", "-S", "-w", "key=" + noCredsARN},
		{"encrypt", "-i", "in", "-o", "enc", "-r", "-S", "-w", "key=" + noCredsARN, "--log-level", "debug", "--log-format", "json"},
	} {
		r, el := runEnv(t, dir, env, a...)
		wantSetupError(t, r, el, 10*time.Second, "no AWS credentials", dir)
		if strings.Contains(a[len(a)-1], "json") {
			// The SDK's details are debug records, as JSON, never raw.
			for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if !strings.HasPrefix(l, "encjob:") && !json.Valid([]byte(l)) {
					t.Errorf("stderr line neither encjob's nor a JSON record: %q", l)
				}
			}
		}
	}
	// A spec job: the same.
	writeFile(t, filepath.Join(dir, "job.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: nocreds}
spec:
  operation: encrypt
  keyGroups:
    k: {provider: aws-kms, keys: ["`+noCredsARN+`"]}
  encrypt: {keyGroup: k}
  sources: [{path: in}]
  output: {path: enc}
  execution: {onError: continue}
`), 0o644)
	r, el := runEnv(t, dir, env, "apply", "-f", "job.yaml")
	wantSetupError(t, r, el, 10*time.Second, "no AWS credentials", dir)
}

const preflightSeed = `account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
  - id: 22223333-4444-5555-6666-777788889999
    enabled: false
  - id: 33334444-5555-6666-7777-888899990000
    allowedOperations: [Decrypt]
  - id: 44445555-6666-7777-8888-999900001111
    allowedOperations: [DescribeKey]
`

// TestE2EKMSSetupErrors: a disabled, missing or denied key, or an
// unreachable endpoint, is one setup error before any item (exit 2);
// a key denied only at GenerateDataKey stops the run at the first item
// even with onError: continue, and the items never begun are "not
// started".
func TestE2EKMSSetupErrors(t *testing.T) {
	srv := kmsemutest.Start(t, preflightSeed)
	arn := func(id string) string { return "arn:aws:kms:us-east-1:111122223333:key/" + id }
	env := []string{"AWS_ENDPOINT_URL_KMS=" + srv.URL, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true"}
	enc := func(key string) []string {
		return []string{"encrypt", "-i", "in", "-o", "enc", "-r", "-S", "-w", "key=" + key}
	}
	dir, _ := setup(t)
	// The good key works (and the preflight does not get in the way).
	r, _ := runEnv(t, dir, env, enc(arn("1234abcd-12ab-34cd-56ef-1234567890ab"))...)
	wantCode(t, r, 0)
	for _, tc := range []struct{ key, want string }{
		{arn("22223333-4444-5555-6666-777788889999"), "is disabled"},
		{arn("99999999-0000-0000-0000-000000000000"), "not found"},
		{arn("33334444-5555-6666-7777-888899990000"), "access denied"},
	} {
		dir, _ := setup(t)
		r, el := runEnv(t, dir, env, enc(tc.key)...)
		wantSetupError(t, r, el, 10*time.Second, tc.want, dir)
	}
	// Unreachable endpoint: a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	dir, _ = setup(t)
	r, el := runEnv(t, dir, append(append([]string(nil), env...), "AWS_ENDPOINT_URL_KMS="+closed), enc(arn("1234abcd-12ab-34cd-56ef-1234567890ab"))...)
	wantSetupError(t, r, el, 12*time.Second, "unreachable", dir)

	// Denied at GenerateDataKey only: the first item fails, the run stops.
	dir, _ = setup(t)
	r, _ = runEnv(t, dir, env, "encrypt", "-i", "in", "-o", "enc", "-r", "-w", "key="+arn("44445555-6666-7777-8888-999900001111"), "--concurrency", "1", "--metadata-output", "m.jsonl")
	recs := readMetadata(t, filepath.Join(dir, "m.jsonl"))
	status := map[string]int{}
	for _, rec := range recs {
		status[rec["status"].(string)]++
	}
	if status["failed"] != 1 || status["not started"] != 2 || status["done"] != 0 {
		t.Errorf("metadata statuses %v, want 1 failed and 2 not started", status)
	}
	if r.code != 2 || !strings.Contains(r.stderr, "stopped:") || !strings.Contains(r.stderr, "not started") || !strings.Contains(r.stderr, "1 failed") {
		t.Fatalf("denied GenerateDataKey: exit %d\n%s", r.code, r.stderr)
	}
}

// TestE2ERSAKeySetupErrors: a public-only RSA key cannot decrypt and a
// malformed PEM says what is wrong; both before any item, exit 2.
func TestE2ERSAKeySetupErrors(t *testing.T) {
	dir, _ := setup(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	writeFile(t, filepath.Join(dir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	writeFile(t, filepath.Join(dir, "bad.pem"), []byte("-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n"), 0o600)
	writeFile(t, filepath.Join(dir, "empty.pem"), []byte("hello\n"), 0o600)
	rsaW := func(file string) []string {
		return []string{"-w", "provider=raw-rsa", "key-file=" + file, "namespace=ns", "name=rsa", "padding=oaep-sha256"}
	}
	r := encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc", "-r", "-S", rsaW("pub.pem"))...)
	wantCode(t, r, 0)
	os.RemoveAll(filepath.Join(dir, "dec"))
	os.Mkdir(filepath.Join(dir, "dec"), 0o755)
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", "dec", "-r", "-S", rsaW("pub.pem"))...)
	wantCode(t, r, 2)
	if l := errorLines(r.stderr); len(l) != 1 || !strings.Contains(l[0], "holds only an RSA public key, which cannot decrypt") {
		t.Fatalf("public-only decrypt: %q", r.stderr)
	}
	for _, f := range []string{"bad.pem", "empty.pem"} {
		r = encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", "dec", "-r", "-S", rsaW(f))...)
		wantCode(t, r, 2)
		if l := errorLines(r.stderr); len(l) != 1 || !strings.Contains(l[0], f) {
			t.Fatalf("%s: %q", f, r.stderr)
		}
		t.Logf("%s: %s", f, errorLines(r.stderr)[0])
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "dec")); len(ents) != 0 {
		t.Fatalf("outputs written: %v", ents)
	}
}
