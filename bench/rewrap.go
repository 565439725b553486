package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// cmdRewrap measures issue 18's benchmark in one process, so the three
// rows share the data and the machine's state: a plain copy of the
// encrypted data, a full re-encryption and a rewrap (reencrypt.mode
// rewrap, with allowHeaderNonceReuse: every committing suite is message
// format v2), each to a new output. -where local: the large file of the
// data set; -where s3: N x 64 MiB objects on versitygw (N = 100 x scale,
// at least 2). Each row has wall seconds, the CPU seconds of the timed
// part (Value: bytes through the client, measured on the HTTP client for
// S3; for local files what encjob read and wrote itself, the storage's
// own copies left out).
func cmdRewrap(args []string) error {
	fs := flag.NewFlagSet("rewrap", flag.ExitOnError)
	id := fs.String("id", "rewrap", "row id prefix")
	dir := fs.String("dir", "", "data directory")
	where := fs.String("where", "local", "local or s3")
	suite := fs.String("suite", "0478", "suite of the messages, hex")
	conc := fs.Int("conc", 4, "concurrency")
	fs.Parse(args)
	sc, err := readScale(*dir)
	if err != nil {
		return err
	}
	newKey := filepath.Join(*dir, "key-rewrap")
	if _, err := os.Stat(newKey); err != nil {
		k := make([]byte, 32)
		rand.Read(k)
		if err := os.WriteFile(newKey, k, 0o600); err != nil {
			return err
		}
	}
	r := &rewrapBench{id: *id + "/" + *where + "/" + *suite, dir: *dir, suite: *suite, conc: *conc, oldKey: filepath.Join(*dir, "key"), newKey: newKey}
	if *where == "s3" {
		return r.s3(int(max(2, 100*sc.Factor+0.5)))
	}
	return r.local(filepath.Join(*dir, "large"))
}

type rewrapBench struct {
	id, dir, suite string
	conc           int
	oldKey, newKey string
	opts           planner.Options
	srv            *s3Server // S3 rows: the server, whose CPU each row reports
}

// job is the spec of one encjob run of the benchmark (mode inplace: a
// rewrap of in itself, headers rewritten in place; out is unused).
func (r *rewrapBench) job(op, in, out, mode string) string {
	output := fmt.Sprintf("{path: %q}", out)
	if mode == "inplace" {
		output = "{inPlace: true}"
	}
	y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: bench-rewrap}
spec:
  operation: %s
  sources: [{path: %q}]
  output: %s
  keyGroups:
    old: {provider: raw-aes, keyFile: %q, namespace: encjob, name: old}
    new: {provider: raw-aes, keyFile: %q, namespace: encjob, name: new}
  execution: {concurrency: %d, retries: 0}
`, op, in, output, r.oldKey, r.newKey, r.conc)
	switch {
	case op == "encrypt":
		y += fmt.Sprintf("  encrypt: {keyGroup: old, context: {tenant: acme}, algorithm: \"0x%s\"}\n", r.suite)
	case mode == "rewrap":
		y += "  decrypt: {keyGroup: old}\n  encrypt: {keyGroup: new}\n  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true}\n"
	case mode == "inplace":
		y += "  decrypt: {keyGroup: old}\n  encrypt: {keyGroup: new}\n  reencrypt: {mode: rewrap, allowHeaderNonceReuse: true, headerInPlace: true}\n"
	default:
		y += "  decrypt: {keyGroup: old}\n  encrypt: {keyGroup: new}\n"
	}
	return y
}

// run plans and applies a job; it returns the summary, the apply time and
// the bytes encjob moved itself (in + out, less what the storage copied
// or kept). inPlace: every done item must have had its header rewritten
// in place (the row measures that path, not a fallback).
func (r *rewrapBench) run(ctx context.Context, yaml string, want int, inPlace ...bool) (*executor.Summary, float64, int64, error) {
	docs, err := spec.Parse("bench.yaml", []byte(yaml), nil)
	if err != nil {
		return nil, 0, 0, err
	}
	rt, err := planner.Prepare(ctx, docs[0].Job, r.opts)
	if err != nil {
		return nil, 0, 0, err
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: "bench"})
	if err != nil {
		return nil, 0, 0, err
	}
	var meta bytes.Buffer
	t := time.Now()
	sum, err := executor.Apply(ctx, rt, p, executor.Options{Metadata: executor.NewMetadataLog(&meta)})
	secs := time.Since(t).Seconds()
	if err != nil {
		return nil, 0, 0, err
	}
	done, moved := 0, int64(0)
	for _, line := range strings.Split(strings.TrimSpace(meta.String()), "\n") {
		var rec executor.Record
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Status == "done" && rec.Action.Changes() {
			if len(inPlace) > 0 && inPlace[0] && !rec.HeaderInPlace {
				return nil, 0, 0, fmt.Errorf("%s: the header was not rewritten in place", rec.Input)
			}
			done++
			moved += rec.BytesIn + rec.BytesOut - 2*rec.BytesInStorage
		}
	}
	if !sum.OK() || done != want {
		return nil, 0, 0, fmt.Errorf("%d of %d items done, %d failed; counts %v", done, want, len(sum.Failed), p.Counts())
	}
	return sum, secs, moved, nil
}

// cpu is the process's user + system CPU time so far.
func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// timed runs f and emits its row.
func (r *rewrapBench) timed(mode string, items int, msgBytes int64, note string, f func() (secs float64, through int64, err error)) error {
	syscall.Sync()
	c0, s0 := cpu(), 0.0
	if r.srv != nil {
		s0 = r.srv.cpu()
	}
	secs, through, err := f()
	if err != nil {
		return fmt.Errorf("%s: %w", mode, err)
	}
	row := Row{ID: r.id + "/" + mode, Items: int64(items), Bytes: msgBytes, Seconds: secs, CPUS: cpu() - c0, RSSKiB: vmhwm(),
		Value: float64(through), Unit: "bytes through the client", Note: note}
	if r.srv != nil {
		row.ServerCPUS = r.srv.cpu() - s0
	}
	emit(row)
	return nil
}

func (r *rewrapBench) local(plain string) error {
	ctx := context.Background()
	out := filepath.Join(r.dir, "out", "rewrap-"+r.suite)
	os.RemoveAll(out)
	defer os.RemoveAll(out)
	enc := filepath.Join(out, "enc")
	if _, _, _, err := r.run(ctx, r.job("encrypt", plain, enc, ""), 1); err != nil {
		return fmt.Errorf("preparing: %w", err)
	}
	src := filepath.Join(enc, "file.encrypted")
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("1 file of %d MiB, 0x%s, raw AES, local file system", fi.Size()>>20, r.suite)
	err = r.timed("copy", 1, fi.Size(), note+"; read + write through a 1 MiB buffer", func() (float64, int64, error) {
		t := time.Now()
		n, err := copyThrough(src, filepath.Join(out, "copy"))
		return time.Since(t).Seconds(), 2 * n, err
	})
	for _, mode := range []string{"full", "rewrap"} {
		if err != nil {
			return err
		}
		err = r.timed(mode, 1, fi.Size(), note, func() (float64, int64, error) {
			_, secs, moved, err := r.run(ctx, r.job("reencrypt", enc, filepath.Join(out, mode), mode), 1)
			return secs, moved, err
		})
	}
	if s, perr := crypto.ParseSuite(r.suite); err == nil && perr == nil && !s.Signed() {
		// Last: it rewrites the source itself (reencrypt.headerInPlace).
		err = r.timed("inplace", 1, fi.Size(), note+"; in place, header rewritten behind a journal", func() (float64, int64, error) {
			_, secs, moved, err := r.run(ctx, r.job("reencrypt", enc, "", "inplace"), 1, true)
			return secs, moved, err
		})
	}
	return err
}

// copyThrough copies a file through this process (no copy_file_range).
func copyThrough(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	o, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{o}, struct{ io.Reader }{in}, make([]byte, 1<<20))
	if err == nil {
		err = o.Sync()
	}
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func (r *rewrapBench) s3(n int) error {
	ctx := context.Background()
	srv, err := startS3Server(filepath.Join(r.dir, "out", "s3-rewrap-"+r.suite))
	if err != nil {
		return err
	}
	defer srv.Stop()
	client, counter := srv.countingClient()
	r.srv, r.opts = srv, planner.Options{S3Client: client}
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		return err
	}
	const size = 64 << 20
	keys, total, err := r.s3Prepare(ctx, client, "", n, size)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%d x 64 MiB, 0x%s, raw AES, versitygw posix on loopback, concurrency %d", n, r.suite, r.conc)
	through := func(f func() (float64, error)) func() (float64, int64, error) {
		return func() (float64, int64, error) {
			c0 := counter.Total()
			secs, err := f()
			return secs, counter.Total() - c0, err
		}
	}
	err = r.timed("copy", n, total, note+"; GET + PUT with aws-sdk-go-v2", through(func() (float64, error) {
		return r.s3Each(keys, func(k string) error { return s3GetPut(ctx, client, k, "copy/"+k) })
	}))
	srv.drop("bench", "copy/")
	for _, mode := range []string{"full", "rewrap"} {
		if err != nil {
			return err
		}
		err = r.timed(mode, n, total, note, through(func() (float64, error) {
			_, secs, _, err := r.run(ctx, r.job("reencrypt", "s3://bench/enc/", "s3://bench/"+mode+"/", mode), n)
			return secs, err
		}))
		srv.drop("bench", mode+"/")
	}
	if err != nil || r.suite != "0478" {
		return err
	}
	return r.s3Bounds(ctx, client, keys, total, note, through)
}

// s3Bounds measures what bounds an unsigned S3 rewrap (0x0478 only: a
// signed rewrap streams): the server's own copy of the same objects with
// the plain SDK at the same concurrency, as a rewrap lays it out (a 5 MiB
// UploadPartCopy, then one for the rest, then CompleteMultipartUpload,
// every copy conditional on the source ETag) and as one CopyObject; and a
// rewrap of 256 MiB objects, where the 5 MiB that the first part must
// carry through the client weigh less.
func (r *rewrapBench) s3Bounds(ctx context.Context, client *awss3.Client, keys []string, total int64, note string, through func(func() (float64, error)) func() (float64, int64, error)) error {
	n := len(keys)
	err := r.timed("servercopy", n, total, note+"; the server's copy alone, as a rewrap lays it out: UploadPartCopy of the first 5 MiB and of the rest, CompleteMultipartUpload (aws-sdk-go-v2)",
		through(func() (float64, error) {
			return r.s3Each(keys, func(k string) error { return s3PartCopy(ctx, client, k, "servercopy/"+k) })
		}))
	r.srv.drop("bench", "servercopy/")
	if err != nil {
		return err
	}
	err = r.timed("copyobject", n, total, note+"; the server's copy alone: one CopyObject per object (aws-sdk-go-v2)",
		through(func() (float64, error) {
			return r.s3Each(keys, func(k string) error {
				_, err := client.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("bench"), Key: aws.String("copyobject/" + k),
					CopySource: aws.String("bench/" + k)})
				return err
			})
		}))
	for _, p := range []string{"copyobject/", "enc/", "plain/"} {
		r.srv.drop("bench", p)
	}
	if err != nil {
		return err
	}
	const big = 256 << 20
	nb := 2
	_, totalBig, err := r.s3Prepare(ctx, client, "256/", nb, big)
	if err != nil {
		return err
	}
	noteBig := fmt.Sprintf("%d x 256 MiB, 0x%s, raw AES, versitygw posix on loopback, concurrency %d", nb, r.suite, r.conc)
	return r.timed("rewrap-256mib", nb, totalBig, noteBig, through(func() (float64, error) {
		_, secs, _, err := r.run(ctx, r.job("reencrypt", "s3://bench/256/enc/", "s3://bench/256/rewrap/", "rewrap"), nb)
		return secs, err
	}))
}

// s3Prepare uploads n random plaintext objects of size bytes below
// prefix+"plain/" and encrypts them to prefix+"enc/" (not timed); it
// returns the encrypted keys and their total size.
func (r *rewrapBench) s3Prepare(ctx context.Context, client *awss3.Client, prefix string, n int, size int) ([]string, int64, error) {
	g := new(errgroup.Group)
	g.SetLimit(2)
	for i := range n {
		g.Go(func() error {
			b := make([]byte, size)
			mrand.NewChaCha8([32]byte{byte(i), byte(i >> 8)}).Read(b)
			_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("%splain/obj-%03d", prefix, i)), Body: bytes.NewReader(b)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, fmt.Errorf("upload: %w", err)
	}
	if _, _, _, err := r.run(ctx, r.job("encrypt", "s3://bench/"+prefix+"plain/", "s3://bench/"+prefix+"enc/", ""), n); err != nil {
		return nil, 0, fmt.Errorf("preparing: %w", err)
	}
	var keys []string
	var total int64
	pg := awss3.NewListObjectsV2Paginator(client, &awss3.ListObjectsV2Input{Bucket: aws.String("bench"), Prefix: aws.String(prefix + "enc/")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, 0, err
		}
		for _, o := range page.Contents {
			keys, total = append(keys, *o.Key), total+aws.ToInt64(o.Size)
		}
	}
	return keys, total, nil
}

// s3Each runs f for every key at the bench's concurrency; it returns the
// wall seconds.
func (r *rewrapBench) s3Each(keys []string, f func(string) error) (float64, error) {
	t := time.Now()
	g := new(errgroup.Group)
	g.SetLimit(r.conc)
	for _, k := range keys {
		g.Go(func() error { return f(k) })
	}
	err := g.Wait()
	return time.Since(t).Seconds(), err
}

// s3GetPut copies one object through the client.
func s3GetPut(ctx context.Context, client *awss3.Client, from, to string) error {
	obj, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String(from)})
	if err != nil {
		return err
	}
	b, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		return err
	}
	_, err = client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(to), Body: bytes.NewReader(b)})
	return err
}

// s3PartCopy copies one object server-side in a rewrap's layout: parts
// [0, 5 MiB) and [5 MiB, end), each an UploadPartCopy conditional on the
// source's ETag.
func s3PartCopy(ctx context.Context, client *awss3.Client, from, to string) error {
	head, err := client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("bench"), Key: aws.String(from)})
	if err != nil {
		return err
	}
	size := aws.ToInt64(head.ContentLength)
	mpu, err := client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("bench"), Key: aws.String(to)})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for i, rng := range [][2]int64{{0, 5 << 20}, {5 << 20, size}} {
		num := int32(i + 1)
		out, err := client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("bench"), Key: aws.String(to), UploadId: mpu.UploadId,
			PartNumber: &num, CopySource: aws.String("bench/" + from), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", rng[0], rng[1]-1)),
			CopySourceIfMatch: head.ETag})
		if err != nil {
			client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String("bench"), Key: aws.String(to), UploadId: mpu.UploadId})
			return err
		}
		parts = append(parts, types.CompletedPart{PartNumber: &num, ETag: out.CopyPartResult.ETag})
	}
	_, err = client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("bench"), Key: aws.String(to), UploadId: mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}
