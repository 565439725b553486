package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto/keystore/keystoretest"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const hierKMSKey = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-4111-8111-111111111111"

// encjobHier runs the binary against kmsemu and dynamodb-server: endpoints
// and static credentials from the environment, as for real AWS.
func encjobHier(t *testing.T, kms *kmsemutest.Server, ddb *keystoretest.Server, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "AWS_ENDPOINT_URL_KMS="+kms.URL, "AWS_ENDPOINT_URL_DYNAMODB="+ddb.Endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running encjob: %v", err)
	}
	return result{so.String(), se.String(), code}
}

func ddbTotal(t *testing.T, ddb *keystoretest.Server) map[string]int64 {
	out := map[string]int64{}
	for k, v := range ddb.Calls(t) {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TestE2EHierarchyRotateWorkflow is the README's branch key rotation
// workflow through the real binary: keystore create-key, encrypt 300
// files with -w provider=aws-kms-hierarchy, keystore version-key,
// re-encrypt them under the new version, inspect and describe; the KMS and
// DynamoDB calls are counted at the servers.
func TestE2EHierarchyRotateWorkflow(t *testing.T) {
	kms := kmsemutest.Start(t, "account: \"111122223333\"\nregion: us-east-1\nkeys:\n  - id: 11111111-1111-4111-8111-111111111111\n")
	ddb := keystoretest.Start(t)
	ddb.CreateTable(t, "branch-keys")
	dir := t.TempDir()
	const n = 300
	for i := range n {
		p := filepath.Join(dir, "in", fmt.Sprintf("f%03d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("message %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"enc", "re", "dec"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	ks := []string{"--table", "branch-keys", "--kms-key", hierKMSKey}
	r := encjobHier(t, kms, ddb, dir, append([]string{"keystore", "create-key", "--json"}, ks...)...)
	wantCode(t, r, 0)
	var created struct{ BranchKeyID, Version string }
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.BranchKeyID == "" {
		t.Fatalf("create-key output %q: %v", r.stdout, err)
	}
	w := func(extra ...string) []string {
		return append([]string{"provider=aws-kms-hierarchy", "table=branch-keys", "kms-key=" + hierKMSKey,
			"branch-key-id=" + created.BranchKeyID, "cache-ttl=10m"}, extra...)
	}
	kms.Emu.ResetCalls()
	ddb.ResetCalls(t)
	wantCode(t, encjobHier(t, kms, ddb, dir, args("-e", "-i", "in", "-r", "-o", "enc", "-S", "--concurrency", "8", "-w", w())...), 0)
	// One GetItem when the key group is built (the active version, for
	// planning; no KMS call), one GetItem + one KMS Decrypt for the branch
	// key all workers share.
	if d, k := ddbTotal(t, ddb), kms.Emu.CallCount("Decrypt"); d["GetItem"] != 2 || len(d) != 1 || k != 1 {
		t.Fatalf("encrypting %d files: DynamoDB %v, %d KMS Decrypt; want 2 GetItem and 1 Decrypt", n, d, k)
	}
	r = encjobHier(t, kms, ddb, dir, "inspect", "enc/f000.encrypted")
	wantCode(t, r, 0)
	if want := "aws-kms-hierarchy/" + created.BranchKeyID + ":" + created.Version; !strings.Contains(r.stdout, want) {
		t.Fatalf("inspect does not name %s:\n%s", want, r.stdout)
	}

	r = encjobHier(t, kms, ddb, dir, append([]string{"keystore", "version-key", "--json", "--branch-key-id", created.BranchKeyID}, ks...)...)
	wantCode(t, r, 0)
	var rotated struct{ Version string }
	if err := json.Unmarshal([]byte(r.stdout), &rotated); err != nil || rotated.Version == "" || rotated.Version == created.Version {
		t.Fatalf("version-key output %q: %v", r.stdout, err)
	}
	kms.Emu.ResetCalls()
	ddb.ResetCalls(t)
	wantCode(t, encjobHier(t, kms, ddb, dir, args("reencrypt", "-i", "enc", "-r", "-o", "re", "-S", "--concurrency", "8",
		"--source-wrapping-keys", w(), "-w", w())...), 0)
	var kmsCalls int64
	for _, v := range kms.Emu.Calls() {
		kmsCalls += v
	}
	d := ddbTotal(t, ddb)
	t.Logf("re-encrypting %d files under the rotated branch key: DynamoDB %v, KMS %d calls", n, d, kmsCalls)
	// Two planning reads (source and target group, no KMS call), then
	// one key store read each for the old version and the new active one.
	if d["GetItem"] != 4 || len(d) != 1 || kmsCalls != 2 {
		t.Fatalf("re-encrypting %d files: DynamoDB %v, %d KMS calls; want 4 GetItem and 2 KMS Decrypt", n, d, kmsCalls)
	}
	reNames, _ := filepath.Glob(filepath.Join(dir, "re", "f*"))
	if len(reNames) != n {
		t.Fatalf("re-encrypt wrote %d files, want %d", len(reNames), n)
	}
	reName := filepath.Base(reNames[0]) // f000…
	r = encjobHier(t, kms, ddb, dir, "inspect", "re/"+reName)
	if want := "aws-kms-hierarchy/" + created.BranchKeyID + ":" + rotated.Version; !strings.Contains(r.stdout, want) {
		t.Fatalf("re-encrypted message not under the new version %s:\n%s\n%s", want, r.stdout, r.stderr)
	}
	wantCode(t, encjobHier(t, kms, ddb, dir, args("-d", "-i", "re", "-r", "-o", "dec", "-S", "-w", w())...), 0)
	got, err := os.ReadFile(filepath.Join(dir, "dec", reName+".decrypted"))
	if err != nil || string(got) != "message 0" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	r = encjobHier(t, kms, ddb, dir, append([]string{"keystore", "describe", "--branch-key-id", created.BranchKeyID}, ks...)...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, created.Version) || !strings.Contains(r.stdout, rotated.Version+"  created") || !strings.Contains(r.stdout, "active") {
		t.Fatalf("describe:\n%s", r.stdout)
	}
	// Typed failures: an unknown branch key, a chosen id without context.
	r = encjobHier(t, kms, ddb, dir, append([]string{"keystore", "version-key", "--branch-key-id", "nope"}, ks...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "branch key not found") {
		t.Fatalf("version-key of an unknown key: %d %s", r.code, r.stderr)
	}
	r = encjobHier(t, kms, ddb, dir, append([]string{"keystore", "create-key", "--branch-key-id", "mine"}, ks...)...)
	if r.code != 2 || !strings.Contains(r.stderr, "custom encryption context") {
		t.Fatalf("create-key with an id and no context: %d %s", r.code, r.stderr)
	}
}

const hierRotateJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: rotate}
spec:
  operation: reencrypt
  sources: [{path: ./src}]
  output: {inPlace: true}
  keyGroups:
    hier:
      provider: aws-kms-hierarchy
      keyStore: {table: branch-keys, kmsKey: "KMSKEY"}
      branchKeyId: BKID
      cacheTTL: 10m
  decrypt: {keyGroup: hier}
  encrypt: {keyGroup: hier}
`

// TestE2EHierarchyPlanRotation: a reencrypt job from and to the same
// hierarchical key group plans nothing while every item is under the
// active branch key version, every item after a rotation, and nothing
// again once applied.
func TestE2EHierarchyPlanRotation(t *testing.T) {
	kms := kmsemutest.Start(t, "account: \"111122223333\"\nregion: us-east-1\nkeys:\n  - id: 11111111-1111-4111-8111-111111111111\n")
	ddb := keystoretest.Start(t)
	ddb.CreateTable(t, "branch-keys")
	dir := t.TempDir()
	const n = 20
	for i := range n {
		p := filepath.Join(dir, "plain", fmt.Sprintf("f%02d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(fmt.Sprintf("message %d", i)), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "src"), 0o755)
	ks := []string{"--table", "branch-keys", "--kms-key", hierKMSKey}
	r := encjobHier(t, kms, ddb, dir, append([]string{"keystore", "create-key", "--json"}, ks...)...)
	wantCode(t, r, 0)
	var created struct{ BranchKeyID string }
	json.Unmarshal([]byte(r.stdout), &created)
	wantCode(t, encjobHier(t, kms, ddb, dir, args("-e", "-i", "plain", "-r", "-o", "src", "-S", "--suffix", "", "-w",
		"provider=aws-kms-hierarchy", "table=branch-keys", "kms-key="+hierKMSKey, "branch-key-id="+created.BranchKeyID, "cache-ttl=1m")...), 0)
	job := strings.NewReplacer("KMSKEY", hierKMSKey, "BKID", created.BranchKeyID).Replace(hierRotateJob)
	os.WriteFile(filepath.Join(dir, "rotate.yaml"), []byte(job), 0o644)
	plan := func(want string) {
		t.Helper()
		r := encjobHier(t, kms, ddb, dir, "plan", "-f", "rotate.yaml")
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("plan: want %q in\n%s%s", want, r.stdout, r.stderr)
		}
	}
	kms.Emu.ResetCalls()
	plan(fmt.Sprintf("0 to re-encrypt (~), 0 to rewrap (^), %d unchanged", n))
	if c := kms.Emu.Calls(); c["Decrypt"] != 0 {
		t.Errorf("plan made %d KMS Decrypt calls, want none", c["Decrypt"])
	}
	wantCode(t, encjobHier(t, kms, ddb, dir, append([]string{"keystore", "version-key", "--branch-key-id", created.BranchKeyID}, ks...)...), 0)
	plan(fmt.Sprintf("%d to re-encrypt (~), 0 to rewrap (^), 0 unchanged", n))
	var rotated struct{ Version string }
	r = encjobHier(t, kms, ddb, dir, append([]string{"keystore", "describe", "--json", "--branch-key-id", created.BranchKeyID}, ks...)...)
	wantCode(t, r, 0)
	json.Unmarshal([]byte(r.stdout), &struct{ ActiveVersion *string }{&rotated.Version})
	wantCode(t, encjobHier(t, kms, ddb, dir, "apply", "-f", "rotate.yaml", "--auto-approve"), 0)
	plan(fmt.Sprintf("0 to re-encrypt (~), 0 to rewrap (^), %d unchanged", n))
	// The plan names each item's branch key id and version (headers only).
	r = encjobHier(t, kms, ddb, dir, "plan", "-f", "rotate.yaml", "--json")
	wantCode(t, r, 0)
	if want := "aws-kms-hierarchy/" + created.BranchKeyID + ":" + rotated.Version; rotated.Version == "" || strings.Count(r.stdout, want) != n {
		t.Fatalf("plan --json: want %d items with key id %s:\n%s", n, want, r.stdout)
	}
}
