// Package kmsemutest runs the kmsemu KMS emulator on a loopback test server
// for tests in any package:
//
//	srv := kmsemutest.Start(t, seedYAML)
//	client := srv.Client("us-east-1")
//	arn := srv.KeyARN(t, "alias/app", "us-east-1")
//
// Start clears ambient AWS_* variables for the test (so the test must not be
// parallel) and the server hands out static credentials; the emulator checks
// only the shape of a signature, so any values would do.
package kmsemutest

import (
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/sources/s3test"
)

// Credentials are the static credentials tests sign with.
var Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")

// Server is an emulator serving on a loopback URL until the test ends.
type Server struct {
	Emu  *kmsemu.Emulator
	HTTP *httptest.Server
	URL  string
}

// Start clears ambient AWS_* variables, seeds an emulator from seedYAML and
// serves it until the test ends. Any error fails the test.
func Start(t testing.TB, seedYAML string) *Server {
	t.Helper()
	s3test.ClearAWSEnv(t)
	seed, err := kmsemu.ParseSeed([]byte(seedYAML))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := kmsemu.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, emu)
}

// Serve serves an existing emulator until the test ends. Unlike Start it
// leaves the environment alone.
func Serve(t testing.TB, emu *kmsemu.Emulator) *Server {
	t.Helper()
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &Server{Emu: emu, HTTP: srv, URL: srv.URL}
}

// Client returns an unmodified SDK client for region with Credentials and
// only BaseEndpoint pointing at the emulator; opts are applied last.
func (s *Server) Client(region string, opts ...func(*kms.Options)) *kms.Client {
	o := kms.Options{
		Region:       region,
		Credentials:  Credentials,
		BaseEndpoint: aws.String(s.URL),
		HTTPClient:   s.HTTP.Client(),
	}
	for _, f := range opts {
		f(&o)
	}
	return kms.New(o)
}

// KeyARN resolves a key ID, alias or ARN in region to its key ARN and fails
// the test if there is no such key.
func (s *Server) KeyARN(t testing.TB, key, region string) string {
	t.Helper()
	arn, err := s.Emu.KeyARN(key, region)
	if err != nil {
		t.Fatalf("kmsemutest: key %s in %s: %v", key, region, err)
	}
	return arn
}
