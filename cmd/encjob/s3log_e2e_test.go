package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/sources/s3test"
)

// TestS3MetadataLogNeverReplacesData: an S3 metadata log is uploaded
// whole at the end, replacing the object at its key. Named as a source
// object (a message the run skips as "encjob's own metadata log"), the
// upload replaced the only copy of that ciphertext. An existing object
// that is not a metadata log is refused with exit 2 before any item; a
// log from an earlier run is replaced, as documented.
func TestS3MetadataLogNeverReplacesData(t *testing.T) {
	dir, _ := setup(t)
	bucket := "logs"
	srv := s3test.Start(t)
	srv.CreateBucket(t, bucket)
	env := s3BinEnv(dir, srv.Env())
	wantCode(t, encjobEnv(t, dir, env, nil, args("encrypt", "-i", "in", "-r", "-o", "s3://logs/in/", "-S", rawKey)...), 0)
	get := func(key string) []byte {
		t.Helper()
		out, err := srv.Client.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	msg := get("in/b/c.bin.encrypted")
	for _, log := range []string{"s3://logs/in/b/c.bin.encrypted", "s3://logs/in/a.txt.encrypted"} {
		r := encjobEnv(t, dir, env, nil, args("decrypt", "-i", "s3://logs/in/", "-r", "-o", "dec", "--metadata-output", log, rawKey)...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, "exists and is not a metadata log") {
			t.Errorf("%s: %s", log, r.stderr)
		}
	}
	if !bytes.Equal(get("in/b/c.bin.encrypted"), msg) {
		t.Fatal("the source object was replaced")
	}
	// A log of an earlier run is replaced by the next one.
	for range 2 {
		wantCode(t, encjobEnv(t, dir, env, nil, args("decrypt", "-i", "s3://logs/in/", "-r", "-o", "dec", "--metadata-output", "s3://logs/runs/run.jsonl", rawKey)...), 0)
	}
	if b := get("runs/run.jsonl"); !bytes.HasPrefix(b, []byte(`{"mode":"decrypt"`)) {
		t.Errorf("log: %.80s", b)
	}
}

// s3BinEnv is the environment of a binary run against a test S3 server:
// its credentials and endpoint, and no other AWS configuration.
func s3BinEnv(dir string, server []string) []string {
	env := append(cleanEnv(), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	return append(env, server...)
}
