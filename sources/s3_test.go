package sources_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
	"github.com/encjob/encjob/sources/sourcetest"
)

var bucketSeq atomic.Int64

func newBucket(t testing.TB, srv *s3test.Server) string {
	b := fmt.Sprintf("encjob-%d", bucketSeq.Add(1))
	srv.CreateBucket(t, b)
	return b
}

func s3Loc(t testing.TB, raw string) sources.Location {
	t.Helper()
	loc, err := sources.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func put(t testing.TB, c *awss3.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t testing.TB, c *awss3.Client, bucket, key string) ([]byte, bool) {
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, false
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return b, err == nil
}

func uploads(t testing.TB, c *awss3.Client, bucket string) []string {
	out, err := c.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	var l []string
	for _, u := range out.Uploads {
		l = append(l, "upload:"+aws.ToString(u.Key))
	}
	return l
}

func s3Harness(srv *s3test.Server, prefix string) sourcetest.Factory {
	return func(t *testing.T) *sourcetest.Harness {
		bucket := newBucket(t, srv)
		root := "s3://" + bucket + "/" + prefix
		opts := sources.S3Options{Client: srv.Client}
		return &sourcetest.Harness{
			Put: func(t testing.TB, key string, data []byte) { put(t, srv.Client, bucket, prefix+key, data) },
			Get: func(t testing.TB, key string) ([]byte, bool) { return get(t, srv.Client, bucket, prefix+key) },
			Leftovers: func(t testing.TB) []string {
				return uploads(t, srv.Client, bucket)
			},
			Source: func(t testing.TB, o sources.SourceOptions) sources.Source {
				opts := opts
				opts.SourceOptions = o
				opts.MaxKeys = 3 // exercise pagination everywhere
				s, err := sources.NewS3Source(s3Loc(t, root), opts)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Destination: func(t testing.TB) sources.Destination {
				d, err := sources.NewS3Destination(s3Loc(t, root), opts)
				if err != nil {
					t.Fatal(err)
				}
				return d
			},
		}
	}
}

func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	t.Run("Conformance", func(t *testing.T) { sourcetest.Run(t, s3Harness(srv, "")) })
	t.Run("ConformancePrefix", func(t *testing.T) { sourcetest.Run(t, s3Harness(srv, "pre/fix/")) })
	t.Run("Pagination", func(t *testing.T) { testS3Pagination(t, srv) })
	t.Run("Multipart", func(t *testing.T) { testS3Multipart(t, srv) })
	t.Run("MultipartAbort", func(t *testing.T) { testS3MultipartAbort(t, srv) })
	t.Run("MultipartInPlaceConflict", func(t *testing.T) { testS3MultipartConflict(t, srv) })
	t.Run("SingleObject", func(t *testing.T) { testS3Single(t, srv) })
	t.Run("KeysToLocal", func(t *testing.T) { testS3ToLocalEscape(t, srv) })
	t.Run("ServerConditionalWrites", func(t *testing.T) { testS3ServerConditionalWrites(t, srv.Client, newBucket(t, srv)) })
	t.Run("WritesWithoutHead", func(t *testing.T) { testS3WritesWithoutHead(t, srv) })
	t.Run("EndpointFromEnv", func(t *testing.T) { testS3EndpointEnv(t, srv) })
	t.Run("Provenance", func(t *testing.T) { testS3Provenance(t, srv) })
}

// The source print travels in the object's metadata, for single puts and
// multipart uploads; metadata copied from a source cannot vouch for an
// output; keys named like local temporaries are ordinary items.
func testS3Provenance(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	d, _ := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/out/"), sources.S3Options{Client: srv.Client, PartSize: 5 << 20})
	ctx := context.Background()
	big := strings.Repeat("b", 6<<20)
	for key, data := range map[string]string{"small": "s", "x/.encjob-tmp-1-y": "t", "big": big} {
		if err := commitFile(t, d, key, data, sources.CreateOptions{SourcePrint: "src-" + sources.Fingerprint(key)}); err != nil {
			t.Fatal(err)
		}
		if p, ok, err := d.Provenance(ctx, key); err != nil || !ok || p != "src-"+sources.Fingerprint(key) {
			t.Fatalf("Provenance(%s) = %q %v %v", key, p, ok, err)
		}
	}
	copied := map[string]string{sources.ProvenanceMetaKey: "forged", "other": "kept"}
	if err := commitFile(t, d, "copied", "c", sources.CreateOptions{Metadata: copied}); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := d.Provenance(ctx, "copied"); err != nil || ok {
		t.Fatalf("copied metadata vouches for an output: %q %v %v", p, ok, err)
	}
	if _, ok, err := d.Provenance(ctx, "missing"); err != nil || ok {
		t.Fatalf("missing object: %v %v", ok, err)
	}
	s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/out/"), sources.S3Options{Client: srv.Client})
	if got := fmt.Sprint(keysOf(listAll(t, s))); got != "[big copied small x/.encjob-tmp-1-y]" {
		t.Fatalf("listed %s", got)
	}
}

func testS3Pagination(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	const n = 1100
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("p/%04d.csv", i)
		if i%10 == 0 {
			k = fmt.Sprintf("p/skip/%04d.csv", i)
		}
		put(t, srv.Client, bucket, k, []byte("x"))
	}
	f, _ := sources.NewFilter([]string{"*.csv"}, []string{"skip/"})
	// A glob that matches none of the 1,100 keys is a missing source.
	for _, loc := range []string{"s3://" + bucket + "/p/*.txt", "s3://" + bucket + "/nope/*.csv"} {
		s, _ := sources.NewS3Source(s3Loc(t, loc), sources.S3Options{Client: srv.Client, MaxKeys: 250})
		var nm *sources.NoMatchError
		if err := s.List(context.Background(), func(sources.Item) error { return nil }); !errors.As(err, &nm) {
			t.Errorf("%s: %v, want a NoMatchError", loc, err)
		}
	}
	for _, maxKeys := range []int32{0, 250} {
		s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/p"), sources.S3Options{Client: srv.Client, MaxKeys: maxKeys, SourceOptions: sources.SourceOptions{Filter: f}})
		items := listAll(t, s)
		if len(items) != n-n/10 {
			t.Fatalf("MaxKeys %d: listed %d items, want %d", maxKeys, len(items), n-n/10)
		}
		for i, it := range items {
			if i > 0 && items[i-1].Key >= it.Key || strings.Contains(it.Key, "skip") {
				t.Fatalf("MaxKeys %d: item %d %q out of order or not filtered", maxKeys, i, it.Key)
			}
		}
	}
}

func testS3Multipart(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	d, _ := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/out/"), sources.S3Options{Client: srv.Client, PartSize: 5 << 20})
	data := make([]byte, 12<<20+12345)
	for i := range data {
		data[i] = byte(i * 7 >> 3)
	}
	ctx := context.Background()
	meta := map[string]string{"owner": "acme", "encjob-test": "1"}
	w, err := d.Create(ctx, "big.bin", sources.CreateOptions{ContentType: "text/csv", Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100000 {
		if _, err := w.Write(data[off:min(off+100000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if got := uploads(t, srv.Client, bucket); len(got) != 1 {
		t.Fatalf("before Commit: uploads %q, want one in progress", got)
	}
	if _, ok := get(t, srv.Client, bucket, "out/big.bin"); ok {
		t.Fatal("object visible before Commit")
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := get(t, srv.Client, bucket, "out/big.bin"); !bytes.Equal(b, data) {
		t.Fatalf("multipart object: %d bytes, want %d identical", len(b), len(data))
	}
	it, err := d.Stat(ctx, "big.bin")
	if err != nil || it.ContentType != "text/csv" || it.Metadata["owner"] != "acme" || it.Metadata["encjob-test"] != "1" {
		t.Fatalf("Stat = %+v, %v; want content type and metadata carried", it, err)
	}
	if !strings.Contains(it.ETag, "-3") {
		t.Errorf("ETag %s: want a 3-part multipart ETag", it.ETag)
	}
	if got := uploads(t, srv.Client, bucket); len(got) != 0 {
		t.Fatalf("after Commit: uploads %q", got)
	}
}

func testS3MultipartAbort(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	d, _ := sources.NewS3Destination(s3Loc(t, "s3://"+bucket), sources.S3Options{Client: srv.Client})
	ctx := context.Background()
	// Explicit Abort after two parts went up.
	w, _ := d.Create(ctx, "a.bin", sources.CreateOptions{})
	w.Write(make([]byte, 11<<20))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	// A failure mid-upload: the context dies after the first part.
	cctx, cancel := context.WithCancel(ctx)
	w, _ = d.Create(cctx, "b.bin", sources.CreateOptions{})
	w.Write(make([]byte, 6<<20))
	cancel()
	_, werr := w.Write(make([]byte, 10<<20))
	cerr := w.Commit(ctx)
	if werr == nil && cerr == nil {
		t.Fatal("upload with a cancelled context succeeded")
	}
	for _, k := range []string{"a.bin", "b.bin"} {
		if _, ok := get(t, srv.Client, bucket, k); ok {
			t.Errorf("%s exists after abort", k)
		}
	}
	if got := uploads(t, srv.Client, bucket); len(got) != 0 {
		t.Fatalf("multipart uploads left: %q", got)
	}
}

func testS3MultipartConflict(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	put(t, srv.Client, bucket, "obj", []byte("original"))
	s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/"), sources.S3Options{Client: srv.Client})
	d, _ := sources.NewS3Destination(s3Loc(t, "s3://"+bucket+"/"), sources.S3Options{Client: srv.Client})
	ctx := context.Background()
	it, err := s.Stat(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := d.Create(ctx, "obj", sources.CreateOptions{IfMatch: it.Print})
	w.Write(make([]byte, 6<<20))
	put(t, srv.Client, bucket, "obj", []byte("concurrent writer"))
	wantConflictErr(t, w.Commit(ctx), sources.ConflictChanged)
	if b, _ := get(t, srv.Client, bucket, "obj"); string(b) != "concurrent writer" {
		t.Fatalf("object = %q, want the concurrent writer's", b)
	}
	if got := uploads(t, srv.Client, bucket); len(got) != 0 {
		t.Fatalf("multipart uploads left: %q", got)
	}
}

func wantConflictErr(t testing.TB, err error, reason string) {
	t.Helper()
	var ce *sources.ConflictError
	if !errors.As(err, &ce) || ce.Reason != reason {
		t.Fatalf("err = %v, want a %s conflict", err, reason)
	}
}

func testS3Single(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	put(t, srv.Client, bucket, "dir/file.txt", []byte("one"))
	put(t, srv.Client, bucket, "dir/file.txt.more", []byte("two"))
	s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/dir/file.txt"), sources.S3Options{Client: srv.Client})
	items := listAll(t, s)
	if len(items) != 1 || items[0].Key != "file.txt" || !items[0].IsSingle || items[0].Size != 3 {
		t.Fatalf("single object listing: %+v", items)
	}
	rc, err := s.Open(context.Background(), "file.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "one" {
		t.Fatalf("Open = %q", b)
	}
}

// S3 keys that are legal in S3 but would escape a local directory fail
// their item with ErrEscapes; the others copy. versitygw normalises such
// keys on PUT ("in/../x" is stored as "x", "in//a" as "in/a"), so the odd
// keys AWS S3 does store are fed to the mapping directly.
func testS3ToLocalEscape(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	for _, k := range []string{"in/ok.txt", "in/sub/fine"} {
		put(t, srv.Client, bucket, k, []byte(k))
	}
	s, _ := sources.NewS3Source(s3Loc(t, "s3://"+bucket+"/in/"), sources.S3Options{Client: srv.Client})
	root := t.TempDir()
	d := sources.NewLocalDestination(root+"/out", sources.LocalDestOptions{})
	ctx := context.Background()
	var copied []string
	for _, it := range listAll(t, s) {
		w, err := d.Create(ctx, it.Key, sources.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", it.Key, err)
		}
		rc, _ := s.Open(ctx, it.Key)
		io.Copy(w, rc)
		rc.Close()
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		copied = append(copied, it.Key)
	}
	for _, odd := range []string{"a/../../../evil", "/abs", "x//y", "..", "sub/../../x"} {
		if _, err := d.Create(ctx, odd, sources.CreateOptions{}); !errors.Is(err, sources.ErrEscapes) {
			t.Errorf("S3 key %q mapped to local: %v, want ErrEscapes", odd, err)
		}
	}
	if fmt.Sprint(copied) != "[ok.txt sub/fine]" {
		t.Fatalf("copied %q", copied)
	}
	all := listAll(t, newLocal(t, root, sources.SourceOptions{}))
	if fmt.Sprint(keysOf(all)) != "[out/.encjob-state out/ok.txt out/sub/fine]" || all[0].Skipped != "encjob state directory" {
		t.Fatalf("files under the temp dir: %+v", all)
	}
}

// The SDK's own AWS_ENDPOINT_URL_S3 support is not disabled by NewS3Client.
func testS3EndpointEnv(t *testing.T, srv *s3test.Server) {
	bucket := newBucket(t, srv)
	put(t, srv.Client, bucket, "k", []byte("v"))
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := sources.NewS3Client(context.Background(), sources.S3Config{UsePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := get(t, c, bucket, "k"); !ok || string(b) != "v" {
		t.Fatalf("client from the environment read %q (ok %v)", b, ok)
	}
}
