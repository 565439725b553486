package executor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
	"github.com/encjob/encjob/spec"
)

const seed = `account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
    aliases: [alias/east]
  - id: 0987dcba-09fe-87dc-65ba-ab0987654321
    region: eu-west-1
  - id: 22223333-4444-5555-6666-777788889999
`

type kmsEnv struct {
	srv  *kmsemutest.Server
	emu  *kmsemu.Emulator
	url  string
	east string // key ARN in us-east-1
	west string // key ARN in eu-west-1
	new  string // a third key, for migrations
}

// startKMS clears ambient AWS_* variables and starts the emulator.
func startKMS(t *testing.T) *kmsEnv {
	t.Helper()
	srv := kmsemutest.Start(t, seed)
	return &kmsEnv{srv: srv, emu: srv.Emu, url: srv.URL,
		east: srv.KeyARN(t, "alias/east", "us-east-1"),
		west: srv.KeyARN(t, "0987dcba-09fe-87dc-65ba-ab0987654321", "eu-west-1"),
		new:  srv.KeyARN(t, "22223333-4444-5555-6666-777788889999", "us-east-1")}
}

func (e *kmsEnv) options() planner.Options {
	return planner.Options{KMS: awskms.Config{Endpoint: e.url, Region: "us-east-1",
		Credentials: kmsemutest.Credentials}}
}

func runWith(t *testing.T, job *spec.Job, o planner.Options) runOut {
	t.Helper()
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, o)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "test"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	sum, err := executor.Apply(ctx, rt, p, executor.Options{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return runOut{plan: p, sum: sum}
}

func kmsJob(t *testing.T, op, in, out, encKeys, decKeys, extra string) *spec.Job {
	t.Helper()
	y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: kms}
spec:
  operation: %s
  sources: [{path: %q}]
  output: %s
  keyGroups:
    enc: {provider: aws-kms, keys: [%s]}
    dec: {provider: aws-kms, keys: [%s]}
%s`, op, in, outSpec(out), encKeys, decKeys, extra)
	switch op {
	case "encrypt":
		y += "  encrypt: {keyGroup: enc, context: {tenant: acme}}\n"
	case "reencrypt":
		y += "  encrypt: {keyGroup: enc}\n"
	}
	if op != "encrypt" {
		y += "  decrypt: {keyGroup: dec, requireContext: {tenant: acme}}\n"
	}
	return loadJob(t, y, nil)
}

// TestKMSTwoRegionGroup: a two-key group across two emulated regions
// wraps every data key twice; the second key alone decrypts.
func TestKMSTwoRegionGroup(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	files := writeTree(t, in, map[string]int{"a": 10, "b/c": 70000})
	enc, dec := filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
	r := runWith(t, kmsJob(t, "encrypt", in, enc, `alias/east, "`+k.west+`"`, `"`+k.east+`"`, ""), k.options())
	if !r.sum.OK() || r.sum.Done[planner.Encrypt] != 2 {
		t.Fatalf("encrypt: %+v", r.sum.Failed)
	}
	if n := k.emu.CallCount("GenerateDataKey"); n != 2 {
		t.Fatalf("GenerateDataKey calls %d, want 2", n)
	}
	if n := k.emu.CallCount("Encrypt"); n != 2 {
		t.Fatalf("Encrypt calls %d, want 2 (second key wraps each data key)", n)
	}
	r = runWith(t, kmsJob(t, "decrypt", enc, dec, `"`+k.new+`"`, `"`+k.west+`"`, ""), k.options())
	if !r.sum.OK() || r.sum.Done[planner.Decrypt] != 2 {
		t.Fatalf("decrypt with the second key: %+v", r.sum.Failed)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dec, name+".encrypted"))
		if err != nil {
			got, err = os.ReadFile(filepath.Join(dec, name))
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestKMSCachingCounts: 1,000 small encryptions with maxMessagesEncrypted
// 100 make at most 10 GenerateDataKey calls; without caching exactly 1,000.
func TestKMSCachingCounts(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	tree := map[string]int{}
	for i := range 1000 {
		tree[fmt.Sprintf("d%02d/f%04d", i%10, i)] = 64
	}
	writeTree(t, in, tree)
	for _, tc := range []struct {
		caching string
		max     int64
		exact   bool
	}{
		{"", 1000, true},
		{"  caching: {capacity: 10, maxAge: 5m, maxMessagesEncrypted: 100}\n", 10, false},
	} {
		k.emu.ResetCalls()
		out := filepath.Join(dir, fmt.Sprintf("out%d", tc.max))
		r := runWith(t, kmsJob(t, "encrypt", in, out, `"`+k.east+`"`, `"`+k.east+`"`, tc.caching), k.options())
		if !r.sum.OK() || r.sum.Done[planner.Encrypt] != 1000 {
			t.Fatalf("caching=%q: %d done, failures %v", tc.caching, r.sum.Done[planner.Encrypt], r.sum.Failed)
		}
		n := k.emu.CallCount("GenerateDataKey")
		if n > tc.max || (tc.exact && n != tc.max) {
			t.Fatalf("caching=%q: %d GenerateDataKey calls, want %s%d", tc.caching, n, map[bool]string{true: "", false: "<= "}[tc.exact], tc.max)
		}
		t.Logf("caching=%q: %d GenerateDataKey calls for 1000 files", strings.TrimSpace(tc.caching), n)
	}
}

// TestS3PrefixRoundTripWithKMS: a 1,000-object prefix encrypted S3 -> S3
// under a KMS key and decrypted back to local files byte for byte.
func TestS3PrefixRoundTripWithKMS(t *testing.T) {
	k := startKMS(t)
	srv := s3test.Start(t)
	srv.CreateBucket(t, "src")
	srv.CreateBucket(t, "dst")
	ctx := context.Background()
	want := map[string][]byte{}
	for i := range 1000 {
		key := fmt.Sprintf("p/%03d/obj-%04d.csv", i%17, i)
		b := make([]byte, 100+i)
		rand.Read(b)
		want[key] = b
		if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	o := k.options()
	o.S3Client = srv.Client
	r := runWith(t, kmsJob(t, "encrypt", "s3://src/p/", "s3://dst/enc/", `"`+k.east+`"`, `"`+k.east+`"`, "  caching: {maxAge: 1m, maxMessagesEncrypted: 1000}\n"), o)
	if !r.sum.OK() || r.sum.Done[planner.Encrypt] != 1000 {
		t.Fatalf("encrypt: %d done; %v", r.sum.Done[planner.Encrypt], r.sum.Failed)
	}
	local := t.TempDir()
	r = runWith(t, kmsJob(t, "decrypt", "s3://dst/enc/", local, `"`+k.east+`"`, `"`+k.east+`"`, ""), o)
	if !r.sum.OK() || r.sum.Done[planner.Decrypt] != 1000 {
		t.Fatalf("decrypt: %d done; %v", r.sum.Done[planner.Decrypt], r.sum.Failed)
	}
	for key, b := range want {
		rel := strings.TrimPrefix(key, "p/")
		got, err := os.ReadFile(filepath.Join(local, rel))
		if err != nil {
			got, err = os.ReadFile(filepath.Join(local, rel+".encrypted.decrypted"))
		}
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: %v", key, err)
		}
	}
	// Nothing of the plaintext reached the destination bucket.
	obj, err := srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("enc/000/obj-0000.csv.encrypted")})
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := io.ReadAll(obj.Body)
	if bytes.Contains(ct, want["p/000/obj-0000.csv"][:64]) {
		t.Fatal("plaintext found in the encrypted object")
	}
}

func outSpec(out string) string {
	if out == "" {
		return "{inPlace: true, verify: true}"
	}
	return fmt.Sprintf("{path: %q}", out)
}
