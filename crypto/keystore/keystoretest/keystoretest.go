// Package keystoretest starts a real DynamoDB implementation for tests:
// dynamodb-server (minidyn, written by others, behind a loopback listener;
// installed by scripts/setup.d/40-dynamodb.sh) on a free loopback port.
//
//	ddb := keystoretest.Start(t)
//	ddb.CreateTable(t, "branch-keys")   // the key store's schema
//	client := ddb.Client                // unmodified SDK client
//	calls := ddb.Calls(t)               // requests per operation, counted at the server
//
// If the binary is missing or does not start, the test is skipped, or
// fails when CI=true.
package keystoretest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Region the clients use (the server ignores it).
const Region = "us-east-1"

// Credentials are the static credentials clients sign with (the server
// checks none).
var Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")

// Server is a running dynamodb-server.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Client   *dynamodb.Client
}

// Binary returns the dynamodb-server path: $DYNAMODB_SERVER, then PATH,
// then $GOPATH/bin. Empty if not found.
func Binary() string {
	if p := os.Getenv("DYNAMODB_SERVER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("dynamodb-server"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "dynamodb-server")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("keystoretest: "+format+"; run scripts/setup.d/40-dynamodb.sh", args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Start runs dynamodb-server on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		unavailable(t, "dynamodb-server not found")
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		unavailable(t, "start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(io.Discard, r)
	}()
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	var endpoint string
	select {
	case l := <-line:
		endpoint, _ = strings.CutPrefix(l, "listening on ")
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
			unavailable(t, "%s did not start: %q %s", bin, l, stderr.String())
		}
	case <-time.After(15 * time.Second):
		unavailable(t, "%s did not say where it listens within 15 s", bin)
	}
	s := &Server{Endpoint: endpoint}
	s.Client = s.NewClient()
	return s
}

// NewClient returns a fresh SDK client for the server.
func (s *Server) NewClient(opts ...func(*dynamodb.Options)) *dynamodb.Client {
	o := dynamodb.Options{Region: Region, BaseEndpoint: aws.String(s.Endpoint), Credentials: Credentials}
	return dynamodb.New(o, opts...)
}

// CreateTable creates a table with the branch key store's key schema
// (partition key "branch-key-id", sort key "type", both strings).
func (s *Server) CreateTable(t testing.TB, name string) {
	t.Helper()
	_, err := s.Client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("branch-key-id"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("type"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("branch-key-id"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("type"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("keystoretest: create table %s: %v", name, err)
	}
}

// Calls returns the requests per DynamoDB operation the server received.
func (s *Server) Calls(t testing.TB) map[string]int64 {
	t.Helper()
	resp, err := http.Get(s.Endpoint + "/_calls")
	if err != nil {
		t.Fatalf("keystoretest: calls: %v", err)
	}
	defer resp.Body.Close()
	m := map[string]int64{}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("keystoretest: calls: %v", err)
	}
	return m
}

// ResetCalls sets the server's counters to zero.
func (s *Server) ResetCalls(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.Endpoint+"/_reset", "", nil)
	if err != nil {
		t.Fatalf("keystoretest: reset: %v", err)
	}
	resp.Body.Close()
}
