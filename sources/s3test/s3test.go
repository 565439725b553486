// Package s3test starts a real S3-compatible server (versitygw, installed
// by scripts/setup.d/10-s3.sh) on a loopback port for tests in any
// package:
//
//	srv := s3test.Start(t)
//	srv.CreateBucket(t, "data")
//	out, err := srv.Client.ListObjectsV2(ctx, ...)
//
// Start clears ambient AWS_* variables for the test and uses static
// credentials. If versitygw is missing the test is skipped, or fails when
// CI=true.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region the server answers for.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's root: one directory per bucket
	Client    *awss3.Client
}

// Binary returns the versitygw path: $VERSITYGW, then PATH, then
// $GOPATH/bin. Empty if not found.
func Binary() string {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// ClearAWSEnv unsets every AWS_* variable for the rest of the test and
// points the shared config and credentials files at nothing, so no
// developer profile, region or endpoint leaks in.
func ClearAWSEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Start runs versitygw on a free loopback port with a temporary backend
// directory and stops it when the test ends. It calls ClearAWSEnv, so the
// test must not be parallel.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("s3test: versitygw not found; run scripts/setup.d/10-s3.sh")
		}
		t.Skip("s3test: versitygw not found; run scripts/setup.d/10-s3.sh")
	}
	ClearAWSEnv(t)
	s := &Server{AccessKey: "encjobtest", SecretKey: randHex(16), Dir: t.TempDir()}
	var out syncBuffer
	var cmd *exec.Cmd
	var exited chan struct{}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd = exec.Command(bin, "--port", addr, "--quiet", "posix", s.Dir)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("s3test: start %s: %v", bin, err)
		}
		s.Endpoint = "http://" + addr
		exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(cmd, exited)
		err = waitReady(exited, addr)
		if err == nil {
			break
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatalf("s3test: versitygw did not start: %v\n%s", err, out.String())
		}
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	s.Client = s.NewClient()
	return s
}

// NewClient returns a fresh client for the server (path-style, static
// credentials).
func (s *Server) NewClient(opts ...func(*awss3.Options)) *awss3.Client {
	o := awss3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	}
	return awss3.New(o, opts...)
}

// Env returns environment entries pointing an AWS SDK (or the encjob
// binary) at the server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
	}
}

// CreateBucket creates a bucket and fails the test on error.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
}

// waitReady polls until the port accepts connections and answers HTTP, or
// the process exits, or 30 s pass (a start-up limit, not an assertion).
func waitReady(exited <-chan struct{}, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("server exited")
		default:
		}
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %s after 30s", addr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ByteCounter counts the body bytes of every request sent and response
// received through a client made by NewCountingClient: what passed
// through the client, as opposed to what the server copied itself. It
// also counts the HTTP requests per S3 operation (retries included), so a
// test or benchmark can say how many HEADs, GETs and PUTs an item cost.
type ByteCounter struct {
	sent, received atomic.Int64
	mu             sync.Mutex
	ops            map[string]int64
}

// Sent and Received return the request and response body bytes so far.
func (c *ByteCounter) Sent() int64     { return c.sent.Load() }
func (c *ByteCounter) Received() int64 { return c.received.Load() }

// Total is Sent plus Received.
func (c *ByteCounter) Total() int64 { return c.Sent() + c.Received() }

// Requests returns the HTTP requests sent so far per S3 operation name
// ("HeadObject", "GetObject", "PutObject", "ListObjectsV2", ...).
func (c *ByteCounter) Requests() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.ops))
	for k, v := range c.ops {
		m[k] = v
	}
	return m
}

func (c *ByteCounter) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]int64{}
	}
	c.ops[op]++
}

// NewCountingClient is NewClient with every body byte and request
// counted.
func (s *Server) NewCountingClient(opts ...func(*awss3.Options)) (*awss3.Client, *ByteCounter) {
	c := &ByteCounter{}
	hc := &http.Client{Transport: Counting(PoolTransport(), c)}
	return s.NewClient(append([]func(*awss3.Options){func(o *awss3.Options) { o.HTTPClient = hc }}, opts...)...), c
}

// PoolTransport is an HTTP transport that keeps enough idle connections
// per host for 64 concurrent requests: the SDK's default keeps 10, and a
// client at a higher concurrency then closes and re-dials connections on
// every burst - a cost that is the test's, not the code's under test.
func PoolTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 64
	return tr
}

// Counting wraps base so that c counts what passes through it.
func Counting(base http.RoundTripper, c *ByteCounter) http.RoundTripper {
	return &countingTransport{base: base, c: c}
}

type countingTransport struct {
	base http.RoundTripper
	c    *ByteCounter
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The SDK sends each attempt with the operation's context.
	op := awsmiddleware.GetOperationName(req.Context())
	if op == "" {
		op = req.Method
	}
	t.c.count(op)
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: &t.c.sent}
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.c.received}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	b.n.Add(int64(k))
	return k, err
}
