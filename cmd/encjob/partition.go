package main

// encjob partition lists a job's sources once and writes the items, one
// part per shard, to an S3 prefix or a directory; encjob apply --items
// PREFIX then reads only its shard's part (docs/kubernetes.md, "Listing at
// scale"). The format is package partition's.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/encjob/encjob/internal/partition"
	"github.com/encjob/encjob/internal/shard"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// openStore opens PREFIX: s3://bucket/prefix/ (a trailing "/" is implied)
// or a local directory (created on first Put), read and written through
// package sources.
func openStore(ctx context.Context, prefix string, client func(context.Context) (*awss3.Client, error)) (partition.Store, error) {
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
			loc.Raw += "/"
		}
		o := sources.S3Options{Client: cl}
		src, err := sources.NewS3Source(loc, o)
		if err != nil {
			return nil, err
		}
		dst, err := sources.NewS3Destination(loc, o)
		if err != nil {
			return nil, err
		}
		return partition.NewStore(src, dst)
	case loc.Kind == sources.Local && loc.Glob == "":
		src, err := sources.NewLocalSource(loc, sources.SourceOptions{})
		if err != nil {
			return nil, err
		}
		return partition.NewStore(src, sources.NewLocalDestination(loc.Path, sources.LocalDestOptions{}))
	}
	return nil, fmt.Errorf("%s: want s3://bucket/prefix/ or a directory", prefix)
}

// partitionArgs is a parsed partition command line.
type partitionArgs struct {
	file, name, out string
	shards          int
	shardsSet       bool
	quiet           bool
}

// parsePartitionArgs parses encjob partition's flags.
func parsePartitionArgs(e *env, args []string) (*partitionArgs, error) {
	a := &partitionArgs{}
	fs := newFlagSet("partition", e)
	fs.StringVarP(&a.file, "file", "f", "", "job spec file")
	fs.StringVar(&a.name, "name", "", "the job to use when the file holds several")
	fs.IntVar(&a.shards, "shards", 0, "number of parts, one per shard (default: spec.execution.shards)")
	fs.StringVar(&a.out, "out", "", "where to write the parts and manifest.json: s3://bucket/prefix/ or a directory")
	fs.BoolVarP(&a.quiet, "quiet", "q", false, "no summary")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	a.shardsSet = fs.Changed("shards")
	switch {
	case fs.NArg() > 0:
		return nil, usageErrorf(fs.Arg(0), "unexpected argument").withHint("give the spec with -f")
	case a.file == "":
		return nil, usageErrorf("-f", "required")
	case a.out == "":
		return nil, usageErrorf("--out", "required").withHint("e.g. --out s3://bucket/runs/NAME/items/")
	}
	return a, nil
}

// cmdPartition: encjob partition -f SPEC --shards N --out PREFIX
func cmdPartition(ctx context.Context, e *env, c *console, args []string) error {
	a, err := parsePartitionArgs(e, args)
	if err != nil {
		return err
	}
	job, jobName, base, err := loadJob(e, a.file, a.name)
	if err != nil {
		return err
	}
	n := a.shards
	if !a.shardsSet {
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
	st, err := openStore(ctx, a.out, rt.S3Client)
	if err != nil {
		return usageErrorf("--out", "%v", err)
	}
	start := time.Now()
	hdr := partition.Manifest{Name: jobName, SpecDigest: rt.Job.Digest(), Shards: n}
	for i := range rt.Sources {
		hdr.Sources = append(hdr.Sources, rt.Job.Sources[i].Path)
	}
	m, err := partition.Write(ctx, st, hdr, func(add func(int, partition.Line) error) error {
		for i, src := range rt.Sources {
			err := src.List(ctx, func(si sources.Item) error { return add(shard.Of(rt.Identity(i, si), n), partition.LineOf(i, si)) })
			if err != nil {
				return fmt.Errorf("listing %s: %w", src, err)
			}
		}
		return nil
	})
	if err != nil {
		return interrupted(ctx, fmt.Errorf("partition %s: %w", st, err))
	}
	if !a.quiet {
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
	m, err := partition.ReadManifest(ctx, st)
	if err != nil {
		if errors.Is(err, sources.ErrNotFound) {
			return nil, refused(s.items, "no %s: the partition step has not finished (or never ran)", partition.ManifestName)
		}
		if ctx.Err() != nil {
			return nil, interrupted(ctx, err)
		}
		return nil, refused(s.items, "%v", err)
	}
	if err := m.Check(rt.Job.Digest()); err != nil {
		return nil, refused(s.items, "%v", err)
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
	lines, err := partition.ReadPart(ctx, st, m.Parts[sh.Index])
	if err != nil {
		if ctx.Err() != nil {
			return nil, interrupted(ctx, err)
		}
		return nil, refused(s.items, "%v", err)
	}
	listed := make([]planner.Listed, len(lines))
	for i := range lines {
		l := planner.Listed{Source: lines[i].Source, Item: lines[i].Item()}
		if l.Source < 0 || l.Source >= len(rt.Sources) {
			return nil, refused(s.items, "%s line %d: source %d does not exist in this spec", m.Parts[sh.Index].Name, i+1, l.Source)
		}
		if id := rt.Identity(l.Source, l.Item); !sh.Owns(id) {
			return nil, refused(s.items, "%s line %d: %s belongs to shard %d/%d, not %s", m.Parts[sh.Index].Name, i+1, id, shard.Of(id, sh.Count), sh.Count, sh)
		}
		listed[i] = l
	}
	p, err := planner.BuildListed(ctx, rt, listed, planner.BuildOptions{Name: s.name, Completed: completed})
	if err != nil {
		return nil, interrupted(ctx, fmt.Errorf("planning: %w", err))
	}
	return p, nil
}
