package main

// Metadata logs on S3 (--metadata-output s3://bucket/prefix/shard-3.jsonl,
// what the rendered Kubernetes Job passes) and `encjob report` over an S3
// prefix of such logs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// metadataUploadTimeout bounds the final upload of an S3 metadata log,
// which runs even after an interrupt cancelled the run.
const metadataUploadTimeout = 5 * time.Minute

// openJobMetadata is openMetadata, plus logs on S3: the log is written to
// a temporary file and uploaded by the returned close function, at the
// end of the run and also after an interrupt (SIGINT / SIGTERM) stopped
// it. S3 objects cannot be appended to, so the upload replaces the
// object: a re-run of a shard replaces that shard's log, and the items
// the earlier run finished appear in it again, as unchanged. A run killed
// outright (SIGKILL, OOM) uploads nothing; its re-run writes the log.
func openJobMetadata(ctx context.Context, e *env, rt *planner.Runtime, p string, overwrite bool) (*executor.MetadataLog, func() error, error) {
	if !strings.HasPrefix(p, "s3://") {
		return openMetadata(e, p, overwrite)
	}
	dir, name := path.Split(p)
	if name == "" || strings.ContainsAny(name, "*?[{") {
		return nil, nil, usageErrorf("--metadata-output", "%s: name an object, e.g. s3://bucket/runs/NAME/shard-0.jsonl", p)
	}
	st, err := openStore(ctx, dir, rt.S3Client)
	if err != nil {
		return nil, nil, usageErrorf("--metadata-output", "%v", err)
	}
	f, err := os.CreateTemp("", "encjob-metadata-*.jsonl")
	if err != nil {
		return nil, nil, fmt.Errorf("metadata log: %w", err)
	}
	closeFn := func() error {
		defer os.Remove(f.Name())
		defer f.Close()
		if err := f.Sync(); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metadataUploadTimeout)
		defer cancel()
		if err := st.Put(uctx, name, f); err != nil {
			return fmt.Errorf("uploading to %s: %w", p, err)
		}
		return nil
	}
	return executor.NewMetadataLog(f), closeFn, nil
}

// reportHasS3 reports whether a report argument list names an S3 location.
func reportHasS3(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "s3://") {
			return true
		}
	}
	return false
}

// cmdReportS3: encjob report [--json] [--s3-path-style] (s3://bucket/prefix/ | s3://bucket/log.jsonl | LOG | DIR)...
// A prefix (ending in "/") stands for its shard-*.jsonl objects, oldest
// first; local arguments are read as cmdReportMerge reads them.
func cmdReportS3(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("report", e)
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	pathStyle := fs.Bool("s3-path-style", false, "address S3 buckets in the path (S3-compatible servers); the endpoint comes from AWS_ENDPOINT_URL_S3")
	region := fs.String("s3-region", "", "S3 region (default: from the environment)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var client *awss3.Client
	getClient := func(ctx context.Context) (*awss3.Client, error) {
		if client != nil {
			return client, nil
		}
		c, err := sources.NewS3Client(ctx, sources.S3Config{Region: *region, UsePathStyle: *pathStyle})
		client = c
		return c, err
	}
	var logs []io.Reader
	defer func() {
		for _, r := range logs {
			if c, ok := r.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	for _, a := range fs.Args() {
		if !strings.HasPrefix(a, "s3://") {
			local, err := localReportLogs(a)
			if err != nil {
				return err
			}
			logs = append(logs, local...)
			continue
		}
		loc, err := sources.Parse(a)
		if err != nil || loc.Glob != "" {
			return usageErrorf(a, "want s3://bucket/prefix/ or s3://bucket/key")
		}
		cl, err := getClient(ctx)
		if err != nil {
			return err
		}
		if loc.IsPrefix() {
			found, err := listShardLogs(ctx, cl, loc)
			if err != nil {
				return interrupted(ctx, err)
			}
			if len(found) == 0 {
				return usageErrorf(a, "no shard-*.jsonl objects under this prefix")
			}
			logs = append(logs, found...)
			continue
		}
		logs = append(logs, &s3Log{client: cl, bucket: loc.Bucket, key: loc.Key, ctx: ctx})
	}
	if len(logs) == 0 {
		return usageErrorf("report", "give metadata logs, a directory of shard-*.jsonl logs, or an s3:// prefix")
	}
	sum, err := report.Merge(logs...)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx, err)
		}
		return &exitError{Code: exitUsage, Err: err}
	}
	return printReport(e, sum, *asJSON)
}

// localReportLogs opens a log file, or the shard-*.jsonl files of a
// directory.
func localReportLogs(a string) ([]io.Reader, error) {
	files := []string{a}
	if fi, err := os.Stat(a); err == nil && fi.IsDir() {
		files, _ = filepath.Glob(filepath.Join(a, "shard-*.jsonl"))
	}
	var out []io.Reader
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			for _, r := range out {
				r.(io.Closer).Close()
			}
			return nil, &exitError{Code: exitUsage, Err: err}
		}
		out = append(out, f)
	}
	return out, nil
}

// listShardLogs lists the shard-*.jsonl objects directly under a prefix,
// oldest first (then by key), as lazily opened logs.
func listShardLogs(ctx context.Context, cl *awss3.Client, loc sources.Location) ([]io.Reader, error) {
	prefix := loc.Key
	var objs []types.Object
	in := &awss3.ListObjectsV2Input{Bucket: &loc.Bucket, Prefix: &prefix, Delimiter: aws.String("/")}
	pg := awss3.NewListObjectsV2Paginator(cl, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", loc.Raw, err)
		}
		for _, o := range page.Contents {
			if ok, _ := path.Match("shard-*.jsonl", strings.TrimPrefix(aws.ToString(o.Key), prefix)); ok {
				objs = append(objs, o)
			}
		}
	}
	slices.SortStableFunc(objs, func(a, b types.Object) int {
		if c := aws.ToTime(a.LastModified).Compare(aws.ToTime(b.LastModified)); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(a.Key), aws.ToString(b.Key))
	})
	out := make([]io.Reader, len(objs))
	for i, o := range objs {
		out[i] = &s3Log{client: cl, bucket: loc.Bucket, key: aws.ToString(o.Key), ctx: ctx}
	}
	return out, nil
}

// s3Log is one log object, opened on the first Read so that a merge over
// many logs holds one connection at a time. Name is its s3:// URL (the
// shard of lines that carry no shard field).
type s3Log struct {
	client      *awss3.Client
	ctx         context.Context
	bucket, key string
	body        io.ReadCloser
}

func (l *s3Log) Name() string { return "s3://" + l.bucket + "/" + l.key }

func (l *s3Log) Read(p []byte) (int, error) {
	if l.body == nil {
		out, err := l.client.GetObject(l.ctx, &awss3.GetObjectInput{Bucket: &l.bucket, Key: &l.key})
		if err != nil {
			return 0, fmt.Errorf("%s: get: %w", l.Name(), err)
		}
		l.body = out.Body
	}
	n, err := l.body.Read(p)
	if errors.Is(err, io.EOF) {
		l.body.Close()
		l.body = io.NopCloser(eofReader{})
	}
	return n, err
}

func (l *s3Log) Close() error {
	if l.body != nil {
		return l.body.Close()
	}
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
