package kmsemu_test

import (
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestStandardEndpointVariable configures the SDK the way a user of the
// standalone emulator would: the default config chain with
// AWS_ENDPOINT_URL_KMS and environment credentials.
func TestStandardEndpointVariable(t *testing.T) {
	v := newEnv(t) // clears ambient AWS_* variables
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAKMSEMUTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
	t.Setenv("AWS_REGION", west)
	t.Setenv("AWS_ENDPOINT_URL_KMS", v.srv.URL)
	cfg, err := config.LoadDefaultConfig(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := kms.NewFromConfig(cfg).DescribeKey(ctx(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/global")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.KeyMetadata.Arn); got != arn(acct, west, idMRK) {
		t.Fatalf("DescribeKey through AWS_ENDPOINT_URL_KMS: %s", got)
	}
}
