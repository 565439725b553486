package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/sources/s3test"
)

// A job writing to an S3-compatible server that ignores conditional
// writes (a loopback proxy in front of versitygw drops the headers):
// without s3.noConditionalWrites the binary writes nothing and every item
// fails naming the setting; with it the outputs are written, and a second
// run with overwrite never refuses them (the HEAD check) instead of
// replacing them.
func TestS3WithoutConditionalWritesBinary(t *testing.T) {
	srv := s3test.Start(t)
	view := srv.WithoutConditionalWrites(t, s3test.IgnoreConditions)
	srv.CreateBucket(t, "nocond")
	dir, files := setup(t)
	env := s3BinEnv(dir, view.Env())
	run := func(prefix, s3 string) result {
		t.Helper()
		y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: nocond}
spec:
  operation: encrypt
  sources: [{path: in}]
  output: {path: "s3://nocond/%s/"}
  keyGroups:
    dev: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  encrypt: {keyGroup: dev}
  s3: {%s}
`, prefix, s3)
		job := filepath.Join(dir, "job-"+prefix+".yaml")
		if err := os.WriteFile(job, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return encjobEnv(t, dir, env, nil, "apply", "-f", job, "--auto-approve", "--no-progress")
	}
	objects := func(prefix string) map[string]string {
		out, err := srv.Client.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String("nocond"), Prefix: aws.String(prefix + "/")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, o := range out.Contents {
			m[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
		return m
	}

	res := run("strict", "pathStyle: true")
	t.Logf("without s3.noConditionalWrites: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	wantCode(t, res, 1)
	if !strings.Contains(res.stderr+res.stdout, "s3.noConditionalWrites") || !strings.Contains(res.stderr+res.stdout, "does not honour conditional writes") {
		t.Fatalf("the failure does not say why and what to set:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
	}
	if got := objects("strict"); len(got) != 0 {
		t.Fatalf("objects written to a server without conditional writes: %v", got)
	}

	res = run("head", "pathStyle: true, noConditionalWrites: true")
	wantCode(t, res, 0)
	first := objects("head")
	if len(first) != len(files) {
		t.Fatalf("%d outputs, want %d: %v", len(first), len(files), first)
	}
	// Another source version under the same names: planned as conflicts
	// or refused by the HEAD check, never written over.
	for name := range files {
		os.WriteFile(filepath.Join(dir, "in", name), []byte("changed "+name), 0o644)
	}
	res = run("head", "pathStyle: true, noConditionalWrites: true")
	t.Logf("second run: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	if again := objects("head"); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("outputs replaced by the second run:\nbefore %v\nafter  %v", first, again)
	}
}
