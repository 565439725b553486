package main

// The Kubernetes Indexed Job simulation (issue 7): N encjob processes with
// the environment an Indexed Job gives its pods (JOB_COMPLETION_INDEX,
// --shards N, --metadata-output s3://…/shard-$(INDEX).jsonl) over a few
// thousand objects on the real S3 server; one shard is SIGKILLed mid-run
// and re-run alone; then every object must be encrypted exactly once and
// `encjob report` over the logs must give the exact totals. Run once with
// every shard listing the source, once with `encjob partition` + --items.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/internal/partition"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/internal/shard"
	"github.com/encjob/encjob/sources/s3test"
)

const (
	simItems  = 1000
	simSize   = 1024
	simShards = 4
	simVictim = 2  // the index that is killed
	simPass   = 25 // output PUTs the victim completes before the proxy holds the rest
)

func TestShardSimulation(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket(t, "data")
	srv.CreateBucket(t, "runs")
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("encjob-sim", "main", key)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"list", "partition"} {
		t.Run(mode, func(t *testing.T) { simulate(t, srv, mode, key, kr) })
	}
}

type simRun struct {
	t       *testing.T
	srv     *s3test.Server
	mode    string
	dir     string
	spec    string
	inputs  map[string][]byte // source key (below MODE/in/) → content
	baseEnv []string
}

func simulate(t *testing.T, srv *s3test.Server, mode string, key []byte, kr crypto.Keyring) {
	ctx := context.Background()
	r := &simRun{t: t, srv: srv, mode: mode, dir: t.TempDir(), inputs: map[string][]byte{}}
	keyFile := filepath.Join(r.dir, "key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	r.spec = filepath.Join(r.dir, "job.yaml")
	writeSimSpec(t, r.spec, mode, keyFile, "")
	r.baseEnv = append(cleanEnv(), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(r.dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(r.dir, "none"))

	start := time.Now()
	for i := range simItems {
		b := make([]byte, simSize)
		rand.Read(b)
		r.inputs[fmt.Sprintf("d%02d/obj-%05d.bin", i%17, i)] = b
	}
	r.putAll(ctx, r.inputs)
	t.Logf("%s: uploaded %d objects of %d B in %s", mode, simItems, simSize, time.Since(start).Round(time.Millisecond))

	owner := map[string]int{} // source key → shard
	perShard := make([]int, simShards)
	for k := range r.inputs {
		owner[k] = shard.Of(r.identity(k), simShards)
		perShard[owner[k]]++
	}
	want := map[string][]byte{} // the inputs this run must encrypt
	for k, v := range r.inputs {
		want[k] = v
	}

	itemsPrefix := fmt.Sprintf("s3://runs/%s/items/", mode)
	logsPrefix := fmt.Sprintf("s3://runs/%s/logs/", mode)
	var extra []string
	vanished := ""
	if mode == "partition" {
		// Refused before any partition exists.
		res := r.encjob(nil, "apply", "-f", r.spec, "--items", itemsPrefix, "--shard", "0/4", "--no-progress")
		wantCode(t, res, exitStale)
		if !strings.Contains(res.stderr, "manifest.json") {
			t.Fatalf("missing manifest: stderr does not name manifest.json:\n%s", res.stderr)
		}

		start = time.Now()
		res = r.encjob(nil, "partition", "-f", r.spec, "--shards", "4", "--out", itemsPrefix)
		wantCode(t, res, 0)
		t.Logf("partition: %s in %s", strings.TrimSpace(strings.SplitN(res.stdout, "\n", 2)[0]), time.Since(start).Round(time.Millisecond))
		m := r.manifest(ctx, "runs", mode+"/items/manifest.json")
		if m.Shards != simShards || m.Items != simItems || len(m.Parts) != simShards || m.SpecDigest == "" {
			t.Fatalf("manifest: %+v", m)
		}
		for i, p := range m.Parts {
			if int(p.Items) != perShard[i] {
				t.Errorf("part %d: %d items, want %d (the planner's identity hashes to that many)", i, p.Items, perShard[i])
			}
		}

		// Refusals: another shard count, another spec.
		res = r.encjob([]string{"JOB_COMPLETION_INDEX=0"}, "apply", "-f", r.spec, "--shards", "3", "--items", itemsPrefix, "--no-progress")
		wantCode(t, res, exitStale)
		other := filepath.Join(r.dir, "other.yaml")
		writeSimSpec(t, other, mode, keyFile, "  encrypt: {keyGroup: main, context: {changed: \"yes\"}}\n")
		res = r.encjob([]string{"JOB_COMPLETION_INDEX=0"}, "apply", "-f", other, "--shards", "4", "--items", itemsPrefix, "--no-progress")
		wantCode(t, res, exitStale)
		if !strings.Contains(res.stderr, "spec digest") {
			t.Fatalf("other spec: stderr does not explain the refusal:\n%s", res.stderr)
		}
		if n := r.count(ctx, "data", mode+"/out/"); n != 0 {
			t.Fatalf("refused runs wrote %d outputs", n)
		}

		// Between partition and apply: one listed object is deleted (its
		// shard reports it vanished), one new object appears (not in this
		// run's snapshot: nobody processes it).
		for k := range r.inputs {
			if owner[k] == 0 {
				vanished = k
				break
			}
		}
		if _, err := srv.Client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String(mode + "/in/" + vanished)}); err != nil {
			t.Fatal(err)
		}
		delete(want, vanished)
		r.putAll(ctx, map[string][]byte{"late/new.bin": []byte("added after the partition")})
		extra = []string{"--items", itemsPrefix}
	}

	// The Indexed Job: 4 pods at once; the victim talks to S3 through a
	// proxy that lets simPass output PUTs through and then holds the rest,
	// so it is killed mid-run whatever the machine's speed.
	px := newHoldingProxy(t, srv.Endpoint, "/data/"+mode+"/out/", simPass)
	start = time.Now()
	type proc struct {
		cmd    *exec.Cmd
		out    bytes.Buffer
		waited chan error
	}
	procs := make([]*proc, simShards)
	for i := range simShards {
		endpoint := srv.Endpoint
		if i == simVictim {
			endpoint = px.URL
		}
		env := append(r.env(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i), "AWS_ENDPOINT_URL_S3="+endpoint)
		a := append([]string{"apply", "-f", r.spec, "--shards", "4", "--no-progress",
			"--metadata-output", fmt.Sprintf("%sshard-%d.jsonl", logsPrefix, i)}, extra...)
		p := &proc{cmd: exec.Command(binPath, a...), waited: make(chan error, 1)}
		p.cmd.Env, p.cmd.Dir = env, r.dir
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.waited <- p.cmd.Wait() }()
		procs[i] = p
	}
	select {
	case <-px.holding:
	case err := <-procs[simVictim].waited:
		t.Fatalf("the victim shard exited before the proxy held its uploads: %v\n%s", err, procs[simVictim].out.String())
	}
	if err := procs[simVictim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-procs[simVictim].waited; err == nil || procs[simVictim].cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("victim: %v, want killed by SIGKILL", err)
	}
	killedAt := time.Since(start)
	px.release()
	for i, p := range procs {
		if i == simVictim {
			continue
		}
		if err := <-p.waited; err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, p.out.String())
		}
	}
	firstWave := time.Since(start)

	// What the victim committed before it died; its log was never uploaded.
	done := r.outputs(ctx)
	k := 0
	for out := range done {
		if owner[strings.TrimSuffix(out, ".encrypted")] == simVictim {
			k++
		}
	}
	if k == 0 || k >= perShard[simVictim] {
		t.Fatalf("victim committed %d of its %d items before it was killed; want a part", k, perShard[simVictim])
	}
	if r.exists(ctx, "runs", fmt.Sprintf("%s/logs/shard-%d.jsonl", mode, simVictim)) {
		t.Fatalf("a SIGKILLed shard uploaded its log")
	}
	for i := range simShards {
		if i != simVictim && !r.exists(ctx, "runs", fmt.Sprintf("%s/logs/shard-%d.jsonl", mode, i)) {
			t.Fatalf("shard %d uploaded no log", i)
		}
	}

	// Kubernetes retries the failed index: the same environment, alone.
	start = time.Now()
	res := r.encjob([]string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", simVictim)},
		append([]string{"apply", "-f", r.spec, "--shards", "4", "--no-progress",
			"--metadata-output", fmt.Sprintf("%sshard-%d.jsonl", logsPrefix, simVictim)}, extra...)...)
	wantCode(t, res, 0)
	rerun := time.Since(start)
	t.Logf("%s: %d shards (%v items each), shard %d SIGKILLed after %s with %d of %d done; others finished in %s; re-run of index %d took %s",
		mode, simShards, perShard, simVictim, killedAt.Round(time.Millisecond), k, perShard[simVictim], firstWave.Round(time.Millisecond),
		simVictim, rerun.Round(time.Millisecond))

	// Every wanted object encrypted exactly once, nothing else written.
	done = r.outputs(ctx)
	if len(done) != len(want) {
		t.Errorf("%d outputs, want %d", len(done), len(want))
	}
	cmm := crypto.NewDefaultCMM(kr)
	for k, plain := range want {
		msg, ok := done[k+".encrypted"]
		if !ok {
			t.Errorf("%s: no output", k)
			continue
		}
		got, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: crypto.RequireEncryptRequireDecrypt})
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: decrypts to %d bytes (%v), want its %d-byte source", k, len(got), err, len(plain))
		}
	}
	if vanished != "" {
		if _, ok := done[vanished+".encrypted"]; ok {
			t.Errorf("vanished %s was encrypted", vanished)
		}
		if _, ok := done["late/new.bin.encrypted"]; ok {
			t.Errorf("an object created after the partition was encrypted")
		}
	}

	// The logs: each input encrypted by one shard only, by its owner.
	encryptedBy := map[string][]string{}
	lines := map[string]int{}
	for i := range simShards {
		for _, rec := range r.logLines(ctx, fmt.Sprintf("%s/logs/shard-%d.jsonl", mode, i)) {
			in := rec["input"].(string)
			lines[in]++
			if rec["shard"] != fmt.Sprintf("%d/%d", i, simShards) {
				t.Errorf("shard-%d.jsonl: %s logged with shard %v", i, in, rec["shard"])
			}
			if own := shard.Of(in, simShards); own != i {
				t.Errorf("shard-%d.jsonl: %s belongs to shard %d", i, in, own)
			}
			if rec["action"] == "encrypt" && rec["status"] == "done" {
				encryptedBy[in] = append(encryptedBy[in], fmt.Sprint(i))
			}
		}
	}
	for in, by := range encryptedBy {
		if len(by) > 1 {
			t.Errorf("%s encrypted by shards %v", in, by)
		}
	}
	if len(lines) != len(r.inputs) {
		t.Errorf("the logs name %d inputs, want %d (the listed ones)", len(lines), len(r.inputs))
	}
	for in, n := range lines {
		if n != 1 {
			t.Errorf("%s: %d lines, want 1 (each shard's log is replaced by its last run)", in, n)
		}
	}

	// The merged report: exact totals.
	res = r.encjob(nil, "report", "--json", "--s3-path-style", logsPrefix)
	wantCode(t, res, 0)
	var sum report.Summary
	if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
		t.Fatalf("report --json: %v\n%s", err, res.stdout)
	}
	wantActions := map[string]int{"encrypt": len(want) - k, "unchanged": k}
	wantItems := len(want)
	if vanished != "" {
		wantActions["skip"] = 1
		wantItems++
	}
	if sum.Logs != simShards || sum.Items != wantItems || len(sum.Failures) != 0 || len(sum.Duplicates) != 0 {
		t.Errorf("report: %d logs, %d items, %d failures, %d duplicates; want %d, %d, 0, 0", sum.Logs, sum.Items, len(sum.Failures), len(sum.Duplicates), simShards, wantItems)
	}
	for _, a := range report.Actions {
		if sum.Actions[a] != wantActions[a] {
			t.Errorf("report: %d %s, want %d", sum.Actions[a], a, wantActions[a])
		}
	}
	if wantIn := int64(len(want)-k) * simSize; sum.BytesIn != wantIn {
		t.Errorf("report: %d bytes in, want %d", sum.BytesIn, wantIn)
	}
	if len(sum.Shards) != simShards {
		t.Errorf("report: shards %v", sum.Shards)
	}
	if vanished != "" {
		recs := r.logLines(ctx, fmt.Sprintf("%s/logs/shard-0.jsonl", mode))
		found := false
		for _, rec := range recs {
			if rec["input"] == r.identity(vanished) {
				found = rec["action"] == "skip" && rec["reason"] == "vanished"
			}
		}
		if !found {
			t.Errorf("the vanished item is not logged as skip %q", "vanished")
		}
	}
}

func writeSimSpec(t *testing.T, path, mode, keyFile, encrypt string) {
	t.Helper()
	if encrypt == "" {
		encrypt = "  encrypt: {keyGroup: main}\n"
	}
	y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: sim-%[1]s}
spec:
  operation: encrypt
  sources:
    - path: s3://data/%[1]s/in/
  output:
    path: s3://data/%[1]s/out/
  keyGroups:
    main: {provider: raw-aes, keyFile: %[2]s, namespace: encjob-sim, name: main}
%[3]s  execution: {concurrency: 8}
  s3: {pathStyle: true}
`, mode, keyFile, encrypt)
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *simRun) identity(key string) string { return "s3://data/" + r.mode + "/in/" + key }

func (r *simRun) env() []string { return append(append([]string(nil), r.baseEnv...), r.srv.Env()...) }

// encjob runs the binary with the S3 environment plus extra entries.
func (r *simRun) encjob(extra []string, args ...string) result {
	r.t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir, cmd.Env = r.dir, append(r.env(), extra...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("running encjob: %v", err)
	}
	return result{so.String(), se.String(), code}
}

func (r *simRun) putAll(ctx context.Context, objs map[string][]byte) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for k, v := range objs {
		g.Go(func() error {
			_, err := r.srv.Client.PutObject(gctx, &awss3.PutObjectInput{Bucket: aws.String("data"),
				Key: aws.String(r.mode + "/in/" + k), Body: bytes.NewReader(v)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		r.t.Fatal(err)
	}
}

// outputs downloads every object under MODE/out/, by key below it.
func (r *simRun) outputs(ctx context.Context) map[string][]byte {
	prefix := r.mode + "/out/"
	var keys []string
	pg := awss3.NewListObjectsV2Paginator(r.srv.Client, &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: &prefix})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	var mu sync.Mutex
	out := map[string][]byte{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error {
			b := r.get(gctx, "data", k)
			mu.Lock()
			out[strings.TrimPrefix(k, prefix)] = b
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return out
}

func (r *simRun) count(ctx context.Context, bucket, prefix string) int {
	out, err := r.srv.Client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(out.Contents)
}

func (r *simRun) get(ctx context.Context, bucket, key string) []byte {
	out, err := r.srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		r.t.Errorf("get s3://%s/%s: %v", bucket, key, err)
		return nil
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		r.t.Errorf("get s3://%s/%s: %v", bucket, key, err)
	}
	return b
}

func (r *simRun) exists(ctx context.Context, bucket, key string) bool {
	_, err := r.srv.Client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &bucket, Key: &key})
	return err == nil
}

func (r *simRun) manifest(ctx context.Context, bucket, key string) partition.Manifest {
	var m partition.Manifest
	if err := json.Unmarshal(r.get(ctx, bucket, key), &m); err != nil {
		r.t.Fatalf("manifest: %v", err)
	}
	return m
}

func (r *simRun) logLines(ctx context.Context, key string) []map[string]any {
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(r.get(ctx, "runs", key)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			r.t.Fatalf("%s: %q: %v", key, sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

// holdingProxy forwards to the S3 server; after pass PUTs to paths under
// hold it holds every further one (until release or the client goes
// away) and closes holding.
type holdingProxy struct {
	*httptest.Server
	holding  chan struct{}
	released chan struct{}
	once     sync.Once
}

func newHoldingProxy(t *testing.T, target, hold string, pass int64) *holdingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the signed Host header
	p := &holdingProxy{holding: make(chan struct{}), released: make(chan struct{})}
	var puts atomic.Int64
	var holdOnce sync.Once
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.HasPrefix(req.URL.Path, hold) && puts.Add(1) > pass {
			holdOnce.Do(func() { close(p.holding) })
			select {
			case <-p.released:
			case <-req.Context().Done():
			}
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { p.release(); p.Close() })
	return p
}

func (p *holdingProxy) release() { p.once.Do(func() { close(p.released) }) }

// TestReadmeKubernetesManifest keeps the rendered manifest in README.md's
// "Running on Kubernetes" section equal to what the binary renders for the
// command shown there.
func TestReadmeKubernetesManifest(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- k8s-example:manifest -->\n```yaml\n")
	want, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("README.md: no <!-- k8s-example:manifest --> yaml block")
	}
	const (
		oldARN = "arn:aws:kms:eu-west-1:111122223333:key/1111aaaa-11aa-11aa-11aa-1111aaaa1111"
		newARN = "arn:aws:kms:eu-west-1:111122223333:key/2222bbbb-22bb-22bb-22bb-2222bbbb2222"
	)
	cmd := exec.Command(binPath, "render", "k8s", "-f", "internal/k8s/testdata/nightly-reencrypt.yaml", "--namespace", "billing",
		"--image", "registry.example.com/encjob:v1.0.0", "--shards", "8", "--parallelism", "4",
		"--service-account", "encjob-nightly", "--requests-memory", "512Mi", "--limits-memory", "1Gi",
		"--metadata-prefix", "s3://acme-encjob-results/runs/nightly-invoices/",
		"--items", "s3://acme-encjob-results/runs/nightly-invoices/items/",
		"--env", "AWS_REGION=eu-west-1", "--env", "BUCKET=acme-invoices", "--env", "OLD_KEY_ARN="+oldARN, "--env", "NEW_KEY_ARN="+newARN)
	cmd.Dir = "../.."
	cmd.Env = append(cleanEnv(), "BUCKET=acme-invoices", "OLD_KEY_ARN="+oldARN, "NEW_KEY_ARN="+newARN)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	if string(got) != want {
		t.Errorf("README.md's manifest differs from the binary's; paste this:\n%s", got)
	}
	// The same options as internal/k8s's golden file, but for --items (and
	// the golden's maxFailedIndexes and --no-progress, which render's flags
	// do not set): the README and the golden cannot drift apart.
	golden, err := os.ReadFile("../../internal/k8s/testdata/nightly-reencrypt.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	norm := strings.NewReplacer("  maxFailedIndexes: 2\n", "", "        - --no-progress\n", "",
		"        - --items\n        - s3://acme-encjob-results/runs/nightly-invoices/items/\n", "")
	if norm.Replace(string(golden)) != norm.Replace(string(got)) {
		t.Errorf("the README example and internal/k8s/testdata/nightly-reencrypt.golden.yaml differ beyond --items")
	}
}
