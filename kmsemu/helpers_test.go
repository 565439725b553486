package kmsemu_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const (
	acct      = "111122223333"
	otherAcct = "444455556666"
	east      = "us-east-1"
	west      = "eu-west-1"

	idApp       = "1234abcd-12ab-34cd-56ef-1234567890ab"
	idMRK       = "mrk-1234abcd12ab34cd56ef1234567890ab"
	idEU        = "0987dcba-09fe-87dc-65ba-ab0987654321"
	idOther     = "11112222-3333-4444-5555-666677778888"
	idEncOnly   = "22223333-4444-5555-6666-777788889999"
	idDisabled  = "33334444-5555-6666-7777-888899990000"
	idSign      = "44445555-6666-7777-8888-999900001111"
	idScheduled = "55556666-7777-8888-9999-000011112222"
)

const testSeed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
    aliases: [alias/app]
  - id: mrk-1234abcd12ab34cd56ef1234567890ab
    replicas: [eu-west-1]
    aliases: [alias/global]
  - id: 0987dcba-09fe-87dc-65ba-ab0987654321
    region: eu-west-1
  - id: 11112222-3333-4444-5555-666677778888
    account: "444455556666"
  - id: 22223333-4444-5555-6666-777788889999
    allowedOperations: [DescribeKey, Encrypt, GenerateDataKey]
  - id: 33334444-5555-6666-7777-888899990000
    enabled: false
  - id: 44445555-6666-7777-8888-999900001111
    usage: SIGN_VERIFY
  - id: 55556666-7777-8888-9999-000011112222
`

func arn(account, region, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

// env is an emulator on a loopback test server.
type env struct {
	emu *kmsemu.Emulator
	srv *httptest.Server
	kms *kmsemutest.Server
}

// newEnv clears ambient AWS_* variables and starts the emulator.
func newEnv(t *testing.T) *env {
	t.Helper()
	return wrap(kmsemutest.Start(t, testSeed))
}

func wrap(s *kmsemutest.Server) *env { return &env{emu: s.Emu, srv: s.HTTP, kms: s} }

// client returns an unmodified SDK client for region, with static
// credentials, only BaseEndpoint pointing at the emulator, and retries off
// unless opts say otherwise.
func (v *env) client(region string, opts ...func(*kms.Options)) *kms.Client {
	noRetry := func(o *kms.Options) { o.Retryer = aws.NopRetryer{} }
	return v.kms.Client(region, append([]func(*kms.Options){noRetry}, opts...)...)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// errCode returns the API error code of err, or "".
func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of the response that produced err.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isA reports whether errors.As finds a *T in err.
func isA[T any, PT interface {
	*T
	error
}](err error) bool {
	var target PT
	return errors.As(err, &target)
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
