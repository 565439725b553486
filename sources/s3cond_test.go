package sources_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
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
