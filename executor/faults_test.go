package executor_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
	"github.com/encjob/encjob/spec"
)

func applyWith(t *testing.T, job *spec.Job, o planner.Options, eo executor.Options) (runOut, []executor.Record) {
	t.Helper()
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, job, o)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "faults"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var meta bytes.Buffer
	eo.Metadata = executor.NewMetadataLog(&meta)
	sum, err := executor.Apply(ctx, rt, p, eo)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return runOut{plan: p, sum: sum}, parseRecords(t, meta.String())
}

func parseRecords(t *testing.T, s string) []executor.Record {
	var out []executor.Record
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var r executor.Record
		if err := jsonUnmarshal([]byte(line), &r); err != nil {
			t.Fatalf("metadata line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// checkOutputs: every done record's output exists, every failed record's
// output does not, and no temporary file is left.
func checkOutputs(t *testing.T, dir string, recs []executor.Record) (done, failed int) {
	t.Helper()
	for _, r := range recs {
		_, err := os.Stat(r.Output)
		switch r.Status {
		case "done":
			done++
			if err != nil {
				t.Errorf("%s done but its output is missing: %v", r.Input, err)
			}
		case "failed":
			failed++
			if err == nil {
				t.Errorf("%s failed but an output exists at %s", r.Input, r.Output)
			}
		}
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), sources.TempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	return done, failed
}

// encryptChangedAfterPlan writes tree under dir/in, plans encrypting it to
// dir/enc with a local key, calls change with the input directory between
// planning and applying, then applies with a metadata log. It returns the
// summary, the log's records and the files as written.
func encryptChangedAfterPlan(t *testing.T, dir string, tree map[string]int, change func(in string)) (*executor.Summary, []executor.Record, map[string][]byte) {
	t.Helper()
	in := filepath.Join(dir, "in")
	files := writeTree(t, in, tree)
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": filepath.Join(dir, "enc"), "KEY": filepath.Join(dir, "k")}
	ctx := context.Background()
	rt, err := planner.Prepare(ctx, jobFor(t, env), planner.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(in)
	var meta bytes.Buffer
	sum, err := executor.Apply(ctx, rt, p, executor.Options{Metadata: executor.NewMetadataLog(&meta)})
	if err != nil {
		t.Fatal(err)
	}
	return sum, parseRecords(t, meta.String()), files
}

// TestFaultKMSThrottlingAndErrors: 30% throttling, 5% 5xx and latency
// spikes; every item still completes (SDK retries, then item retries).
func TestFaultKMSThrottlingAndErrors(t *testing.T) {
	k := startKMS(t)
	k.emu.SetFaults(kmsemu.Faults{Latency: time.Millisecond, Jitter: 3 * time.Millisecond, ThrottleRate: 0.3, ErrorRate: 0.05})
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	tree := map[string]int{}
	for i := range 150 {
		tree[fmt.Sprintf("f%03d", i)] = 200
	}
	writeTree(t, in, tree)
	r, recs := applyWith(t, kmsJob(t, "encrypt", in, out, `"`+k.east+`"`, `"`+k.east+`"`, "  execution: {concurrency: 8, retries: 6}\n"), k.options(), executor.Options{})
	if !r.sum.OK() || r.sum.Done[planner.Encrypt] != 150 {
		t.Fatalf("%d done, failures: %v", r.sum.Done[planner.Encrypt], r.sum.Failed)
	}
	if done, failed := checkOutputs(t, dir, recs); done != 150 || failed != 0 {
		t.Fatalf("records: %d done %d failed", done, failed)
	}
	calls := k.emu.CallCount("GenerateDataKey")
	if calls <= 150 {
		t.Fatalf("%d GenerateDataKey attempts: the faults were not exercised", calls)
	}
	t.Logf("150 items under 30%% throttling + 5%% 5xx: %d GenerateDataKey attempts, all items done", calls)
}

// TestFaultKeyDisabledMidJob: the key is disabled while the job runs; the
// items after that fail with an error naming the key and the cause, leave
// no output, and the metadata log says exactly which.
func TestFaultKeyDisabledMidJob(t *testing.T) {
	k := startKMS(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	tree := map[string]int{}
	for i := range 120 {
		tree[fmt.Sprintf("f%03d", i)] = 100
	}
	writeTree(t, in, tree)
	client := k.srv.Client("us-east-1")
	// Counted on the reads of the inputs, not on finished items: an item
	// reads its (single-read) input after its data key came from KMS,
	// whereas it finishes only when its group commit is durable, which
	// on a busy file system can be after every item got its key.
	var n atomic.Int32
	read := func(int) {
		if n.Add(1) == 40 {
			if _, err := client.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(k.east)}); err != nil {
				t.Errorf("disable: %v", err)
			}
		}
	}
	r, recs := applyWith(t, kmsJob(t, "encrypt", in, out, `"`+k.east+`"`, `"`+k.east+`"`, "  execution: {concurrency: 2}\n"),
		k.options(), executor.Options{BytesRead: read})
	done, failed := checkOutputs(t, dir, recs)
	if done < 40 || failed == 0 || done+failed != 120 {
		t.Fatalf("%d done, %d failed; want >= 40 done and the rest failed", done, failed)
	}
	if len(r.sum.Failed) != failed {
		t.Fatalf("summary has %d failures, log %d", len(r.sum.Failed), failed)
	}
	for _, rec := range recs {
		if rec.Status == "failed" && (!strings.Contains(rec.Error, k.east) || !strings.Contains(strings.ToLower(rec.Error), "disabled")) {
			t.Fatalf("failure does not name the key and the cause: %s", rec.Error)
		}
	}
}

// failingDest simulates a full disk: writes to outputs whose key contains
// "big" fail with ENOSPC after 64 KiB.
type failingDest struct{ sources.Destination }

func (d failingDest) Create(ctx context.Context, key string, o sources.CreateOptions) (sources.Writer, error) {
	w, err := d.Destination.Create(ctx, key, o)
	if err != nil || !strings.Contains(key, "big") {
		return w, err
	}
	return &fullWriter{Writer: w, left: 64 << 10}, nil
}

type fullWriter struct {
	sources.Writer
	left int
}

func (w *fullWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n, _ := w.Writer.Write(p[:w.left])
		w.left = 0
		return n, &os.PathError{Op: "write", Path: "out", Err: syscall.ENOSPC}
	}
	w.left -= len(p)
	return w.Writer.Write(p)
}

// TestFaultDiskFull: a write failing part-way fails that item only; no
// partial output, source intact.
func TestFaultDiskFull(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in"), filepath.Join(dir, "enc")
	files := writeTree(t, in, map[string]int{"big.bin": 1 << 20, "small.txt": 1000})
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "k")}
	r, recs := applyWith(t, jobFor(t, env), planner.Options{WrapDestination: func(d sources.Destination) sources.Destination { return failingDest{d} }}, executor.Options{})
	if len(r.sum.Failed) != 1 || !errors.Is(r.sum.Failed[0].Err, syscall.ENOSPC) {
		t.Fatalf("want one ENOSPC failure: %v", r.sum.Failed)
	}
	if done, failed := checkOutputs(t, dir, recs); done != 1 || failed != 1 {
		t.Fatalf("%d done %d failed", done, failed)
	}
	if got, _ := os.ReadFile(filepath.Join(in, "big.bin")); !bytes.Equal(got, files["big.bin"]) {
		t.Fatal("source changed")
	}
}

// TestFaultSourceModifiedAfterPlan: a source that grows between planning
// and applying is not encrypted as planned (the planned version is gone):
// the attempt fails as changed, the retry plans the item again and
// encrypts what the file holds now.
func TestFaultSourceModifiedAfterPlan(t *testing.T) {
	dir := t.TempDir()
	sum, recs, _ := encryptChangedAfterPlan(t, dir, map[string]int{"grows": 10000, "stays": 10}, func(in string) {
		f, _ := os.OpenFile(filepath.Join(in, "grows"), os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte("appended after planning"))
		f.Close()
	})
	if !sum.OK() || sum.Done[planner.Encrypt] != 2 {
		t.Fatalf("want both done: %+v %+v", sum.Done, sum.Failed)
	}
	for _, r := range recs {
		if strings.HasSuffix(r.Input, "grows") && (r.Attempts != 2 || r.BytesIn != 10000+int64(len("appended after planning"))) {
			t.Fatalf("grows: %d attempts, %d bytes read; want the retry to read the grown file", r.Attempts, r.BytesIn)
		}
	}
	checkOutputs(t, dir, recs)
}

// faultProxy sits in front of the S3 server and injects 503 SlowDown
// responses, connection resets and slow responses.
func faultProxy(t *testing.T, target string, errRate, resetRate float64, delay time.Duration) (string, *atomic.Int64) {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	var injected atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := rand.Float64()
		switch {
		case x < resetRate:
			injected.Add(1)
			io.Copy(io.Discard, r.Body)
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				c.Close()
				return
			}
		case x < resetRate+errRate:
			injected.Add(1)
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`)
			return
		}
		if delay > 0 && rand.IntN(10) == 0 {
			time.Sleep(delay)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &injected
}

// TestFaultS3FlakyServer: S3 -> S3 through a proxy injecting 5xx,
// connection resets and slow responses: every item completes (retries),
// including a multipart upload, and no multipart upload is left open.
func TestFaultS3FlakyServer(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket(t, "flaky-src")
	srv.CreateBucket(t, "flaky-dst")
	ctx := context.Background()
	want := map[string][]byte{}
	for i := range 60 {
		b := make([]byte, 3000+i)
		if i == 0 {
			b = make([]byte, 11<<20) // multipart with 5 MiB parts
		}
		crand.Read(b)
		key := fmt.Sprintf("o%02d", i)
		want[key] = b
		if _, err := srv.Client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("flaky-src"), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	proxyURL, injected := faultProxy(t, srv.Endpoint, 0.08, 0.04, 50*time.Millisecond)
	client := srv.NewClient(func(o *awss3.Options) { o.BaseEndpoint = aws.String(proxyURL) })
	dir := t.TempDir()
	env := map[string]string{"OP": "encrypt", "IN": "s3://flaky-src/", "OUT": "s3://flaky-dst/enc/", "KEY": filepath.Join(dir, "k")}
	job := jobFor(t, env)
	job.S3.PartSize = 5 << 20
	r, _ := applyWith(t, job, planner.Options{S3Client: client}, executor.Options{Retries: executor.Retry(8)})
	if !r.sum.OK() || r.sum.Done[planner.Encrypt] != 60 {
		t.Fatalf("%d done; failures %v", r.sum.Done[planner.Encrypt], r.sum.Failed)
	}
	if injected.Load() == 0 {
		t.Fatal("no fault was injected")
	}
	ups, err := srv.Client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("flaky-dst")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("open multipart uploads: %v %v", ups, err)
	}
	// Decrypt back directly (no proxy) and compare.
	out := filepath.Join(dir, "plain")
	env = map[string]string{"OP": "decrypt", "IN": "s3://flaky-dst/enc/", "OUT": out, "KEY": filepath.Join(dir, "k")}
	r, _ = applyWith(t, jobFor(t, env), planner.Options{S3Client: srv.Client}, executor.Options{})
	if !r.sum.OK() {
		t.Fatal(r.sum.Failed)
	}
	for key, b := range want {
		got, err := os.ReadFile(filepath.Join(out, key))
		if err != nil {
			got, err = os.ReadFile(filepath.Join(out, key+".encrypted.decrypted"))
		}
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: %v", key, err)
		}
	}
	t.Logf("%d faults injected; all 60 objects (one multipart) encrypted and verified", injected.Load())
}
