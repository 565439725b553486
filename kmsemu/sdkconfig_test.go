package kmsemu_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestStandardEndpointVariable configures the SDK the way a user of the
// standalone emulator would: the default config chain with
// AWS_ENDPOINT_URL_KMS and environment credentials.
func TestStandardEndpointVariable(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	v := newEnv(t)
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
