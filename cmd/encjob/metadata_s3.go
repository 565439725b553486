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

// checkS3Log refuses, before any item, an S3 metadata log whose object
// exists and is not a metadata log (planner.LooksLikeLog): the upload at
// the end replaces the object, which could be a source message the job
// skipped as "encjob's own metadata log", or any other data. A log that
// cannot be read (a write-only results bucket) is not checked.
func checkS3Log(ctx context.Context, rt *planner.Runtime, p string) error {
	if !strings.HasPrefix(p, "s3://") {
		return nil
	}
	dir, name := path.Split(p)
	if name == "" || strings.ContainsAny(name, "*?[{") {
		return nil // openJobMetadata says what is wrong
	}
	st, err := openStore(ctx, dir, rt.S3Client)
	if err != nil {
		return nil
	}
	r, err := st.Get(ctx, name)
	if err != nil {
		return nil // absent (created), or not readable: nothing to judge
	}
	defer r.Close()
	head, err := io.ReadAll(io.LimitReader(r, planner.SniffBytes))
	if err != nil || planner.LooksLikeLog(head) {
		return nil
	}
	return usageErrorf("--metadata-output", "%s exists and is not a metadata log (its first line is no record starting {\"mode\"): uploading the log would replace it; choose another key", p)
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

// reportS3Args is a parsed report command line that names S3 locations.
type reportS3Args struct {
	asJSON, pathStyle bool
	region            string
	logs              []string
}

// parseReportS3Args parses encjob report's flags (the S3 form).
func parseReportS3Args(e *env, args []string) (*reportS3Args, error) {
	a := &reportS3Args{}
	fs := newFlagSet("report", e)
	fs.BoolVar(&a.asJSON, "json", false, "print the summary as JSON")
	fs.BoolVar(&a.pathStyle, "s3-path-style", false, "address S3 buckets in the path (S3-compatible servers); the endpoint comes from AWS_ENDPOINT_URL_S3")
	fs.StringVar(&a.region, "s3-region", "", "S3 region (default: from the environment)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	a.logs = fs.Args()
	if len(a.logs) == 0 {
		return nil, usageErrorf("report", "give metadata logs, a directory of shard-*.jsonl logs, or an s3:// prefix")
	}
	return a, nil
}

// cmdReportS3: encjob report [--json] [--s3-path-style] (s3://bucket/prefix/ | s3://bucket/log.jsonl | LOG | DIR)...
// A prefix (ending in "/") stands for its shard-*.jsonl objects, oldest
// first; local arguments are read as cmdReportMerge reads them. Objects
// are listed and read through package sources.
func cmdReportS3(ctx context.Context, e *env, args []string) error {
	a, err := parseReportS3Args(e, args)
	if err != nil {
		return err
	}
	var opts *sources.S3Options
	s3opts := func() (sources.S3Options, error) {
		if opts == nil {
			c, err := sources.NewS3Client(ctx, sources.S3Config{Region: a.region, UsePathStyle: a.pathStyle})
			if err != nil {
				return sources.S3Options{}, err
			}
			opts = &sources.S3Options{Client: c}
		}
		return *opts, nil
	}
	sum, err := readUntilSignal(ctx, func() (*report.Summary, error) { return mergeReportLogs(ctx, a.logs, s3opts) })
	if err != nil {
		return err
	}
	return printReport(e, sum, a.asJSON)
}

// mergeReportLogs reads and merges the logs the report arguments name.
func mergeReportLogs(ctx context.Context, args []string, s3opts func() (sources.S3Options, error)) (*report.Summary, error) {
	var logs []io.Reader
	defer func() {
		for _, r := range logs {
			if c, ok := r.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	for _, arg := range args {
		found, err := reportLogs(ctx, arg, s3opts)
		if err != nil {
			return nil, err
		}
		logs = append(logs, found...)
	}
	sum, err := report.Merge(logs...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx, err)
		}
		return nil, &exitError{Code: exitUsage, Err: err}
	}
	return sum, nil
}

// reportLogs opens the logs one report argument names: a local log or
// directory, an S3 object, or the shard-*.jsonl objects directly under an
// S3 prefix, oldest first (then by key).
func reportLogs(ctx context.Context, arg string, s3opts func() (sources.S3Options, error)) ([]io.Reader, error) {
	if !strings.HasPrefix(arg, "s3://") {
		return localReportLogs(arg)
	}
	loc, err := sources.Parse(arg)
	if err != nil || loc.Glob != "" {
		return nil, usageErrorf(arg, "want s3://bucket/prefix/ or s3://bucket/key")
	}
	o, err := s3opts()
	if err != nil {
		return nil, err
	}
	if !loc.IsPrefix() {
		dir, name := path.Split(loc.Key)
		src, err := s3Dir(loc.Bucket, dir, o)
		if err != nil {
			return nil, err
		}
		return []io.Reader{&s3Log{src: src, key: name, ctx: ctx}}, nil
	}
	src, err := s3Dir(loc.Bucket, loc.Key, o)
	if err != nil {
		return nil, err
	}
	var items []sources.Item
	err = src.List(ctx, func(it sources.Item) error {
		if ok, _ := path.Match("shard-*.jsonl", it.Key); ok && it.Err == nil && it.Skipped == "" {
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return nil, interrupted(ctx, fmt.Errorf("listing %s: %w", arg, err))
	}
	if len(items) == 0 {
		return nil, usageErrorf(arg, "no shard-*.jsonl objects under this prefix")
	}
	slices.SortStableFunc(items, func(a, b sources.Item) int {
		if c := a.ModTime.Compare(b.ModTime); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	out := make([]io.Reader, len(items))
	for i, it := range items {
		out[i] = &s3Log{src: src, key: it.Key, ctx: ctx}
	}
	return out, nil
}

// s3Dir is a source over the objects directly under prefix (a glob that
// does not cross "/").
func s3Dir(bucket, prefix string, o sources.S3Options) (*sources.S3Source, error) {
	loc, err := sources.Parse("s3://" + bucket + "/" + prefix + "*")
	if err != nil {
		return nil, err
	}
	return sources.NewS3Source(loc, o)
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

// s3Log is one log object, opened on the first Read so that a merge over
// many logs holds one connection at a time. Name is its s3:// URL (the
// shard of lines that carry no shard field).
type s3Log struct {
	src  *sources.S3Source
	ctx  context.Context
	key  string
	body io.ReadCloser
}

func (l *s3Log) Name() string { return strings.TrimSuffix(l.src.String(), "*") + l.key }

func (l *s3Log) Read(p []byte) (int, error) {
	if l.body == nil {
		body, err := l.src.Open(l.ctx, l.key)
		if err != nil {
			return 0, err
		}
		l.body = body
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
