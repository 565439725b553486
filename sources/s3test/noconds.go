package s3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// How a server without conditional writes treats If-Match / If-None-Match
// on a write.
const (
	// IgnoreConditions: the header is dropped and the write made as if it
	// were unconditional (older MinIO, some S3-compatible stores).
	IgnoreConditions = "ignore"
	// RejectConditions: a write carrying one is answered 501
	// NotImplemented.
	RejectConditions = "reject"
	// Servers that honour part of it: only If-None-Match is dropped, only
	// If-Match is, or both are on CompleteMultipartUpload only (a
	// PutObject keeps them).
	IgnoreIfNoneMatch = "ignore-if-none-match"
	IgnoreIfMatch     = "ignore-if-match"
	IgnoreOnComplete  = "ignore-on-complete"
)

// WithoutConditionalWrites returns a view of s through a loopback proxy
// that makes it a server without conditional writes (versitygw always
// honours them): how is IgnoreConditions or RejectConditions. Every other
// request passes unchanged. An ignored header is removed and the request
// signed again with the server's credentials (the client signed the
// header, so the server would otherwise refuse the signature). The
// returned Server shares s's credentials and directory; its Endpoint and
// Client go through the proxy.
func (s *Server) WithoutConditionalWrites(t testing.TB, how string) *Server {
	t.Helper()
	switch how {
	case IgnoreConditions, RejectConditions, IgnoreIfNoneMatch, IgnoreIfMatch, IgnoreOnComplete:
	default:
		t.Fatalf("s3test: WithoutConditionalWrites(%q): not a mode", how)
	}
	p := httptest.NewServer(&condProxy{s: s, how: how, tr: PoolTransport()})
	t.Cleanup(p.Close)
	v := *s
	v.Endpoint = p.URL
	v.Client = v.NewClient()
	return &v
}

type condProxy struct {
	s   *Server
	how string
	tr  http.RoundTripper
}

func (p *condProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conditional := r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != ""
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	if conditional && write && p.how == RejectConditions {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotImplemented)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented`+
			`</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.s.Endpoint+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host // what the client signed
	out.ContentLength = r.ContentLength
	if drop := p.dropped(r); conditional && write && len(drop) > 0 {
		for _, h := range drop {
			out.Header.Del(h)
		}
		if err := p.sign(r.Context(), out); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// dropped is the conditional headers the proxy's mode removes from the
// write r.
func (p *condProxy) dropped(r *http.Request) []string {
	complete := r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
	switch p.how {
	case IgnoreIfNoneMatch:
		return []string{"If-None-Match"}
	case IgnoreIfMatch:
		return []string{"If-Match"}
	case IgnoreOnComplete:
		if !complete {
			return nil
		}
	}
	return []string{"If-Match", "If-None-Match"}
}

// sign replaces the client's signature with one over the request as it
// now is (the payload hash the client declared is kept).
func (p *condProxy) sign(ctx context.Context, r *http.Request) error {
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" || strings.HasPrefix(hash, "STREAMING-AWS4") {
		return fmt.Errorf("s3test: cannot re-sign a request with payload %q", hash)
	}
	r.Header.Del("Authorization")
	r.Header.Del("X-Amz-Date")
	creds := aws.Credentials{AccessKeyID: p.s.AccessKey, SecretAccessKey: p.s.SecretKey}
	return v4.NewSigner().SignHTTP(ctx, creds, r, hash, "s3", Region, time.Now().UTC())
}
