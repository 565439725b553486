package sources_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// A server that ignores or rejects conditional writes (emulated by a
// loopback proxy in front of versitygw) never gets an output written over
// an existing object: by default every conditional write of the
// destination fails with ErrNoConditionalWrites and writes nothing (the
// probe leaves no object); with NoConditionalWrites the destination
// checks with HEAD right before each write, and refuses what exists or
// changed, for single puts and multipart uploads alike.
func TestS3ServerWithoutConditionalWrites(t *testing.T) {
	srv := s3test.Start(t)
	for _, how := range []string{s3test.IgnoreConditions, s3test.RejectConditions} {
		t.Run(how, func(t *testing.T) {
			view := srv.WithoutConditionalWrites(t, how)
			bucket := newBucket(t, srv)
			proveEmulation(t, view.Client, bucket, how)
			t.Run("Default", func(t *testing.T) { testNoCondDefault(t, view, bucket, how) })
			t.Run("HeadCheck", func(t *testing.T) { testNoCondHead(t, view, bucket) })
		})
	}
}

// proveEmulation: through the proxy a PutObject with If-None-Match: * over
// an existing object is stored (ignore) or answered 501 (reject).
func proveEmulation(t *testing.T, c *awss3.Client, bucket, how string) {
	put(t, c, bucket, "emulation", []byte("v1"))
	k := "emulation"
	_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader([]byte("v2")), IfNoneMatch: aws.String("*")})
	got, _ := get(t, c, bucket, k)
	switch {
	case how == s3test.IgnoreConditions && (err != nil || string(got) != "v2"):
		t.Fatalf("ignoring proxy: conditional put over an existing object: err %v, object %q; want it stored", err, got)
	case how == s3test.RejectConditions && (err == nil || string(got) != "v1"):
		t.Fatalf("rejecting proxy: conditional put: err %v, object %q; want a refusal", err, got)
	}
}

func keys(t *testing.T, c *awss3.Client, bucket string) []string {
	out, err := c.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	for _, o := range out.Contents {
		l = append(l, aws.ToString(o.Key))
	}
	sort.Strings(l)
	return append(l, uploads(t, c, bucket)...)
}

func testNoCondDefault(t *testing.T, view *s3test.Server, bucket, how string) {
	c, counter := view.NewCountingClient()
	d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/out/"), sources.S3Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	put(t, view.Client, bucket, "out/there", []byte("theirs"))
	before := keys(t, view.Client, bucket)
	for _, data := range []string{"s", strings.Repeat("b", 6<<20)} {
		for _, k := range []string{"there", fmt.Sprintf("new-%d", len(data))} {
			err := commitFile(t, d, k, data, sources.CreateOptions{Overwrite: sources.OverwriteNever})
			var ce *sources.ConditionalWritesError
			if !errors.Is(err, sources.ErrNoConditionalWrites) || !errors.As(err, &ce) || ce.Ignored != (how == s3test.IgnoreConditions) {
				t.Fatalf("%d bytes to %s: err = %v, want ErrNoConditionalWrites (ignored: %v)", len(data), k, err, how == s3test.IgnoreConditions)
			}
			if !strings.Contains(err.Error(), "s3.noConditionalWrites") || sources.IsRetryable(err) {
				t.Fatalf("error does not name the fix or is retryable: %v", err)
			}
		}
	}
	if after := keys(t, view.Client, bucket); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("objects changed: before %q, after %q", before, after)
	}
	if b, _ := get(t, view.Client, bucket, "out/there"); string(b) != "theirs" {
		t.Fatalf("the existing object became %q", b)
	}
	if n := counter.Requests()["PutObject"]; n != 1 {
		t.Fatalf("%d PutObject requests, want the one probe (its failure is kept): %v", n, counter.Requests())
	}
	// OverwriteAlways carries no condition: nothing to probe, written.
	if err := commitFile(t, d, "always", "x", sources.CreateOptions{Overwrite: sources.OverwriteAlways}); err != nil {
		t.Fatalf("unconditional write: %v", err)
	}
}

func testNoCondHead(t *testing.T, view *s3test.Server, bucket string) {
	c, counter := view.NewCountingClient()
	d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/head/"), sources.S3Options{Client: c, NoConditionalWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/head/"), sources.S3Options{Client: c})
	ctx := context.Background()
	commits := 0
	for _, data := range []string{"s", strings.Repeat("b", 6<<20)} {
		name := fmt.Sprint(len(data))
		commits += 5
		if err := commitFile(t, d, "new-"+name, data, sources.CreateOptions{Overwrite: sources.OverwriteNever}); err != nil {
			t.Fatalf("%s bytes, new key: %v", name, err)
		}
		put(t, view.Client, bucket, "head/there-"+name, []byte("theirs"))
		wantConflictErr(t, commitFile(t, d, "there-"+name, data, sources.CreateOptions{Overwrite: sources.OverwriteNever}), sources.ConflictExists)
		put(t, view.Client, bucket, "head/inplace-"+name, []byte("v1"))
		it, err := s.Stat(ctx, "inplace-"+name)
		if err != nil {
			t.Fatal(err)
		}
		put(t, view.Client, bucket, "head/inplace-"+name, []byte("v2"))
		wantConflictErr(t, commitFile(t, d, "inplace-"+name, data, sources.CreateOptions{IfMatch: it.Print}), sources.ConflictChanged)
		view.Client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("head/inplace-" + name)})
		wantConflictErr(t, commitFile(t, d, "inplace-"+name, data, sources.CreateOptions{IfMatch: it.Print}), sources.ConflictChanged)
		put(t, view.Client, bucket, "head/match-"+name, []byte("v1"))
		it, err = s.Stat(ctx, "match-"+name)
		if err != nil {
			t.Fatal(err)
		}
		if err := commitFile(t, d, "match-"+name, data, sources.CreateOptions{IfMatch: it.Print}); err != nil {
			t.Fatalf("%s bytes, in place over the planned version: %v", name, err)
		}
		if b, _ := get(t, view.Client, bucket, "head/there-"+name); string(b) != "theirs" {
			t.Fatalf("%s bytes: the existing object became %d bytes", name, len(b))
		}
		if b, _ := get(t, view.Client, bucket, "head/match-"+name); string(b) != data {
			t.Fatalf("%s bytes: the in-place output is %d bytes", name, len(b))
		}
		if _, ok := get(t, view.Client, bucket, "head/inplace-"+name); ok {
			t.Fatalf("%s bytes: an in-place write over a removed object created it", name)
		}
	}
	if got := uploads(t, view.Client, bucket); len(got) != 0 {
		t.Fatalf("multipart uploads left: %q", got)
	}
	// One HEAD per commit (plus the test's own 4 Stat calls).
	if n := counter.Requests()["HeadObject"]; n != int64(commits+4) {
		t.Fatalf("%d HeadObject requests, want %d: %v", n, commits+4, counter.Requests())
	}
}

// TestS3ServerPartialConditionalWrites: a server that honours one
// conditional header and not the other, or honours them on PutObject but
// not on CompleteMultipartUpload, is found out by the probe before any
// output: the writes it would not guard fail with ErrNoConditionalWrites
// naming the check, what exists is never overwritten (a new output, an
// in-place output over a changed object), and no probe object or upload
// is left. Writes of a kind it does guard go on.
func TestS3ServerPartialConditionalWrites(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	big := strings.Repeat("b", 6<<20) // a multipart upload
	for _, c := range []struct {
		how   string
		check string // in the error of the writes that fail
		small bool   // single PutObjects are guarded
	}{
		{s3test.IgnoreIfNoneMatch, "If-None-Match: * on a PutObject", false},
		{s3test.IgnoreIfMatch, "If-Match on a PutObject", false},
		{s3test.IgnoreOnComplete, "If-None-Match: * on a CompleteMultipartUpload", true},
	} {
		t.Run(c.how, func(t *testing.T) {
			view := srv.WithoutConditionalWrites(t, c.how)
			bucket := newBucket(t, srv)
			d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/out/"), sources.S3Options{Client: view.Client})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/out/"), sources.S3Options{Client: view.Client})
			put(t, view.Client, bucket, "out/there", []byte("theirs"))
			put(t, view.Client, bucket, "out/inplace", []byte("v1"))
			planned, err := s.Stat(ctx, "inplace")
			if err != nil {
				t.Fatal(err)
			}
			put(t, view.Client, bucket, "out/inplace", []byte("v2"))
			for _, data := range []string{"s", big} {
				guarded := c.small && len(data) < len(big)
				for _, w := range []struct {
					key string
					o   sources.CreateOptions
					// what a guarded write gets
					conflict string
				}{
					{"there", sources.CreateOptions{Overwrite: sources.OverwriteNever}, sources.ConflictExists},
					{"inplace", sources.CreateOptions{IfMatch: planned.Print}, sources.ConflictChanged},
					{fmt.Sprint("new-", len(data)), sources.CreateOptions{Overwrite: sources.OverwriteNever}, ""},
				} {
					err := commitFile(t, d, w.key, data, w.o)
					switch {
					case !guarded:
						var ce *sources.ConditionalWritesError
						if !errors.Is(err, sources.ErrNoConditionalWrites) || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.check) {
							t.Fatalf("%d bytes to %s: %v, want ErrNoConditionalWrites naming %q", len(data), w.key, err, c.check)
						}
					case w.conflict != "":
						wantConflictErr(t, err, w.conflict)
					case err != nil:
						t.Fatalf("%d bytes to new key %s on a server that guards it: %v", len(data), w.key, err)
					}
				}
			}
			if b, _ := get(t, view.Client, bucket, "out/there"); string(b) != "theirs" {
				t.Fatalf("the existing object became %d bytes", len(b))
			}
			if b, _ := get(t, view.Client, bucket, "out/inplace"); string(b) != "v2" {
				t.Fatalf("the changed object became %d bytes", len(b))
			}
			for _, k := range keys(t, view.Client, bucket) {
				if strings.Contains(k, "conditional-probe") {
					t.Fatalf("probe left: %s", k)
				}
			}
			if got := uploads(t, view.Client, bucket); len(got) != 0 {
				t.Fatalf("multipart uploads left: %q", got)
			}
		})
	}
}
