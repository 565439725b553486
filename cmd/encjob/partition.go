package main

// encjob partition lists a job's sources once and writes the items, one
// part per shard, to an S3 prefix or a directory; encjob apply --items
// PREFIX then reads only its shard's part (docs/kubernetes.md, "Listing at
// scale").
//
// The layout under PREFIX, one version per run of partition:
//
//	part-00000.jsonl.gz … part-<N-1>   one gzip'ed JSON line per item (partLine)
//	manifest.json                      written last: the commit marker (itemsManifest)
//
// Parts are gzip'ed: a listing line (key, size, ETag, mtime) is ~160 bytes
// of repetitive JSON that gzip shrinks about 4×, so 100 million items are
// ~4 GB instead of 16 GB to store and to download, for well under a second
// of CPU per million lines. The manifest records each part's SHA-256, so a
// shard never plans from a part that a later partition run is rewriting.

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/internal/shard"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// itemsFormatVersion is the version of the partition layout; apply refuses
// any other.
const itemsFormatVersion = 1

const (
	itemsManifestName = "manifest.json"
	itemsKind         = "encjob-items"
)

func partName(i int) string { return fmt.Sprintf("part-%05d.jsonl.gz", i) }

// itemsManifest is manifest.json: what a shard checks before it trusts
// its part.
type itemsManifest struct {
	FormatVersion int        `json:"format_version"`
	Kind          string     `json:"kind"`
	Name          string     `json:"name"`
	SpecDigest    string     `json:"spec_digest"` // Job.Digest() of the partitioned spec
	Shards        int        `json:"shards"`
	Created       time.Time  `json:"created"`
	Sources       []string   `json:"sources"`
	Items         int64      `json:"items"`
	Parts         []partInfo `json:"parts"` // Parts[i] is shard i's
}

type partInfo struct {
	Name   string `json:"name"`
	Items  int64  `json:"items"`
	Bytes  int64  `json:"bytes"`  // as stored (gzip)
	SHA256 string `json:"sha256"` // of the stored bytes
}

// partLine is one listed item: what planning needs from a listing.
type partLine struct {
	Source      int       `json:"source"` // index into spec.sources
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	ModTime     time.Time `json:"mtime"`
	ETag        string    `json:"etag,omitempty"`
	Version     string    `json:"version,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Mode        uint32    `json:"mode,omitempty"`
	Single      bool      `json:"single,omitempty"`
	Skipped     string    `json:"skipped,omitempty"`
	Error       string    `json:"error,omitempty"`
}

func lineOf(src int, si sources.Item) partLine {
	l := partLine{Source: src, Key: si.Key, Size: si.Size, ModTime: si.ModTime, ETag: si.ETag, Version: si.Version,
		Fingerprint: string(si.Print), Mode: uint32(si.Mode), Single: si.IsSingle, Skipped: si.Skipped}
	if si.Err != nil {
		l.Error = si.Err.Error()
	}
	return l
}

func (l *partLine) listed() planner.Listed {
	si := sources.Item{Key: l.Key, Size: l.Size, ModTime: l.ModTime, ETag: l.ETag, Version: l.Version,
		Print: sources.Fingerprint(l.Fingerprint), Mode: fs.FileMode(l.Mode), IsSingle: l.Single, Skipped: l.Skipped}
	if l.Error != "" {
		si.Err = errors.New(l.Error)
	}
	return planner.Listed{Source: l.Source, Item: si}
}

// blobStore is a flat namespace of objects: an S3 prefix or a directory.
type blobStore interface {
	String() string
	// Get opens name; errors.Is(err, sources.ErrNotFound) when missing.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Put replaces name atomically with everything r yields.
	Put(ctx context.Context, name string, r io.Reader) error
	// Delete removes name; a missing name is not an error.
	Delete(ctx context.Context, name string) error
}

// openStore opens PREFIX: s3://bucket/prefix/ (a trailing "/" is implied)
// or a local directory (created on first Put).
func openStore(ctx context.Context, prefix string, client func(context.Context) (*awss3.Client, error)) (blobStore, error) {
	loc, err := sources.Parse(prefix)
	if err != nil {
		return nil, err
	}
	switch {
	case loc.Kind == sources.S3 && loc.Glob == "":
		cl, err := client(ctx)
		if err != nil {
			return nil, err
		}
		if loc.Key != "" && !strings.HasSuffix(loc.Key, "/") {
			loc.Key += "/"
		}
		d, err := sources.NewS3Destination(loc, sources.S3Options{Client: cl})
		if err != nil {
			return nil, err
		}
		return &s3Store{loc: loc, client: cl, dest: d}, nil
	case loc.Kind == sources.Local && loc.Glob == "":
		return &dirStore{dir: loc.Path, dest: sources.NewLocalDestination(loc.Path, sources.LocalDestOptions{})}, nil
	}
	return nil, fmt.Errorf("%s: want s3://bucket/prefix/ or a directory", prefix)
}

type s3Store struct {
	loc    sources.Location
	client *awss3.Client
	dest   *sources.S3Destination
}

func (s *s3Store) String() string { return "s3://" + s.loc.Bucket + "/" + s.loc.Key }

func (s *s3Store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	key := s.loc.Key + name
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.loc.Bucket, Key: &key})
	if err != nil {
		if _, herr := s.dest.Stat(ctx, name); errors.Is(herr, sources.ErrNotFound) {
			return nil, fmt.Errorf("%s%s: %w", s, name, sources.ErrNotFound)
		}
		return nil, fmt.Errorf("%s%s: get: %w", s, name, err)
	}
	return out.Body, nil
}

func (s *s3Store) Put(ctx context.Context, name string, r io.Reader) error {
	return putVia(ctx, s.dest, name, r)
}

func (s *s3Store) Delete(ctx context.Context, name string) error {
	key := s.loc.Key + name
	if _, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.loc.Bucket, Key: &key}); err != nil {
		return fmt.Errorf("%s%s: delete: %w", s, name, err)
	}
	return nil
}

type dirStore struct {
	dir  string
	dest *sources.LocalDestination
}

func (d *dirStore) String() string { return d.dir + string(filepath.Separator) }

func (d *dirStore) Get(_ context.Context, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", filepath.Join(d.dir, name), sources.ErrNotFound)
	}
	return f, err
}

func (d *dirStore) Put(ctx context.Context, name string, r io.Reader) error {
	return putVia(ctx, d.dest, name, r)
}

func (d *dirStore) Delete(_ context.Context, name string) error {
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// putVia writes through a Destination: temp name and rename locally, a
// single PutObject or a completed multipart upload on S3.
func putVia(ctx context.Context, d sources.Destination, name string, r io.Reader) error {
	w, err := d.Create(ctx, name, sources.CreateOptions{Overwrite: sources.OverwriteAlways, Size: -1})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := w.Commit(ctx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// cmdPartition: encjob partition -f SPEC --shards N --out PREFIX
func cmdPartition(ctx context.Context, e *env, c *console, args []string) error {
	fs := newFlagSet("partition", e)
	file := fs.StringP("file", "f", "", "job spec file")
	name := fs.String("name", "", "the job to use when the file holds several")
	shards := fs.Int("shards", 0, "number of parts, one per shard (default: spec.execution.shards)")
	out := fs.String("out", "", "where to write the parts and manifest.json: s3://bucket/prefix/ or a directory")
	quiet := fs.BoolP("quiet", "q", false, "no summary")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErrorf(fs.Arg(0), "unexpected argument").withHint("give the spec with -f")
	case *file == "":
		return usageErrorf("-f", "required")
	case *out == "":
		return usageErrorf("--out", "required").withHint("e.g. --out s3://bucket/runs/NAME/items/")
	}
	job, jobName, base, err := loadJob(e, *file, *name)
	if err != nil {
		return err
	}
	n := *shards
	if !fs.Changed("shards") {
		n = job.Execution.Shards
	}
	if n < 1 || n > shard.MaxCount {
		return usageErrorf("--shards", "%d: want 1 to %d", n, shard.MaxCount).withHint("pass --shards N (the Job's completions) or set spec.execution.shards")
	}
	rt, err := planner.OpenSources(ctx, job, planner.Options{BaseDir: base})
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	for i := range rt.Sources {
		if rt.IsStdin(i) {
			return usageErrorf("-f", "spec.sources[%d]: standard input cannot be partitioned", i)
		}
	}
	st, err := openStore(ctx, *out, rt.S3Client)
	if err != nil {
		return usageErrorf("--out", "%v", err)
	}
	start := time.Now()
	m, err := partition(ctx, rt, st, jobName, n)
	if err != nil {
		return interrupted(ctx, fmt.Errorf("partition %s: %w", st, err))
	}
	if !*quiet {
		hprintf(e.stdout, "Partitioned %s: %d items into %d parts at %s (%s)\n", jobName, m.Items, n, st,
			time.Since(start).Round(time.Millisecond))
		if c.verbosity > 0 || n <= 16 {
			for _, p := range m.Parts {
				hprintf(e.stdout, "  %s  %d items  %s\n", p.Name, p.Items, fmtBytes(p.Bytes))
			}
		}
	}
	return nil
}

// partWriter spools one part's lines to a temporary file.
type partWriter struct {
	f     *os.File
	w     *bufio.Writer
	items int64
}

// partition lists rt's sources, spools each item's line to its shard's
// temporary file (memory: n × 32 KiB of buffers), uploads the parts
// gzip'ed, and writes the manifest last. It first deletes an existing
// manifest, so that no shard reads the prefix while it is rewritten.
func partition(ctx context.Context, rt *planner.Runtime, st blobStore, name string, n int) (*itemsManifest, error) {
	if err := st.Delete(ctx, itemsManifestName); err != nil {
		return nil, fmt.Errorf("removing the previous manifest: %w", err)
	}
	tmp, err := os.MkdirTemp("", "encjob-partition-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	parts := make([]*partWriter, n)
	defer func() {
		for _, p := range parts {
			if p != nil {
				p.f.Close()
			}
		}
	}()
	for i := range parts {
		f, err := os.Create(filepath.Join(tmp, partName(i)))
		if err != nil {
			return nil, fmt.Errorf("spooling part %d of %d: %w (raise the open-file limit, ulimit -n)", i, n, err)
		}
		parts[i] = &partWriter{f: f, w: bufio.NewWriterSize(f, 32<<10)}
	}
	m := &itemsManifest{FormatVersion: itemsFormatVersion, Kind: itemsKind, Name: name, SpecDigest: rt.Job.Digest(),
		Shards: n, Created: time.Now().UTC().Truncate(time.Second)}
	for i, src := range rt.Sources {
		m.Sources = append(m.Sources, rt.Job.Sources[i].Path)
		err := src.List(ctx, func(si sources.Item) error {
			p := parts[shard.Of(rt.Identity(i, si), n)]
			b, err := json.Marshal(lineOf(i, si))
			if err != nil {
				return err
			}
			p.items++
			_, err = p.w.Write(append(b, '\n'))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", src, err)
		}
	}
	m.Parts = make([]partInfo, n)
	for i, p := range parts {
		if err := p.w.Flush(); err != nil {
			return nil, fmt.Errorf("spooling part %d: %w", i, err)
		}
		m.Parts[i] = partInfo{Name: partName(i), Items: p.items}
		m.Items += p.items
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, p := range parts {
		g.Go(func() error {
			if _, err := p.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			pr, pw := io.Pipe()
			h := &countingHash{h: sha256.New()}
			go func() {
				zw := gzip.NewWriter(io.MultiWriter(pw, h))
				_, err := io.Copy(zw, p.f)
				if cerr := zw.Close(); err == nil {
					err = cerr
				}
				pw.CloseWithError(err)
			}()
			err := st.Put(gctx, m.Parts[i].Name, pr)
			pr.CloseWithError(errors.New("upload ended")) // unblocks the gzip goroutine on failure
			if err != nil {
				return err
			}
			m.Parts[i].Bytes, m.Parts[i].SHA256 = h.n, hex.EncodeToString(h.h.Sum(nil))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := st.Put(ctx, itemsManifestName, strings.NewReader(string(b)+"\n")); err != nil {
		return nil, fmt.Errorf("writing the manifest: %w", err)
	}
	return m, nil
}

// countingHash hashes and counts what is written to it.
type countingHash struct {
	mu sync.Mutex
	h  hash.Hash
	n  int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(len(p))
	return c.h.Write(p)
}

// refused is the exit-3 error of apply --items.
func refused(prefix, format string, args ...any) *exitError {
	return &exitError{Code: exitStale, Err: fmt.Errorf("--items %s: %s", prefix, fmt.Sprintf(format, args...)),
		Hint: "run encjob partition again with this spec and shard count, then re-run the shards"}
}

// planFromItems plans this shard's part of the item list at s.items:
// refused (exit 3) when the manifest is missing or does not match the
// spec or the shard count, or the part is not the one the manifest
// records. s.shard is completed from the manifest's count when the index
// came from the environment without a count.
func planFromItems(ctx context.Context, e *env, rt *planner.Runtime, s *runSettings, completed map[string]sources.Fingerprint) (*planner.Plan, error) {
	st, err := openStore(ctx, s.items, rt.S3Client)
	if err != nil {
		return nil, usageErrorf("--items", "%v", err)
	}
	m, err := readItemsManifest(ctx, st)
	if err != nil {
		if errors.Is(err, sources.ErrNotFound) {
			return nil, refused(s.items, "no %s: the partition step has not finished (or never ran)", itemsManifestName)
		}
		if ctx.Err() != nil {
			return nil, interrupted(ctx, err)
		}
		return nil, refused(s.items, "%v", err)
	}
	switch {
	case m.Kind != itemsKind || m.FormatVersion != itemsFormatVersion:
		return nil, refused(s.items, "%s is %q version %d; this encjob reads %q version %d", itemsManifestName, m.Kind, m.FormatVersion, itemsKind, itemsFormatVersion)
	case m.SpecDigest != rt.Job.Digest():
		return nil, refused(s.items, "partitioned from another spec (spec digest %s, this spec's is %s)", short(m.SpecDigest), short(rt.Job.Digest()))
	case m.Shards < 1 || len(m.Parts) != m.Shards:
		return nil, refused(s.items, "%s lists %d parts for %d shards", itemsManifestName, len(m.Parts), m.Shards)
	}
	sh := s.shard
	if !sh.Sharded() && m.Shards > 1 {
		fromEnv, ok, err := shard.FromEnv(e.getenv, m.Shards)
		if err != nil {
			return nil, &usageError{Flag: "--items", Msg: err.Error()}
		}
		if !ok {
			return nil, usageErrorf("--items", "the items are partitioned into %d shards: give --shard INDEX/%d or set %s", m.Shards, m.Shards, shard.EnvK8sIndex)
		}
		sh = fromEnv
	}
	if count := max(sh.Count, 1); count != m.Shards {
		return nil, refused(s.items, "partitioned into %d shards, this run has %d", m.Shards, count)
	}
	s.shard = sh
	listed, err := readPart(ctx, st, m.Parts[sh.Index])
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx, err)
		}
		return nil, refused(s.items, "%v", err)
	}
	for i := range listed {
		l := &listed[i]
		if l.Source < 0 || l.Source >= len(rt.Sources) {
			return nil, refused(s.items, "%s line %d: source %d does not exist in this spec", m.Parts[sh.Index].Name, i+1, l.Source)
		}
		if id := rt.Identity(l.Source, l.Item); !sh.Owns(id) {
			return nil, refused(s.items, "%s line %d: %s belongs to shard %d/%d, not %s", m.Parts[sh.Index].Name, i+1, id, shard.Of(id, sh.Count), sh.Count, sh)
		}
	}
	p, err := planner.BuildListed(ctx, rt, listed, planner.BuildOptions{Name: s.name, Completed: completed})
	if err != nil {
		return nil, interrupted(ctx, fmt.Errorf("planning: %w", err))
	}
	return p, nil
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

func readItemsManifest(ctx context.Context, st blobStore) (*itemsManifest, error) {
	rc, err := st.Get(ctx, itemsManifestName)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m itemsManifest
	dec := json.NewDecoder(io.LimitReader(rc, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", itemsManifestName, err)
	}
	return &m, nil
}

// readPart reads one part, checking its digest and item count against
// the manifest.
func readPart(ctx context.Context, st blobStore, p partInfo) ([]planner.Listed, error) {
	rc, err := st.Get(ctx, p.Name)
	if err != nil {
		if errors.Is(err, sources.ErrNotFound) {
			return nil, fmt.Errorf("%s is missing", p.Name)
		}
		return nil, err
	}
	defer rc.Close()
	h := &countingHash{h: sha256.New()}
	raw := io.TeeReader(rc, h)
	zr, err := gzip.NewReader(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	var out []planner.Listed
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var l partLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", p.Name, n, err)
		}
		out = append(out, l.listed())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	if got := hex.EncodeToString(h.h.Sum(nil)); got != p.SHA256 || h.n != p.Bytes {
		return nil, fmt.Errorf("%s does not match the manifest (sha256 %s, %d bytes; want %s, %d bytes): rewritten by another partition run?", p.Name, short(got), h.n, short(p.SHA256), p.Bytes)
	}
	if int64(len(out)) != p.Items {
		return nil, fmt.Errorf("%s holds %d items, the manifest says %d", p.Name, len(out), p.Items)
	}
	return out, nil
}
