package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentServer accepts TCP connections on loopback, reads whatever
// arrives and never answers: a KMS or S3 endpoint that hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// runTimed runs the binary with fake AWS credentials and returns the
// result and how long it took; a run over a minute fails the test (a
// hang), the bound under test is much smaller.
func runTimed(t *testing.T, dir string, a ...string) (result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, a...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("encjob %q hung (killed after a minute); stderr: %s", a, se.String())
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return result{so.String(), se.String(), cmd.ProcessState.ExitCode()}, took
}

// TestKMSTimeout is issue 12.15 for KMS: the key group's endpoint accepts
// and never answers. Each attempt fails after kms.timeout, the item is
// retried (the timeout is retryable) and then fails for good, and the run
// ends: exit 1, the cause named, in bounded time.
func TestKMSTimeout(t *testing.T) {
	dir, _ := setup(t)
	url := silentServer(t)
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: hang}
spec:
  operation: encrypt
  sources: [{path: ./in/b/c.bin}]
  output: {path: ./enc}
  keyGroups:
    k: {provider: aws-kms, keys: ["arn:aws:kms:us-east-1:111122223333:key/1111aaaa-11aa-11aa-11aa-1111aaaa1111"], endpoint: "`+url+`"}
  encrypt: {keyGroup: k}
  kms: {timeout: 300ms, maxAttempts: 2}
  execution: {retries: 2}
  metadata: {output: ./log.jsonl}
`), 0o644)
	r, took := runTimed(t, dir, "apply", "-f", "job.yaml")
	t.Logf("KMS endpoint that never answers: exit %d after %v", r.code, took)
	// The preflight DescribeKey (bounded, before any item) finds the
	// endpoint silent: one setup error, exit 2 (docs/cli.md, Setup errors).
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "unreachable") || !strings.Contains(r.stderr, "no answer") {
		t.Errorf("stderr does not say the endpoint did not answer:\n%s", r.stderr)
	}
	// 3 item attempts × 2 SDK attempts × 300 ms, plus backoffs.
	if took > 30*time.Second {
		t.Errorf("took %v", took)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "enc")); len(entries) != 0 {
		t.Errorf("output left: %v", entries)
	}
}

// TestS3Timeout is issue 12.15 for S3: the S3 endpoint accepts and never
// answers; the run ends with the cause named instead of hanging.
func TestS3Timeout(t *testing.T) {
	dir, _ := setup(t)
	url := silentServer(t)
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: hang}
spec:
  operation: encrypt
  sources: [{path: "s3://bucket/in/"}]
  output: {path: ./enc}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}
  encrypt: {keyGroup: dev}
  s3: {endpoint: "`+url+`", pathStyle: true, timeout: 300ms}
`), 0o644)
	r, took := runTimed(t, dir, "apply", "-f", "job.yaml")
	t.Logf("S3 endpoint that never answers: exit %d after %v", r.code, took)
	if r.code == 0 || !strings.Contains(r.stderr, "timeout") {
		t.Errorf("exit %d; stderr does not name the timeout:\n%s", r.code, r.stderr)
	}
	if took > 30*time.Second {
		t.Errorf("took %v", took)
	}
}
