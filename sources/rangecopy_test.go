package sources_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

// TestLocalCopyRange: a new head plus a range of a local file, copied by
// copy_file_range (the whole range in the kernel), or through encjob when
// the kernel declines; a source that changed
// since it was planned fails the copy with ErrSourceChanged, and the
// failed output never appears.
func TestLocalCopyRange(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := make([]byte, 3<<20+5)
	rand.Read(data)
	os.WriteFile(filepath.Join(dir, "src"), data, 0o644)
	loc, _ := sources.Parse(dir)
	src, err := sources.NewLocalSource(loc, sources.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := src.Stat(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d := sources.NewLocalDestination(out, sources.LocalDestOptions{})
	if !d.CopiesFrom(src) {
		t.Fatal("a local destination does not copy from a local source")
	}
	w, err := d.Create(ctx, "dst", sources.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("HEAD"))
	n, err := w.(sources.RangeCopier).CopyRange(ctx, src, "src", it.Print, 100, int64(len(data)-100))
	if err != nil || n != int64(len(data)-100) {
		t.Fatalf("CopyRange: %d bytes in the kernel, %v", n, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "dst")); !bytes.Equal(got, append([]byte("HEAD"), data[100:]...)) {
		t.Fatal("copied content differs")
	}

	// A kernel that declines (another file system): copied through
	// encjob, same content, nothing counted as copied in the kernel.
	restore := sources.DeclineCopyFileRange()
	w, _ = d.Create(ctx, "fallback", sources.CreateOptions{})
	w.Write([]byte("HEAD"))
	n, err = w.(sources.RangeCopier).CopyRange(ctx, src, "src", it.Print, 100, int64(len(data)-100))
	restore()
	if err != nil || n != 0 {
		t.Fatalf("CopyRange without copy_file_range: %d bytes in the kernel, %v", n, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "fallback")); !bytes.Equal(got, append([]byte("HEAD"), data[100:]...)) {
		t.Fatal("fallback copy differs")
	}

	os.WriteFile(filepath.Join(dir, "src"), data[:len(data)-1], 0o644) // changed after planning
	w, _ = d.Create(ctx, "stale", sources.CreateOptions{})
	w.Write([]byte("HEAD"))
	if _, err := w.(sources.RangeCopier).CopyRange(ctx, src, "src", it.Print, 100, int64(len(data)-100)); !errors.Is(err, sources.ErrSourceChanged) {
		t.Fatalf("stale source: %v", err)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("a failed copy committed")
	}
	if _, err := os.Stat(filepath.Join(out, "stale")); !os.IsNotExist(err) {
		t.Fatalf("failed output exists: %v", err)
	}
}

// TestS3CopyRange: on the test S3 server, a head plus a range of an
// object larger than a part becomes a multipart upload whose tail is
// copied by the server; a source overwritten since it was planned fails
// (the copies are conditional on its ETag), the upload is aborted and
// nothing appears under the key.
func TestS3CopyRange(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket(t, "copyrange")
	ctx := context.Background()
	data := make([]byte, 12<<20+3)
	rand.Read(data)
	put(t, srv.Client, "copyrange", "src/o+ b", data)
	loc, _ := sources.Parse("s3://copyrange/src/")
	src, err := sources.NewS3Source(loc, sources.S3Options{Client: srv.Client})
	if err != nil {
		t.Fatal(err)
	}
	it, err := src.Stat(ctx, "o+ b")
	if err != nil {
		t.Fatal(err)
	}
	dloc, _ := sources.Parse("s3://copyrange/dst/")
	d, err := sources.NewS3Destination(dloc, sources.S3Options{Client: srv.Client})
	if err != nil {
		t.Fatal(err)
	}
	if !d.CopiesFrom(src) {
		t.Fatal("an S3 destination does not copy from an S3 source on its client")
	}
	get := func(key string) ([]byte, error) {
		out, err := srv.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("copyrange"), Key: aws.String(key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	w, _ := d.Create(ctx, "o", sources.CreateOptions{})
	w.Write([]byte("HEAD"))
	n, err := w.(sources.RangeCopier).CopyRange(ctx, src, "o+ b", it.Print, 7, int64(len(data)-7))
	if err != nil || n != int64(len(data)-7)-(sources.MinPartSize-4) {
		t.Fatalf("CopyRange: %d bytes in the server, %v", n, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := get("dst/o"); err != nil || !bytes.Equal(got, append([]byte("HEAD"), data[7:]...)) {
		t.Fatalf("copied object differs: %v", err)
	}

	// The server enforces x-amz-copy-source-if-match on UploadPartCopy
	// (which CopyRange relies on between its GET and its copies).
	mu, err := srv.Client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("copyrange"), Key: aws.String("probe")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.Client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("copyrange"), Key: aws.String("probe"),
		UploadId: mu.UploadId, PartNumber: aws.Int32(1), CopySource: aws.String("copyrange/src/o%2B%20b"),
		CopySourceRange: aws.String("bytes=0-99"), CopySourceIfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)})
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 412 {
		t.Fatalf("UploadPartCopy with a wrong copy-source-if-match: %v", err)
	}
	srv.Client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String("copyrange"), Key: aws.String("probe"), UploadId: mu.UploadId})

	put(t, srv.Client, "copyrange", "src/o+ b", data[:len(data)-1]) // changed after planning
	w, _ = d.Create(ctx, "stale", sources.CreateOptions{})
	w.Write([]byte("HEAD"))
	_, err = w.(sources.RangeCopier).CopyRange(ctx, src, "o+ b", it.Print, 7, int64(len(data)-7))
	if err == nil {
		err = w.Commit(ctx)
	}
	if !errors.Is(err, sources.ErrSourceChanged) {
		t.Fatalf("stale source: %v", err)
	}
	w.Abort()
	if _, err := get("dst/stale"); err == nil {
		t.Fatal("a failed copy left an object")
	}
	ups, err := srv.Client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("copyrange")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("multipart uploads left: %v %v", ups, err)
	}
}

// CopyRange with several copied parts, and with a part size above 5 MiB
// (the first part then stays buffered until CopyRange sends it): the
// copies run while the first part is read, and the object is the
// written bytes followed by the range, in order.
func TestS3CopyRangeParts(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket(t, "parts")
	defer sources.SetMinCopyPart(5 << 20)()
	ctx := context.Background()
	data := make([]byte, 17<<20+5)
	rand.Read(data)
	put(t, srv.Client, "parts", "src/o", data)
	loc, _ := sources.Parse("s3://parts/src/")
	src, _ := sources.NewS3Source(loc, sources.S3Options{Client: srv.Client})
	it, err := src.Stat(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range []int64{5 << 20, 6 << 20} {
		dloc, _ := sources.Parse("s3://parts/dst/")
		d, _ := sources.NewS3Destination(dloc, sources.S3Options{Client: srv.Client, PartSize: ps, Concurrency: 2})
		key := fmt.Sprintf("o-%d", ps)
		w, _ := d.Create(ctx, key, sources.CreateOptions{Overwrite: sources.OverwriteNever})
		w.Write([]byte("NEWHEADER"))
		if _, err := w.(sources.RangeCopier).CopyRange(ctx, src, "o", it.Print, 3, int64(len(data)-3)); err != nil {
			t.Fatalf("part size %d: CopyRange: %v", ps, err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatalf("part size %d: %v", ps, err)
		}
		got, ok := get(t, srv.Client, "parts", "dst/"+key)
		if !ok || !bytes.Equal(got, append([]byte("NEWHEADER"), data[3:]...)) {
			t.Fatalf("part size %d: copied object differs (%d bytes)", ps, len(got))
		}
		// 5 MiB through the client, the rest copied in parts of the part
		// size.
		rest := int64(len(data)-3) - (5<<20 - 9)
		parts := fmt.Sprintf("-%d", 1+(rest+ps-1)/ps)
		st, err := d.Stat(ctx, key)
		if err != nil || !strings.HasSuffix(strings.Trim(st.ETag, `"`), parts) {
			t.Fatalf("part size %d: ETag %s (%v), want %s parts", ps, st.ETag, err, parts)
		}
	}
}
