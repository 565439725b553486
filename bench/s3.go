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
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources/s3test"
)

// startS3 runs versitygw (posix backend under dir) on a free loopback
// port; stop kills it.
func startS3(dir string) (client *awss3.Client, stop func(), err error) {
	bin := s3test.Binary()
	if bin == "" {
		return nil, nil, fmt.Errorf("versitygw not found; run scripts/setup.d/10-s3.sh")
	}
	clearAWSEnv()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := l.Addr().String()
	l.Close()
	secret := make([]byte, 16)
	rand.Read(secret)
	access, sk := "encjobbench", hex.EncodeToString(secret)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+access, "ROOT_SECRET_KEY="+sk)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("versitygw not answering on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	client = awss3.New(awss3.Options{Region: s3test.Region, BaseEndpoint: aws.String("http://" + addr), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, sk, "")})
	return client, stop, nil
}

// cmdS3 measures an S3 -> S3 prefix of 64 KiB objects: encrypted by the
// executor, or copied (GET + PUT) with the same SDK and concurrency.
func cmdS3(args []string) error {
	fs := flag.NewFlagSet("s3", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	dir := fs.String("dir", "", "data directory")
	mode := fs.String("mode", "encrypt", "encrypt or copy")
	conc := fs.Int("conc", 16, "concurrency")
	fs.Parse(args)
	sc, err := readScale(*dir)
	if err != nil {
		return err
	}
	n := min(1000, sc.Small)
	client, stop, err := startS3(filepath.Join(*dir, "out", "s3-"+*mode))
	if err != nil {
		return err
	}
	defer stop()
	ctx := context.Background()
	for _, b := range []string{"src", "dst"} {
		if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	if err := s3Upload(ctx, client, n); err != nil {
		return err
	}
	var plan, secs float64
	var total int64
	switch *mode {
	case "copy":
		if secs, total, err = s3Copy(ctx, client, *conc, n); err != nil {
			return err
		}
	case "encrypt":
		yaml := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: bench-s3}
spec:
  operation: encrypt
  sources: [{path: "s3://src/p/"}]
  output: {path: "s3://dst/enc/"}
  keyGroups:
    dev: {provider: raw-aes, keyFile: %q, namespace: encjob, name: bench}
  encrypt: {keyGroup: dev, context: {tenant: acme}, algorithm: "0x0578"}
  execution: {concurrency: %d, retries: 0}
`, filepath.Join(*dir, "key"), *conc)
		sum, p, a, err := runJob(ctx, yaml, planner.Options{S3Client: client}, n)
		if err != nil {
			return err
		}
		plan, secs, total = p, a, sum.BytesIn
	default:
		return fmt.Errorf("mode %q: want encrypt or copy", *mode)
	}
	// Count what arrived.
	var got int
	pg := awss3.NewListObjectsV2Paginator(client, &awss3.ListObjectsV2Input{Bucket: aws.String("dst")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return err
		}
		got += len(page.Contents)
	}
	if got != n {
		return fmt.Errorf("%d objects in the destination, want %d", got, n)
	}
	note := fmt.Sprintf("%d x 64 KiB, concurrency %d, versitygw posix on loopback", n, *conc)
	if *mode == "copy" {
		note += "; list + GET + PUT with aws-sdk-go-v2"
	} else {
		note += "; executor, 0x0578 raw AES; seconds = apply, listing in plan_s"
	}
	emit(Row{ID: *id, Items: int64(n), Bytes: total, Seconds: secs, PlanS: plan, Note: note})
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
// the same SDK and concurrency; it returns the seconds and bytes copied.
func s3Copy(ctx context.Context, client *awss3.Client, conc, n int) (float64, int64, error) {
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
			if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy/" + k), Body: bytes.NewReader(b)}); err != nil {
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
