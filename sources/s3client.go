package sources

import (
	"context"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Client is the S3 SDK client sources and destinations use. The alias
// lets packages that only pass a client around (the job runtime, policy)
// name it without importing the SDK, which only sources and the KMS
// packages may (the import rule of the layout).
type S3Client = awss3.Client

// S3ObjectExists reports whether s3://bucket/key is an existing object
// (HEAD succeeds). Any error - not found, access denied, a network
// failure - is false: callers use it to tell a single-object location
// from a prefix, and taking an unknown for a prefix refuses more, never
// less.
func S3ObjectExists(ctx context.Context, c *S3Client, bucket, key string) bool {
	_, err := headItem(ctx, c, bucket, key)
	return err == nil
}
