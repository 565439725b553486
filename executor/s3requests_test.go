package executor_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
)

const s3Encrypt = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: t}
spec:
  operation: encrypt
  sources: [{path: "s3://src/p/"}]
  output: {path: "s3://dst/enc/"}
  keyGroups:
    dev: {provider: raw-aes, keyFile: "${KEY}", namespace: encjob, name: dev, generate: true}
  encrypt: {keyGroup: dev, context: {tenant: acme}}
  execution: {concurrency: 8, retries: 0}
`

// An S3 -> S3 encryption costs exactly its GET and its PUT per object
// (plus one probe PUT per destination and run):
// the destination's state comes from one listing, the write's condition
// (If-None-Match: *) is the overwrite check, and the source is read with
// a GET conditional on its planned ETag - no HEAD anywhere. A second run
// reads each output's provenance (one HEAD) and header (one range GET)
// and writes nothing. An object that appears at an output key between
// plan and apply is not overwritten.
func TestS3RequestsPerObject(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket(t, "src")
	srv.CreateBucket(t, "dst")
	ctx := context.Background()
	const n = 40
	for i := range n {
		b := bytes.Repeat([]byte{byte(i)}, 1000+i)
		if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(fmt.Sprintf("p/d%d/o%02d", i%3, i)), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	client, counter := srv.NewCountingClient()
	job := loadJob(t, s3Encrypt, map[string]string{"KEY": filepath.Join(t.TempDir(), "k")})
	phase := func(name string, before func(*planner.Plan)) (map[string]int64, *planner.Plan, *executor.Summary) {
		t.Helper()
		rt, err := planner.Prepare(ctx, job, planner.Options{S3Client: client})
		if err != nil {
			t.Fatalf("%s: prepare: %v", name, err)
		}
		c0 := counter.Requests()
		p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "t"})
		if err != nil {
			t.Fatalf("%s: plan: %v", name, err)
		}
		if before != nil {
			before(p)
		}
		sum, err := executor.Apply(ctx, rt, p, executor.Options{})
		if err != nil {
			t.Fatalf("%s: apply: %v", name, err)
		}
		got := counter.Requests()
		for op, k := range c0 {
			if got[op] -= k; got[op] == 0 {
				delete(got, op)
			}
		}
		return got, p, sum
	}

	got, _, sum := phase("first run", nil)
	if !sum.OK() || sum.Done[planner.Encrypt] != n {
		t.Fatalf("first run: %v done, failed %v", sum.Done, sum.Failed)
	}
	// Two listings: the source and the destination prefix; three
	// PutObjects more than objects and one DeleteObject: the destination's
	// probe that the server honours conditional writes, once per run
	// (If-Match on a missing key, refused; the key created; If-None-Match
	// over it, refused; the key removed).
	want := map[string]int64{"ListObjectsV2": 2, "GetObject": n, "PutObject": n + 3, "DeleteObject": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("first run: requests %v, want %v", got, want)
	}

	got, p, sum := phase("second run", nil)
	if c := p.Counts(); c[planner.Unchanged] != n {
		t.Fatalf("second run planned %v, want %d unchanged", c, n)
	}
	want = map[string]int64{"ListObjectsV2": 2, "HeadObject": n, "GetObject": n}
	if !maps.Equal(got, want) || !sum.OK() {
		t.Fatalf("second run: requests %v, want %v (failed %v)", got, want, sum.Failed)
	}

	// A new source object; its output key is taken by another writer after
	// planning, before apply.
	if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("p/late"), Body: bytes.NewReader([]byte("late"))}); err != nil {
		t.Fatal(err)
	}
	_, p, sum = phase("race", func(p *planner.Plan) {
		if c := p.Counts(); c[planner.Encrypt] != 1 {
			t.Fatalf("race: planned %v, want one encrypt", c)
		}
		if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("dst"), Key: aws.String("enc/late.encrypted"), Body: bytes.NewReader([]byte("theirs"))}); err != nil {
			t.Fatal(err)
		}
	})
	if sum.OK() || len(sum.Failed) != 1 {
		t.Fatalf("race: the write over an object that appeared after planning did not fail: %v", sum.Failed)
	}
	obj, err := srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("enc/late.encrypted")})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(obj.Body)
	obj.Body.Close()
	if b.String() != "theirs" {
		t.Fatalf("the other writer's object was replaced (%d bytes)", b.Len())
	}
}
