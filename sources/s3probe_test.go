package sources_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// probeDeleteFailer answers the first left DeleteObject requests for
// probe objects with 503 SlowDown, as a flaky server does.
type probeDeleteFailer struct {
	next awss3.HTTPClient
	left *atomic.Int32
}

func (f probeDeleteFailer) Do(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "conditional-probe") && f.left.Add(-1) >= 0 {
		if r.Body != nil {
			r.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Request: r,
			Header: http.Header{"Content-Type": {"application/xml"}},
			Body:   io.NopCloser(strings.NewReader(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`))}, nil
	}
	return f.next.Do(r)
}

// The conditional-write probe writes an empty object under the user's
// prefix and deletes it. A delete failing more often than the SDK retries
// is tried again, so no probe object is left; and one left anyway (a run
// killed between the probe's write and its delete) is encjob's own file,
// skipped by a listing, never an item (an empty object is not an ESDK
// message: a decrypt job would fail on it). Lookalikes are the user's.
func TestS3ProbeObjectsNeverItems(t *testing.T) {
	srv := s3test.Start(t)
	bucket := newBucket(t, srv)
	var left atomic.Int32
	left.Store(4) // the SDK tries 3 times: one full failure, then 1 more
	c := srv.NewClient(func(o *awss3.Options) {
		next := o.HTTPClient
		if next == nil {
			next = http.DefaultClient
		}
		o.HTTPClient = probeDeleteFailer{next: next, left: &left}
	})
	d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/data/"), sources.S3Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := commitFile(t, d, "new", "content", sources.CreateOptions{Overwrite: sources.OverwriteNever}); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys(t, srv.Client, bucket) {
		if strings.Contains(k, "conditional-probe") {
			t.Fatalf("probe object left after a flaky delete: %s", k)
		}
	}
	if left.Load() >= 0 {
		t.Fatalf("%d injected failures unused: the probe's delete was not exercised", left.Load())
	}

	put(t, srv.Client, bucket, "data/.encjob-conditional-probe-0123456789abcdef", nil)         // encjob's
	put(t, srv.Client, bucket, "data/sub/.encjob-conditional-probe-fedcba9876543210", nil)     // encjob's
	put(t, srv.Client, bucket, "data/.encjob-conditional-probe-0123456789abcdeX", nil)         // not hex
	put(t, srv.Client, bucket, "data/.encjob-conditional-probe-0123456789abcde", nil)          // 15 digits
	put(t, srv.Client, bucket, "data/.encjob-conditional-probe-1111111111111111", []byte("x")) // not empty
	s, err := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/data/"), sources.S3Options{Client: srv.Client})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if err := s.List(context.Background(), func(it sources.Item) error { got[it.Key] = it.Skipped; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ // key: skipped
		"new": false,
		".encjob-conditional-probe-0123456789abcdef":     true,
		"sub/.encjob-conditional-probe-fedcba9876543210": true,
		".encjob-conditional-probe-0123456789abcdeX":     false,
		".encjob-conditional-probe-0123456789abcde":      false,
		".encjob-conditional-probe-1111111111111111":     false,
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want the keys of %v", got, want)
	}
	for k, skipped := range want {
		if reason, ok := got[k]; !ok || (reason != "") != skipped {
			t.Errorf("%s: listed %v, skipped %q; want skipped %v", k, ok, reason, skipped)
		}
	}
}

// A probe object that survives every delete attempt is still skipped by
// listings, but it stays in the user's bucket: the run says so (a
// warning naming the object), and the write it checked for goes ahead.
func TestS3ProbeLeftIsWarned(t *testing.T) {
	srv := s3test.Start(t)
	bucket := newBucket(t, srv)
	var left atomic.Int32
	left.Store(1000)
	c := srv.NewClient(func(o *awss3.Options) {
		next := o.HTTPClient
		if next == nil {
			next = http.DefaultClient
		}
		o.HTTPClient = probeDeleteFailer{next: next, left: &left}
		o.RetryMaxAttempts = 1
	})
	var logged bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer slog.SetDefault(prev)
	d, err := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/data/"), sources.S3Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := commitFile(t, d, "new", "content", sources.CreateOptions{Overwrite: sources.OverwriteNever}); err != nil {
		t.Fatal(err)
	}
	var probe string
	for _, k := range keys(t, srv.Client, bucket) {
		if strings.Contains(k, "conditional-probe") {
			probe = k
		}
	}
	if probe == "" {
		t.Fatal("no probe object left: the deletes were not refused")
	}
	if out := logged.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "s3://"+bucket+"/"+probe) {
		t.Fatalf("left %s without a warning naming it; logged: %q", probe, out)
	}
}
