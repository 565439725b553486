// Package nettimeout builds the HTTP clients of encjob's AWS SDK clients
// (KMS, S3) so that no call can wait forever on a server that accepts a
// connection and never answers.
//
// Two bounds, both enforced below the SDK so that every operation of every
// client built with them is covered:
//
//   - idle: dialling, the TLS handshake, waiting for response headers and
//     every single read or write on the connection must make progress
//     within idle. A connection that goes silent fails after idle, but a
//     transfer that keeps moving may take as long as it needs (an S3 body
//     of 100 GB streams for hours).
//   - attempt (optional): one request as a whole, headers and body, i.e.
//     one SDK attempt, which the SDK's retryer then retries. For small
//     request/response APIs such as KMS.
//
// A timeout is a net.Error with Timeout() and Temporary() true that does
// not wrap context.DeadlineExceeded, so the SDK retries it, encjob
// classifies it as retryable (the item is retried and then fails for
// good), and it is never confused with the caller's own cancellation.
package nettimeout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Client returns an HTTP client for an AWS SDK client (aws.HTTPClient),
// with the SDK's default transport settings plus the idle bound and, when
// attempt > 0, the per-request bound. idle must be positive.
func Client(idle, attempt time.Duration) *SDKClient {
	return newClient(awshttp.NewBuildableClient().GetTransport().Clone(), idle, attempt)
}

// SDKClient is the client Client returns.
type SDKClient struct {
	tr            *http.Transport
	idle, attempt time.Duration
	c             *http.Client
}

// Loading is the client to give the SDK's configuration loader
// (config.WithHTTPClient): it must be an *awshttp.BuildableClient, the only
// kind the loader can apply a custom CA bundle to (AWS_CA_BUNDLE, ca_bundle
// in a profile; otherwise loading fails with "unable to add custom RootCAs
// HTTPClient"). It carries the idle bound, so what the loader fetches is
// bounded too. Install replaces it once the configuration is loaded.
func Loading(idle time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { bound(tr, idle) })
}

// Install replaces the loaded configuration's HTTP client by Client's,
// built on the loaded client's transport, so whatever the loader put there
// (the CA bundle's root certificates, proxy settings) is kept and both
// bounds apply to every call.
func Install(cfg *aws.Config, idle, attempt time.Duration) {
	tr := awshttp.NewBuildableClient().GetTransport()
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		tr = b.GetTransport()
	}
	cfg.HTTPClient = newClient(tr, idle, attempt)
}

func newClient(tr *http.Transport, idle, attempt time.Duration) *SDKClient {
	bound(tr, idle)
	var rt http.RoundTripper = tr
	if attempt > 0 {
		rt = &attemptLimit{rt: tr, d: attempt}
	}
	return &SDKClient{tr: tr, idle: idle, attempt: attempt, c: &http.Client{Transport: rt}}
}

// bound puts the idle bound on a transport: dialling, TLS, response
// headers and every read and write on its connections.
func bound(tr *http.Transport, idle time.Duration) {
	dialer := &net.Dialer{Timeout: idle, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle}, nil
	}
	tr.TLSHandshakeTimeout = idle
	tr.ResponseHeaderTimeout = idle
	tr.ExpectContinueTimeout = min(time.Second, idle)
	// A pooled connection is closed by the transport before its idle read
	// deadline would fire under it.
	tr.IdleConnTimeout = min(tr.IdleConnTimeout, idle/2)
	// Keep a connection per concurrent call: the SDK's pool keeps 10 idle
	// per host, so at a job concurrency above 10 most calls dialled (and
	// against AWS, TLS-handshaked) a connection of their own and closed it
	// right after (issue 19: 312 connections for 4,000 KMS calls at
	// concurrency 64). Idle ones still expire after IdleConnTimeout.
	tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, maxIdlePerHost)
	if tr.MaxIdleConns != 0 {
		tr.MaxIdleConns = max(tr.MaxIdleConns, maxIdlePerHost)
	}
}

// maxIdlePerHost is above any job concurrency that makes sense for one
// endpoint.
const maxIdlePerHost = 1024

// Do sends one request.
func (c *SDKClient) Do(req *http.Request) (*http.Response, error) { return c.c.Do(req) }

// Error is a timeout of this package.
type Error struct {
	What string        // "no progress on the connection", "no complete answer"
	D    time.Duration // the bound
}

func (e *Error) Error() string   { return fmt.Sprintf("%s within %s (timeout)", e.What, e.D) }
func (e *Error) Timeout() bool   { return true }
func (e *Error) Temporary() bool { return true }
func (e *Error) Retryable() bool { return true }

// idleConn gives every Read and Write its own deadline, idle from now.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(p)
	return n, c.wrap(err)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Write(p)
	return n, c.wrap(err)
}

func (c *idleConn) wrap(err error) error {
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return &Error{What: "no progress on the connection to " + c.RemoteAddr().String(), D: c.idle}
	}
	return err
}

// attemptLimit bounds each request, body included.
type attemptLimit struct {
	rt http.RoundTripper
	d  time.Duration
}

var errAttempt = errors.New("nettimeout: attempt deadline")

func (a *attemptLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeoutCause(req.Context(), a.d, errAttempt)
	out := req.WithContext(ctx)
	if err := bufferSmallBody(out); err != nil {
		cancel()
		return nil, err
	}
	resp, err := a.rt.RoundTrip(out)
	if err != nil {
		err = a.mapErr(ctx, req.Context(), err)
		cancel()
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, a: a, ctx: ctx, parent: req.Context(), cancel: cancel}
	return resp, nil
}

// maxBufferedBody is the largest request body bufferSmallBody holds in
// memory: KMS and DynamoDB requests are a few hundred bytes.
const maxBufferedBody = 64 << 10

// bufferSmallBody replaces the body of req (a copy the caller owns) by an
// in-memory reader of the same bytes when it is small and of known length.
// net/http sends the headers and a body it does not know to be in memory
// in two writes, so every SDK request (whose body is the SDK's own
// wrapper) cost an extra write syscall, TCP segment (TLS record against
// AWS) and wake-up of the server's read, as much as a small call's body.
// With GetBody set the transport may also resend a request it never got
// onto a connection that turned out to be dead (nothing was sent).
func bufferSmallBody(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil || req.ContentLength <= 0 || req.ContentLength > maxBufferedBody {
		return nil
	}
	b := make([]byte, req.ContentLength)
	_, err := io.ReadFull(req.Body, b)
	req.Body.Close()
	if err != nil {
		return fmt.Errorf("nettimeout: reading the %d-byte request body: %w", req.ContentLength, err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}

// mapErr turns the failure of a request whose own deadline fired (not the
// caller's context) into an *Error.
func (a *attemptLimit) mapErr(ctx, parent context.Context, err error) error {
	if err != nil && parent.Err() == nil && context.Cause(ctx) == errAttempt {
		return &Error{What: "no complete answer", D: a.d}
	}
	return err
}

type limitedBody struct {
	io.ReadCloser
	a           *attemptLimit
	ctx, parent context.Context
	cancel      context.CancelFunc
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.a.mapErr(b.ctx, b.parent, err)
	}
	return n, err
}

func (b *limitedBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
