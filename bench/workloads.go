package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// clearAWSEnv keeps a developer's AWS profile, region or endpoints out of
// the measurements.
func clearAWSEnv() {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			os.Unsetenv(k)
		}
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// rawAESJob is the spec of a local raw-AES job.
func rawAESJob(op, in, out, key, suite string, conc int) string {
	y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: bench}
spec:
  operation: %s
  sources: [{path: %q}]
  output: {path: %q}
  keyGroups:
    dev: {provider: raw-aes, keyFile: %q, namespace: encjob, name: bench}
  execution: {concurrency: %d, retries: 0}
`, op, in, out, key, conc)
	if op == "encrypt" {
		y += fmt.Sprintf("  encrypt: {keyGroup: dev, context: {tenant: acme}, algorithm: \"0x%s\"}\n", suite)
	} else {
		y += "  decrypt: {keyGroup: dev}\n"
	}
	return y
}

// lastApplyCPU is the process CPU time of the last runJob's apply.
var lastApplyCPU float64

// runJob plans and applies a job, returning the summary, the planning time
// and the apply time.
func runJob(ctx context.Context, yaml string, o planner.Options, want int) (*executor.Summary, float64, float64, error) {
	docs, err := spec.Parse("bench.yaml", []byte(yaml), nil)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("spec: %w", err)
	}
	t := time.Now()
	rt, err := planner.Prepare(ctx, docs[0].Job, o)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("prepare: %w", err)
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "bench"})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("plan: %w", err)
	}
	plan := time.Since(t).Seconds()
	t, c := time.Now(), cpu()
	sum, err := executor.Apply(ctx, rt, p, executor.Options{})
	apply := time.Since(t).Seconds()
	lastApplyCPU = cpu() - c
	if err != nil {
		return nil, 0, 0, fmt.Errorf("apply: %w", err)
	}
	done := 0
	for a, n := range sum.Done {
		if a.Changes() {
			done += n
		}
	}
	if !sum.OK() || done != want {
		first := ""
		if len(sum.Failed) > 0 {
			first = sum.Failed[0].Err.Error()
		}
		return nil, 0, 0, fmt.Errorf("%d of %d items done, %d failed (first: %s); counts %v", done, want, len(sum.Failed), first, p.Counts())
	}
	return sum, plan, apply, nil
}

// listFiles returns the regular files under root, leaving out encjob's
// state directory (an output root holds one: its journal is no item).
func listFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == sources.StateDir {
			return filepath.SkipDir
		}
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	sort.Strings(out)
	return out, err
}

// cmdExec runs one raw-AES job on local files through the executor.
func cmdExec(args []string) error {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	dir := fs.String("dir", "", "data directory")
	op := fs.String("op", "encrypt", "encrypt or decrypt")
	in := fs.String("in", "", "input directory")
	out := fs.String("out", "", "output directory (must not exist)")
	suite := fs.String("suite", "0578", "suite id (hex)")
	conc := fs.Int("conc", 0, "concurrency (0: 2 x cores)")
	fs.Parse(args)
	if *conc == 0 {
		*conc = 2 * runtime.GOMAXPROCS(0)
	}
	files, err := listFiles(*in)
	if err != nil {
		return err
	}
	var bytesIn int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			bytesIn += fi.Size()
		}
	}
	if err := readAll(files); err != nil {
		return err
	}
	ctx := context.Background()
	sum, plan, apply, err := runJob(ctx, rawAESJob(*op, *in, *out, filepath.Join(*dir, "key"), *suite, *conc), planner.Options{}, len(files))
	if err != nil {
		return fmt.Errorf("%s: %w", *id, err)
	}
	plain := sum.BytesIn
	if *op == "decrypt" {
		plain = sum.BytesOut
	}
	emit(Row{ID: *id, Items: int64(len(files)), Bytes: plain, Seconds: apply, PlanS: plan, ApplyCPUS: lastApplyCPU,
		Note: fmt.Sprintf("executor, concurrency %d", *conc)})
	return nil
}

// readAll reads the files once, untimed, through io.Discard's small
// buffer (peak RSS stays the row's), so that every exec row (bench/run's,
// the one-core ones, a hand-run A/B) starts from page-cached inputs as
// its bounds do, which read the same files right after it. This VM's
// kernel runs a DAMON pageout scheme (/sys/kernel/mm/damon: pages not
// accessed for 12 x 5 s are reclaimed, 128 MiB/s at most): fincore showed
// 1-9% of the 4 KiB inputs gone a minute after they were read, and the
// row alone paid disk reads (sched_switch: workers in filemap_read, 117
// ms off-CPU in one 2,500-file row; the 1 MiB set +0.3-0.6 s).
func readAll(files []string) error {
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, fh)
		fh.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// cmdMem is the in-memory rate of the engine for the same messages: the
// inputs are read into memory first (not timed), then each is encrypted
// or decrypted from memory to io.Discard on conc goroutines, one core per
// message as the executor does.
func cmdMem(args []string) error {
	fs := flag.NewFlagSet("mem", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	dir := fs.String("dir", "", "data directory")
	op := fs.String("op", "encrypt", "encrypt or decrypt")
	in := fs.String("in", "", "input directory (plaintext to encrypt, messages to decrypt)")
	suite := fs.String("suite", "0578", "suite id (hex)")
	conc := fs.Int("conc", 0, "goroutines (0: 2 x cores)")
	msgCores := fs.Int("msgcores", 1, "cores per message (engine Concurrency; 0 = all)")
	fs.Parse(args)
	if *conc == 0 {
		*conc = 2 * runtime.GOMAXPROCS(0)
	}
	files, err := listFiles(*in)
	if err != nil {
		return err
	}
	data := make([][]byte, len(files))
	for i, f := range files {
		if data[i], err = os.ReadFile(f); err != nil {
			return err
		}
	}
	key, err := os.ReadFile(filepath.Join(*dir, "key"))
	if err != nil {
		return err
	}
	kr, err := keyring.NewRawAES("encjob", "bench", key)
	if err != nil {
		return err
	}
	cmm := crypto.NewDefaultCMM(kr)
	var id16 uint16
	fmt.Sscanf(*suite, "%x", &id16)
	s := crypto.SuiteByID(id16)
	ctx := context.Background()
	var next atomic.Int64
	var plain atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(data) {
					return
				}
				var err error
				if *op == "encrypt" {
					err = memEncrypt(ctx, data[i], cmm, s, *msgCores)
					plain.Add(int64(len(data[i])))
				} else {
					var n int64
					n, err = memDecrypt(ctx, data[i], cmm, *msgCores)
					plain.Add(n)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", files[i], err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if firstErr != nil {
		return firstErr
	}
	emit(Row{ID: *id, Items: int64(len(data)), Bytes: plain.Load(), Seconds: secs,
		Note: fmt.Sprintf("engine in memory, %d goroutines, %s per message; RSS includes the inputs held in memory", *conc, coresName(*msgCores))})
	return nil
}

func coresName(n int) string {
	if n == 0 {
		return "all cores"
	}
	if n == 1 {
		return "1 core"
	}
	return fmt.Sprintf("%d cores", n)
}

func memEncrypt(ctx context.Context, pt []byte, cmm crypto.MaterialsManager, s *crypto.Suite, cores int) error {
	e, err := crypto.NewEncryptor(ctx, io.Discard, crypto.EncryptOptions{CMM: cmm, Suite: s,
		Context: crypto.EncryptionContext{"tenant": "acme"}, PlaintextLength: int64(len(pt)), KnownLength: true, Concurrency: cores})
	if err != nil {
		return err
	}
	for len(pt) > 0 {
		n := min(len(pt), 1<<20)
		if _, err := e.Write(pt[:n]); err != nil {
			return err
		}
		pt = pt[n:]
	}
	return e.Close()
}

func memDecrypt(ctx context.Context, msg []byte, cmm crypto.MaterialsManager, cores int) (int64, error) {
	d, err := crypto.NewDecryptor(ctx, bytes.NewReader(msg), crypto.DecryptOptions{CMM: cmm, Concurrency: cores})
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, d)
}

// The KMS emulator's seed: fixed key material, so that messages written by
// one process (prepare) decrypt in another.
func kmsSeed() string {
	mat := func(s string) string { h := sha256.Sum256([]byte(s)); return base64.StdEncoding.EncodeToString(h[:]) }
	return fmt.Sprintf(`account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
    material: %s
  - id: 22223333-4444-5555-6666-777788889999
    material: %s
`, mat("bench old key"), mat("bench new key"))
}

type kmsEnv struct {
	emu      *kmsemu.Emulator
	srv      *httptest.Server
	old, new string
	conns    atomic.Int64 // connections accepted
}

func startKMS() (*kmsEnv, error) {
	clearAWSEnv()
	sd, err := kmsemu.ParseSeed([]byte(kmsSeed()))
	if err != nil {
		return nil, err
	}
	emu, err := kmsemu.New(sd)
	if err != nil {
		return nil, err
	}
	k := &kmsEnv{emu: emu, srv: httptest.NewUnstartedServer(emu)}
	// Count the connections clients open: each costs a dial here and a
	// TCP + TLS handshake against AWS.
	k.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			k.conns.Add(1)
		}
	}
	k.srv.Start()
	k.old, _ = emu.KeyARN("1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1")
	k.new, _ = emu.KeyARN("22223333-4444-5555-6666-777788889999", "us-east-1")
	return k, nil
}

func (k *kmsEnv) options() planner.Options {
	return planner.Options{KMS: awskms.Config{Endpoint: k.srv.URL, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}}
}

func kmsJob(op, in, out, encKey, decKey, extra string, conc int) string {
	y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: bench-kms}
spec:
  operation: %s
  sources: [{path: %q}]
  output: {path: %q}
  keyGroups:
    enc: {provider: aws-kms, keys: [%q]}
    dec: {provider: aws-kms, keys: [%q]}
  execution: {concurrency: %d, retries: 0}
%s`, op, in, out, encKey, decKey, conc, extra)
	switch op {
	case "encrypt":
		y += "  encrypt: {keyGroup: enc, context: {tenant: acme}}\n"
	case "reencrypt":
		y += "  encrypt: {keyGroup: enc}\n  reencrypt: {add: {migrated: \"yes\"}}\n  decrypt: {keyGroup: dec}\n"
	}
	return y
}

// prepareKMS encrypts the small files under the old KMS key (no caching:
// one data key per file, as aws-encryption-cli writes them by default).
func prepareKMS(dir string) error {
	k, err := startKMS()
	if err != nil {
		return err
	}
	defer k.srv.Close()
	files, err := listFiles(filepath.Join(dir, "small"))
	if err != nil {
		return err
	}
	_, _, _, err = runJob(context.Background(), kmsJob("encrypt", filepath.Join(dir, "small"), filepath.Join(dir, "kms", "in"), k.old, k.old, "", 2*runtime.GOMAXPROCS(0)), k.options(), len(files))
	return err
}

// cmdKMS re-encrypts the KMS-encrypted small files under the new key,
// with 5 ms (by default) of injected latency on every KMS call.
func cmdKMS(args []string) error {
	fs := flag.NewFlagSet("kms", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	dir := fs.String("dir", "", "data directory")
	conc := fs.Int("conc", 16, "concurrency")
	cache := fs.Bool("cache", false, "use the caching materials manager")
	latency := fs.Duration("latency", 5*time.Millisecond, "latency injected into every KMS call")
	limit := fs.Int("dirs", 0, "re-encrypt only the first N directories of 1,000 files (0: all)")
	out := fs.String("out", "", "output directory (must not exist)")
	fs.Parse(args)
	k, err := startKMS()
	if err != nil {
		return err
	}
	defer k.srv.Close()
	in := filepath.Join(*dir, "kms", "in")
	if *limit > 0 {
		in = filepath.Join(in, "d00")
		if *limit > 1 {
			return fmt.Errorf("dirs: only 0 or 1 supported")
		}
	}
	files, err := listFiles(in)
	if err != nil {
		return err
	}
	extra := ""
	if *cache {
		extra = "  caching: {capacity: 1000, maxAge: 5m, maxMessagesEncrypted: 1000}\n"
	}
	k.emu.SetFaults(kmsemu.Faults{Latency: *latency})
	k.emu.ResetCalls()
	_, plan, apply, err := runJob(context.Background(), kmsJob("reencrypt", in, *out, k.new, k.old, extra, *conc), k.options(), len(files))
	if err != nil {
		return fmt.Errorf("%s: %w", *id, err)
	}
	calls := map[string]int64{}
	for op, n := range k.emu.Calls() {
		if n > 0 {
			calls[op] = n
		}
	}
	note := fmt.Sprintf("reencrypt 0x0578 -> 0x0578, %v per KMS call, concurrency %d, %d connections to KMS", *latency, *conc, k.conns.Load())
	if *cache {
		note += ", caching {capacity 1000, maxAge 5m, maxMessagesEncrypted 1000}"
	}
	emit(Row{ID: *id, Items: int64(len(files)), Seconds: apply, PlanS: plan, ApplyCPUS: lastApplyCPU, Calls: calls, Note: note})
	return nil
}
