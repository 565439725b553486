package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
)

// s3Server is a versitygw started by the driver.
type s3Server struct {
	Client *awss3.Client // plain client (SDK defaults)
	Stop   func()
	// Endpoint and credentials, for clients with another transport.
	opts awss3.Options
	pid  int
	root string // the posix backend's directory: one directory per bucket
}

// drop deletes what the server holds below bucket/prefix, directly in
// its posix backend (not timed; keeps a run's disk use to what the rows
// still need: at full scale every prefix of 64 MiB objects is 6.4 GB).
func (s *s3Server) drop(bucket, prefix string) {
	os.RemoveAll(filepath.Join(s.root, bucket, filepath.FromSlash(strings.TrimSuffix(prefix, "/"))))
}

// startS3 runs versitygw (posix backend under dir) on a free loopback
// port; stop kills it.
func startS3(dir string) (client *awss3.Client, stop func(), err error) {
	s, err := startS3Server(dir)
	if err != nil {
		return nil, nil, err
	}
	return s.Client, s.Stop, nil
}

func startS3Server(dir string) (*s3Server, error) { return startS3ServerWith(dir, false) }

// startS3ServerWith starts versitygw; keepAlive lets it keep connections
// open between requests (its --keep-alive; by default it closes every
// connection after one response, so each request dials anew - AWS S3
// keeps them).
func startS3ServerWith(dir string, keepAlive bool) (*s3Server, error) {
	bin := s3test.Binary()
	if bin == "" {
		return nil, fmt.Errorf("versitygw not found; run scripts/setup.d/10-s3.sh")
	}
	clearAWSEnv()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	secret := make([]byte, 16)
	rand.Read(secret)
	access, sk := "encjobbench", hex.EncodeToString(secret)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"--port", addr, "--quiet"}
	if keepAlive {
		args = append(args, "--keep-alive")
	}
	cmd := exec.Command(bin, append(args, "posix", dir)...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+access, "ROOT_SECRET_KEY="+sk)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw not answering on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := awss3.Options{Region: s3test.Region, BaseEndpoint: aws.String("http://" + addr), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, sk, "")}
	return &s3Server{Client: awss3.New(o), Stop: stop, opts: o, pid: cmd.Process.Pid, root: dir}, nil
}

// countingClient is a client of the server whose transport keeps enough
// idle connections for 64 concurrent requests (the SDK's default keeps
// 10 per host: at concurrency 16 both sides of a comparison would re-dial
// on every burst) and counts requests and body bytes. Everything else is
// the SDK's default - request checksums (CRC32 on PUT), payload signing,
// retries - and the same for every row that uses the client.
func (s *s3Server) countingClient() (*awss3.Client, *s3test.ByteCounter) {
	return s.delayedClient(0)
}

// delayedClient is countingClient with every request held back by
// latency before it is sent: a remote server's round trip (network and
// first byte), during which the client's goroutine waits and its CPU is
// free for other objects' work - what a client of AWS S3 sees, where the
// server's work is not on the client's cores.
func (s *s3Server) delayedClient(latency time.Duration) (*awss3.Client, *s3test.ByteCounter) {
	c := &s3test.ByteCounter{}
	var rt http.RoundTripper = s3test.Counting(s3test.PoolTransport(), c)
	if latency > 0 {
		rt = delayed{rt, latency}
	}
	hc := &http.Client{Transport: rt}
	return awss3.New(s.opts, func(o *awss3.Options) { o.HTTPClient = hc }), c
}

type delayed struct {
	base http.RoundTripper
	d    time.Duration
}

func (t delayed) RoundTrip(req *http.Request) (*http.Response, error) {
	tm := time.NewTimer(t.d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return t.base.RoundTrip(req)
}

// cpu is the server process's user + system CPU seconds so far (0 if
// /proc cannot tell).
func (s *s3Server) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime 14 and stime 15 (proc(5)), in clock ticks of 1/100 s.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// cmdS3 measures an S3 -> S3 prefix of 64 KiB objects: encrypted by the
// executor (plan + apply), and copied (list + GET + PUT) with the same
// client and concurrency - the row's bound - in the same process against
// the same server, in interleaved rounds (copy first in even rounds,
// encrypt first in odd ones); each mode's row is its fastest round. The
// rows carry the client's CPU seconds, the server's (in the note) and the
// HTTP requests per S3 operation (Calls).
func cmdS3(args []string) error {
	fs := flag.NewFlagSet("s3", flag.ExitOnError)
	id := fs.String("id", "s3", "row id prefix (rows <id>/copy and <id>/encrypt)")
	dir := fs.String("dir", "", "data directory")
	mode := fs.String("mode", "both", "both, encrypt or copy")
	conc := fs.Int("conc", 16, "concurrency")
	rounds := fs.Int("rounds", 2, "rounds per mode")
	keepAlive := fs.Bool("keepalive", false, "the server keeps connections open between requests (versitygw --keep-alive), as AWS S3 does")
	latency := fs.Duration("latency", 0, "hold every request back this long before it is sent (a remote server's round trip), both modes")
	fs.Parse(args)
	sc, err := readScale(*dir)
	if err != nil {
		return err
	}
	modes := map[string][]string{"both": {"copy", "encrypt"}, "copy": {"copy"}, "encrypt": {"encrypt"}}[*mode]
	if modes == nil {
		return fmt.Errorf("mode %q: want both, encrypt or copy", *mode)
	}
	n := min(1000, sc.Small)
	srv, err := startS3ServerWith(filepath.Join(*dir, "out", "s3-"+*id+"-"+*mode), *keepAlive)
	if err != nil {
		return err
	}
	defer srv.Stop()
	ctx := context.Background()
	client, counter := srv.delayedClient(*latency)
	for _, b := range []string{"src", "dst"} {
		if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	if err := s3Upload(ctx, client, n); err != nil {
		return err
	}
	b := &s3Bench{srv: srv, client: client, counter: counter, conc: *conc, n: n, key: filepath.Join(*dir, "key"), setup: s3Setup(*keepAlive, *latency)}
	if *mode == "both" {
		// The crypto half of the bound, 1/(1/crypto + 1/copy).
		r, err := b.memRow()
		if err != nil {
			return err
		}
		r.ID = *id + "/mem"
		emit(r)
	}
	best := map[string]Row{}
	for round := range *rounds {
		for i := range modes {
			m := modes[(i+round)%len(modes)]
			r, err := b.measure(ctx, m, fmt.Sprintf("%s-%d/", m, round))
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", m, round, err)
			}
			r.ID = *id + "/" + m
			fmt.Fprintf(os.Stderr, "bench s3: round %d %-7s plan %.2f s apply %.2f s, cpu client %.2f s server %.2f s, load %s\n",
				round, m, r.PlanS, r.Seconds, r.CPUS, r.ServerCPUS, load1())
			if prev, ok := best[m]; !ok || r.Seconds+r.PlanS < prev.Seconds+prev.PlanS {
				best[m] = r
			}
		}
	}
	for _, m := range modes {
		emit(best[m])
	}
	return nil
}

type s3Bench struct {
	srv     *s3Server
	client  *awss3.Client
	counter *s3test.ByteCounter
	conc, n int
	key     string
	setup   string // how server and client are set up, for the notes
}

// s3Setup describes the server and client setup in the rows' notes.
func s3Setup(keepAlive bool, latency time.Duration) string {
	s := "versitygw posix on loopback"
	if keepAlive {
		s += " with --keep-alive (connections reused)"
	} else {
		s += " (closes every connection after one response)"
	}
	if latency > 0 {
		s += fmt.Sprintf(", every request held back %v before it is sent (a remote server's round trip)", latency)
	}
	return s
}

// measure runs one mode into a fresh destination prefix and returns its
// row: the client's CPU seconds of the timed part, the server's in the
// note, the requests by operation in Calls.
func (b *s3Bench) measure(ctx context.Context, mode, prefix string) (Row, error) {
	runtime.GC()
	req0, c0, s0 := b.counter.Requests(), cpu(), b.srv.cpu()
	var plan, secs float64
	var total int64
	var err error
	switch mode {
	case "copy":
		secs, total, err = s3Copy(ctx, b.client, b.conc, b.n, prefix)
	case "encrypt":
		var sum *executor.Summary
		yaml := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: bench-s3}
spec:
  operation: encrypt
  sources: [{path: "s3://src/p/"}]
  output: {path: "s3://dst/%s"}
  keyGroups:
    dev: {provider: raw-aes, keyFile: %q, namespace: encjob, name: bench}
  encrypt: {keyGroup: dev, context: {tenant: acme}, algorithm: "0x0578"}
  execution: {concurrency: %d, retries: 0}
`, prefix, b.key, b.conc)
		sum, plan, secs, err = runJob(ctx, yaml, planner.Options{S3Client: b.client}, b.n)
		if sum != nil {
			total = sum.BytesIn
		}
	}
	if err != nil {
		return Row{}, err
	}
	clientCPU, serverCPU := cpu()-c0, b.srv.cpu()-s0
	calls := map[string]int64{}
	for op, k := range b.counter.Requests() {
		if d := k - req0[op]; d > 0 {
			calls[op] = d
		}
	}
	if err := b.checkArrived(ctx, prefix); err != nil {
		return Row{}, err
	}
	note := fmt.Sprintf("%d x 64 KiB, concurrency %d, %s; server CPU %.2f s (%.2f ms/object); requests/object: %s",
		b.n, b.conc, b.setup, serverCPU, serverCPU/float64(b.n)*1e3, perObject(calls, b.n))
	if mode == "copy" {
		note += "; list + GET + PUT with aws-sdk-go-v2 (same client)"
	} else {
		note += "; executor, 0x0578 raw AES; seconds = apply, listing and destination checks in plan_s"
	}
	return Row{Items: int64(b.n), Bytes: total, Seconds: secs, PlanS: plan, Calls: calls, Note: note,
		CPUS: clientCPU, ServerCPUS: serverCPU, RSSKiB: vmhwm()}, nil
}

// memRow is the engine's in-memory rate for the row's messages: n
// encryptions of 64 KiB with 0x0578 and the raw AES key, at the row's
// concurrency, one core per message (a 64 KiB message is one frame
// group), in the same process.
func (b *s3Bench) memRow() (Row, error) {
	key, err := os.ReadFile(b.key)
	if err != nil {
		return Row{}, err
	}
	kr, err := keyring.NewRawAES("encjob", "bench", key)
	if err != nil {
		return Row{}, err
	}
	cmm, s := crypto.NewDefaultCMM(kr), crypto.SuiteByID(0x0578)
	pt := make([]byte, 64<<10)
	rand.Read(pt)
	ctx := context.Background()
	runtime.GC()
	g := new(errgroup.Group)
	g.SetLimit(b.conc)
	c0, t := cpu(), time.Now()
	for range b.n {
		g.Go(func() error { return memEncrypt(ctx, pt, cmm, s, 1) })
	}
	if err := g.Wait(); err != nil {
		return Row{}, fmt.Errorf("in-memory encryption: %w", err)
	}
	return Row{Items: int64(b.n), Bytes: int64(b.n) * int64(len(pt)), Seconds: time.Since(t).Seconds(), CPUS: cpu() - c0, RSSKiB: vmhwm(),
		Note: fmt.Sprintf("engine in memory, %d x 64 KiB, 0x0578 raw AES, concurrency %d", b.n, b.conc)}, nil
}

// perObject formats requests per object by operation, in name order.
func perObject(calls map[string]int64, n int) string {
	ops := make([]string, 0, len(calls))
	for op := range calls {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var parts []string
	var all int64
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %.3g", op, float64(calls[op])/float64(n)))
		all += calls[op]
	}
	return fmt.Sprintf("%.3g (%s)", float64(all)/float64(n), strings.Join(parts, ", "))
}

// checkArrived checks that every object arrived under dst/prefix.
func (b *s3Bench) checkArrived(ctx context.Context, prefix string) error {
	var got int
	pg := awss3.NewListObjectsV2Paginator(b.srv.Client, &awss3.ListObjectsV2Input{Bucket: aws.String("dst"), Prefix: aws.String(prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return err
		}
		got += len(page.Contents)
	}
	if got != b.n {
		return fmt.Errorf("%d objects in dst/%s, want %d", got, prefix, b.n)
	}
	return nil
}

// s3Upload puts n random 64 KiB source objects (not timed).
func s3Upload(ctx context.Context, client *awss3.Client, n int) error {
	g := new(errgroup.Group)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			b := make([]byte, 64<<10)
			rand.Read(b)
			_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(fmt.Sprintf("p/%02d/obj-%04d", i%10, i)), Body: bytes.NewReader(b)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}

// s3Copy is the row's bound: list + GET + PUT of every source object with
// the same SDK and concurrency, to dst/prefix; it returns the seconds and
// bytes copied.
func s3Copy(ctx context.Context, client *awss3.Client, conc, n int, prefix string) (float64, int64, error) {
	t := time.Now()
	var keys []string
	pg := awss3.NewListObjectsV2Paginator(client, &awss3.ListObjectsV2Input{Bucket: aws.String("src"), Prefix: aws.String("p/")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("list: %w", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	var bytesCopied atomic.Int64
	g := new(errgroup.Group)
	g.SetLimit(conc)
	for _, k := range keys {
		g.Go(func() error {
			obj, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("src"), Key: aws.String(k)})
			if err != nil {
				return fmt.Errorf("get %s: %w", k, err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				return fmt.Errorf("get %s: %w", k, err)
			}
			if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("dst"), Key: aws.String(prefix + k), Body: bytes.NewReader(b)}); err != nil {
				return fmt.Errorf("put %s: %w", k, err)
			}
			bytesCopied.Add(int64(len(b)))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	secs := time.Since(t).Seconds()
	if len(keys) != n {
		return 0, 0, fmt.Errorf("listed %d objects, want %d", len(keys), n)
	}
	return secs, bytesCopied.Load(), nil
}

// load1 is the 1-minute load average, for the progress lines.
func load1() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
