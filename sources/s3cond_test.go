package sources_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// testS3ServerConditionalWrites proves the test server (versitygw v1.8.0)
// enforces on its own (without the HeadObject check S3Destination adds): If-Match and
// If-None-Match on PutObject and CompleteMultipartUpload.
func testS3ServerConditionalWrites(t *testing.T, c *awss3.Client, bucket string) {
	ctx := context.Background()
	put(t, c, bucket, "o", []byte("v1"))
	code := func(err error) string {
		if err == nil {
			return "ok"
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return err.Error()
	}
	k := "o"
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader([]byte("x")), IfMatch: aws.String(`"nope"`)})
	putIfMatch := code(err)
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader([]byte("x")), IfNoneMatch: aws.String("*")})
	putIfNone := code(err)
	mpu, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &bucket, Key: &k})
	if err != nil {
		t.Fatal(err)
	}
	pn := int32(1)
	part, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: &bucket, Key: &k, UploadId: mpu.UploadId, PartNumber: &pn, Body: bytes.NewReader([]byte("p"))})
	if err != nil {
		t.Fatal(err)
	}
	parts := &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: &pn, ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32}}}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &k, UploadId: mpu.UploadId, MultipartUpload: parts, IfMatch: aws.String(`"nope"`)})
	mpuIfMatch := code(err)
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &k, UploadId: mpu.UploadId, MultipartUpload: parts, IfNoneMatch: aws.String("*")})
	mpuIfNone := code(err)
	c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &bucket, Key: &k, UploadId: mpu.UploadId})
	for name, got := range map[string]string{"PutObject If-Match": putIfMatch, "PutObject If-None-Match": putIfNone,
		"CompleteMultipartUpload If-Match": mpuIfMatch, "CompleteMultipartUpload If-None-Match": mpuIfNone} {
		if got != "PreconditionFailed" {
			t.Errorf("%s with a failing condition: %s, want PreconditionFailed", name, got)
		}
	}
	t.Logf("PutObject If-Match: %s, If-None-Match: %s; CompleteMultipartUpload If-Match: %s, If-None-Match: %s", putIfMatch, putIfNone, mpuIfMatch, mpuIfNone)
	if b, _ := get(t, c, bucket, "o"); string(b) != "v1" {
		t.Errorf("object = %q after conditional writes that should all fail", b)
	}
}

// The destination sends no request of its own to check the overwrite
// policy: the conditional PutObject / CompleteMultipartUpload is the check.
// An output that appeared, changed or vanished since it was planned is
// still refused - for single puts and multipart uploads alike - and the
// object the other writer left stays as it was.
func testS3WritesWithoutHead(t *testing.T, srv *s3test.Server) {
	c, counter := srv.NewCountingClient()
	bucket := newBucket(t, srv)
	d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/"), sources.S3Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/"), sources.S3Options{Client: c})
	small, big := "s", strings.Repeat("b", 6<<20)
	for _, data := range []string{small, big} {
		name := fmt.Sprintf("%d", len(data))
		if err := commitFile(t, d, "new-"+name, data, sources.CreateOptions{Overwrite: sources.OverwriteNever}); err != nil {
			t.Fatalf("%s bytes, new key: %v", name, err)
		}
		put(t, srv.Client, bucket, "there-"+name, []byte("theirs"))
		wantConflictErr(t, commitFile(t, d, "there-"+name, data, sources.CreateOptions{Overwrite: sources.OverwriteNever}), sources.ConflictExists)
		// In place: planned at one version, replaced or removed since.
		put(t, srv.Client, bucket, "inplace-"+name, []byte("v1"))
		it, err := s.Stat(context.Background(), "inplace-"+name)
		if err != nil {
			t.Fatal(err)
		}
		put(t, srv.Client, bucket, "inplace-"+name, []byte("v2"))
		wantConflictErr(t, commitFile(t, d, "inplace-"+name, data, sources.CreateOptions{IfMatch: it.Print}), sources.ConflictChanged)
		srv.Client.DeleteObject(context.Background(), &awss3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("inplace-" + name)})
		wantConflictErr(t, commitFile(t, d, "inplace-"+name, data, sources.CreateOptions{IfMatch: it.Print}), sources.ConflictChanged)
		if b, _ := get(t, srv.Client, bucket, "there-"+name); string(b) != "theirs" {
			t.Errorf("%s bytes: the other writer's object became %d bytes", name, len(b))
		}
		if _, ok := get(t, srv.Client, bucket, "inplace-"+name); ok {
			t.Errorf("%s bytes: an in-place write over a removed object created it", name)
		}
	}
	if got := uploads(t, srv.Client, bucket); len(got) != 0 {
		t.Fatalf("multipart uploads left: %q", got)
	}
	if n := counter.Requests()["HeadObject"]; n != 2 { // the two s.Stat calls above
		t.Fatalf("%d HeadObject requests, want only the test's own 2: %v", n, counter.Requests())
	}
}
