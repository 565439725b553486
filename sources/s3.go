package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/internal/awslog"
	"github.com/encjob/encjob/internal/nettimeout"
)

// S3Config is how to reach S3. Credentials come from the standard chain
// (environment, shared files, SSO, IMDS...). The endpoint comes from
// Endpoint, else from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / the shared
// config, as the SDK resolves them itself.
type S3Config struct {
	Region       string // empty: from the environment / profile
	Profile      string // empty: AWS_PROFILE or "default"
	Endpoint     string // explicit endpoint URL (e.g. http://127.0.0.1:7070)
	UsePathStyle bool   // bucket in the path, not the host name
	// Timeout is the idle bound of every S3 call: connecting, waiting for
	// response headers, and each read or write must make progress within
	// it (a long transfer that keeps moving is not cut); 0 =
	// DefaultS3Timeout.
	Timeout time.Duration
}

// DefaultS3Timeout is the S3 idle timeout when none is set: S3 answers
// requests in well under a second and sends response headers of a
// CompleteMultipartUpload at once, so a minute without progress means a
// dead connection, not a slow one.
const DefaultS3Timeout = 60 * time.Second

// NewS3Client builds an S3 client from cfg and the standard chain.
func NewS3Client(ctx context.Context, cfg S3Config) (*awss3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	t := cfg.Timeout
	if t <= 0 {
		t = DefaultS3Timeout
	}
	// An idle bound, not a total deadline: bodies stream for as long as
	// they keep moving.
	opts = append(opts, config.WithHTTPClient(nettimeout.Loading(t)))
	opts = append(opts, config.WithLogger(awslog.Logger())) // never the SDK's own stderr lines
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}
	nettimeout.Install(&ac, t, 0)
	return awss3.NewFromConfig(ac, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		if cfg.UsePathStyle {
			o.UsePathStyle = true
		}
	}), nil
}

// S3Options tune S3 sources and destinations.
type S3Options struct {
	Client *awss3.Client // required
	SourceOptions
	// PartSize is the multipart part size (default and minimum 5 MiB).
	// An output shorter than one part is sent with a single PutObject.
	PartSize int64
	// Concurrency is the number of parts uploaded at once per output
	// (default 2). Memory per output is at most (Concurrency+1)*PartSize.
	Concurrency int
	// MaxKeys is the ListObjectsV2 page size (default: server's, 1000).
	MaxKeys int32
	// NoConditionalWrites is for servers that do not honour conditional
	// writes: destinations then send no If-None-Match / If-Match and
	// check the overwrite policy with a HeadObject right before each
	// committing write instead (one more request per output, and a window
	// between check and write). Without it a destination whose server
	// ignores or rejects the headers fails every write with
	// *ConditionalWritesError and writes nothing (see S3Destination).
	NoConditionalWrites bool
}

// MinPartSize is S3's minimum multipart part size.
const MinPartSize = 5 << 20

func (o *S3Options) fill() error {
	if o.Client == nil {
		return fmt.Errorf("s3: no client")
	}
	if o.PartSize == 0 {
		o.PartSize = MinPartSize
	}
	if o.PartSize < MinPartSize {
		return fmt.Errorf("s3: part size %d below the 5 MiB minimum", o.PartSize)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	return nil
}

// S3Source lists and reads objects below s3://bucket/prefix, or one object.
type S3Source struct {
	loc  Location
	opt  S3Options
	glob *Pattern
}

// NewS3Source returns the source for a Kind S3 location.
func NewS3Source(loc Location, o S3Options) (*S3Source, error) {
	if loc.Kind != S3 {
		return nil, fmt.Errorf("sources: %s is not an s3 location", loc.Raw)
	}
	if err := o.fill(); err != nil {
		return nil, err
	}
	glob, err := locationGlob(loc)
	if err != nil {
		return nil, err
	}
	return &S3Source{loc: loc, opt: o, glob: glob}, nil
}

func (s *S3Source) String() string { return s.loc.Raw }

// single reports whether the location names one existing object.
func (s *S3Source) single(ctx context.Context) (bool, error) {
	if s.loc.IsPrefix() {
		return false, nil
	}
	_, err := s.opt.Client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.loc.Bucket, Key: &s.loc.Key})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("source %s: %w", s.loc.Raw, err)
}

func (s *S3Source) prefix() string {
	p := s.loc.Key
	if p != "" && !strings.HasSuffix(p, "/") && s.loc.Glob == "" {
		p += "/"
	}
	return p
}

// List pages through ListObjectsV2. S3 returns keys in UTF-8 binary
// order, which is the package's key order.
func (s *S3Source) List(ctx context.Context, fn func(Item) error) error {
	return globList(s.loc, fn, func(fn func(Item) error) error { return s.list(ctx, fn) })
}

func (s *S3Source) list(ctx context.Context, fn func(Item) error) error {
	one, err := s.single(ctx)
	if err != nil {
		return err
	}
	if one {
		it, err := s.stat(ctx, s.loc.Key)
		if err != nil {
			return err
		}
		it.Key, it.IsSingle = baseKey(s.loc.Key), true
		return fn(it)
	}
	prefix := s.prefix()
	in := &awss3.ListObjectsV2Input{Bucket: &s.loc.Bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if s.opt.MaxKeys > 0 {
		in.MaxKeys = &s.opt.MaxKeys
	}
	pg := awss3.NewListObjectsV2Paginator(s.opt.Client, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("source %s: list: %w", s.loc.Raw, err)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if rel == "" {
				continue
			}
			if s.glob != nil && !s.glob.Match(rel) || !s.opt.Filter.Match(rel) {
				continue
			}
			it := Item{Key: rel, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified), ETag: aws.ToString(o.ETag)}
			it.Print = s3Print(it.ETag, "")
			switch {
			case strings.HasSuffix(rel, "/"):
				it.Skipped = "directory marker"
			case isProbeObject(rel, it.Size):
				it.Skipped = "encjob's own conditional-write probe object (its delete failed)"
			}
			if err := fn(it); err != nil {
				return err
			}
		}
	}
	return nil
}

func s3Print(etag, version string) Fingerprint {
	if version != "" && version != "null" {
		return Fingerprint("s3:" + etag + ":v=" + version)
	}
	return Fingerprint("s3:" + etag)
}

// etagOf extracts the ETag from an S3 fingerprint.
func etagOf(p Fingerprint) (string, bool) {
	s, ok := strings.CutPrefix(string(p), "s3:")
	if !ok {
		return "", false
	}
	if i := strings.LastIndex(s, ":v="); i >= 0 {
		s = s[:i]
	}
	return s, true
}

// objectKey maps a source key to the object key.
func (s *S3Source) objectKey(ctx context.Context, key string) string {
	if !s.loc.IsPrefix() && key == baseKey(s.loc.Key) {
		if one, _ := s.single(ctx); one {
			return s.loc.Key
		}
	}
	return s.prefix() + key
}

// Stat heads the object.
func (s *S3Source) Stat(ctx context.Context, key string) (Item, error) {
	it, err := s.stat(ctx, s.objectKey(ctx, key))
	it.Key = key
	return it, err
}

func (s *S3Source) stat(ctx context.Context, full string) (Item, error) {
	return headItem(ctx, s.opt.Client, s.loc.Bucket, full)
}

func headItem(ctx context.Context, c *awss3.Client, bucket, full string) (Item, error) {
	out, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &bucket, Key: &full})
	if err != nil {
		if isNotFound(err) {
			return Item{}, fmt.Errorf("s3://%s/%s: %w", bucket, full, ErrNotFound)
		}
		return Item{}, fmt.Errorf("s3://%s/%s: head: %w", bucket, full, err)
	}
	it := Item{
		Key: full, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified),
		ETag: aws.ToString(out.ETag), Version: aws.ToString(out.VersionId),
		ContentType: aws.ToString(out.ContentType), Metadata: out.Metadata,
	}
	it.Print = s3Print(it.ETag, it.Version)
	return it, nil
}

// Open streams the object.
func (s *S3Source) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	full := s.objectKey(ctx, key)
	out, err := s.opt.Client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.loc.Bucket, Key: &full})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("s3://%s/%s: %w", s.loc.Bucket, full, ErrNotFound)
		}
		return nil, fmt.Errorf("s3://%s/%s: get: %w", s.loc.Bucket, full, err)
	}
	return out.Body, nil
}

// HeaderRange is the first range OpenHeader fetches; each further range
// doubles.
const HeaderRange = 64 << 10

// OpenHeader reads the object with Range GETs of growing size, so a
// caller that stops after the header costs one small request.
func (s *S3Source) OpenHeader(ctx context.Context, key string) (io.ReadCloser, error) {
	r := &rangeReader{ctx: ctx, c: s.opt.Client, bucket: s.loc.Bucket, key: s.objectKey(ctx, key), next: HeaderRange, size: -1}
	if err := r.fetch(); err == io.EOF {
		r.err = io.EOF // empty object
	} else if err != nil {
		return nil, err
	}
	return r, nil
}

type rangeReader struct {
	ctx         context.Context
	c           *awss3.Client
	bucket, key string
	off, next   int64
	size        int64 // total, once known
	body        io.ReadCloser
	err         error
	// ifMatch and version, when set, pin every range to one version
	// (openHeaderPinned); print and item name it in errors.
	ifMatch, version string
	print            Fingerprint
	item             string
}

func (r *rangeReader) fetch() error {
	if r.size >= 0 && r.off >= r.size {
		return io.EOF
	}
	rng := fmt.Sprintf("bytes=%d-%d", r.off, r.off+r.next-1)
	in := &awss3.GetObjectInput{Bucket: &r.bucket, Key: &r.key, Range: &rng, IfMatch: nonEmpty(r.ifMatch)}
	if r.version != "" && r.version != "null" {
		in.VersionId = &r.version
	}
	out, err := r.c.GetObject(r.ctx, in)
	if err != nil && r.ifMatch != "" && isPreconditionFailed(err) {
		return &SourceChangedError{Key: r.item, Want: r.print, When: "before it was read"}
	}
	if err != nil {
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
			return io.EOF // empty object
		}
		if isNotFound(err) {
			return fmt.Errorf("s3://%s/%s: %w", r.bucket, r.key, ErrNotFound)
		}
		return fmt.Errorf("s3://%s/%s: get range: %w", r.bucket, r.key, err)
	}
	if got := aws.ToString(out.ETag); r.ifMatch != "" && got != "" && got != r.ifMatch {
		out.Body.Close() // a server that ignored If-Match
		return &SourceChangedError{Key: r.item, Want: r.print, Got: s3Print(got, aws.ToString(out.VersionId)), When: "while it was read"}
	}
	r.body = out.Body
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				r.size = n
			}
		}
	} else {
		r.size = r.off + aws.ToInt64(out.ContentLength) // server ignored Range
	}
	if r.next < 64<<20 {
		r.next *= 2
	}
	return nil
}

func (r *rangeReader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.body == nil {
			if r.err = r.fetch(); r.err != nil {
				break
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if err == io.EOF {
			r.body.Close()
			r.body = nil
			err = nil
			if r.size < 0 || r.off >= r.size {
				r.err = io.EOF
			}
		}
		if err != nil {
			r.err = fmt.Errorf("s3://%s/%s: read: %w", r.bucket, r.key, err)
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

func (r *rangeReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.err == nil {
		r.err = errors.New("read after close")
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *types.NotFound
	var nk *types.NoSuchKey
	if errors.As(err, &nf) || errors.As(err, &nk) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey") {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict") {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && (re.HTTPStatusCode() == http.StatusPreconditionFailed)
}

var _ Source = (*S3Source)(nil)
