package planner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/encjob/encjob/sources"
)

// checkOverlap refuses, before anything is built or written, a job whose
// output would replace a source, or whose in-place sources hold one of
// encjob's own files (a key file, a spec, the metadata log, a saved plan,
// existing or not yet). locs are the parsed sources of rt.Job. Every
// problem is named with both paths; the error is a *SetupError.
func (rt *Runtime) checkOverlap(ctx context.Context, locs []sources.Location) error {
	job := rt.Job
	var errs []string
	out := job.Output
	if !out.InPlace && !out.Stdout && out.Path != "" && out.Path != "-" {
		dst := rt.resolve(out.Path)
		if strings.HasPrefix(dst, "s3://") {
			errs = append(errs, rt.overlapS3(ctx, dst, locs)...)
		} else {
			errs = append(errs, rt.overlapLocal(dst, locs)...)
		}
	}
	if out.InPlace && !rt.Options.OwnFilesListedOnly {
		errs = append(errs, rt.ownInPlace(locs)...)
	}
	if len(errs) == 0 {
		return nil
	}
	return &SetupError{Err: errors.New(strings.Join(errs, "; "))}
}

func (rt *Runtime) overlapLocal(dst string, locs []sources.Location) []string {
	dstID, dstFi, err := statID(dst)
	if err != nil {
		return nil // a new output can be no source
	}
	var errs []string
	for i, l := range locs {
		if l.Kind != sources.Local {
			continue
		}
		srcID, srcFi, err := statID(l.Path)
		if err != nil {
			continue // the listing reports a missing source
		}
		tree := srcFi.IsDir()
		if srcID == dstID && !tree {
			// One file, output onto itself (a hard link, a symlink): its
			// item is skipped as "source and destination are the same"
			// (guardPass.finish), as aws-encryption-cli skips such a file.
			continue
		}
		if srcID == dstID {
			errs = append(errs, fmt.Sprintf("output %s and source %s are the same directory (spec.output.path, spec.sources[%d].path): only output.inPlace: true may replace a source",
				rt.Job.Output.Path, rt.Job.Sources[i].Path, i))
			continue
		}
		if !dstFi.IsDir() || !tree {
			// A single source file inside the output directory is fine:
			// its output has another name, and an output that is the
			// same file as a source is a conflict (guardPass.finish).
			continue
		}
		real, err := filepath.EvalSymlinks(l.Path)
		if err != nil {
			continue
		}
		ids, _ := ancestorIDs(real)
		for _, id := range ids {
			if id == dstID {
				errs = append(errs, fmt.Sprintf("source %s is inside output directory %s (spec.sources[%d].path, spec.output.path): outputs would be written among the sources and could replace them; choose an output directory outside the source tree",
					rt.Job.Sources[i].Path, rt.Job.Output.Path, i))
				break
			}
		}
	}
	return errs
}

// s3Span is an S3 location as a key range: an object name and/or a prefix.
type s3Span struct {
	bucket, object, prefix string // object "" when it can only be a prefix
}

func spanOf(l sources.Location) s3Span {
	s := s3Span{bucket: l.Bucket}
	k := l.Key
	switch {
	case l.Glob != "":
		s.prefix = k
	case k == "" || strings.HasSuffix(k, "/"):
		s.prefix = k
	default:
		s.object, s.prefix = k, k+"/"
	}
	return s
}

func (rt *Runtime) overlapS3(ctx context.Context, dst string, locs []sources.Location) []string {
	dl, err := sources.Parse(dst)
	if err != nil {
		return nil
	}
	d := spanOf(dl)
	var errs []string
	for i, l := range locs {
		if l.Kind != sources.S3 || l.Bucket != dl.Bucket {
			continue
		}
		s := spanOf(l)
		switch {
		case s.prefix == d.prefix || s.object != "" && s.object == d.object:
			errs = append(errs, fmt.Sprintf("output %s and source %s are the same S3 location (spec.output.path, spec.sources[%d].path): only output.inPlace: true may replace a source",
				rt.Job.Output.Path, rt.Job.Sources[i].Path, i))
		case strings.HasPrefix(s.prefix, d.prefix) && !(s.object != "" && rt.Storage.S3ObjectExists(ctx, l.Bucket, s.object)):
			errs = append(errs, fmt.Sprintf("source %s is inside output prefix %s (spec.sources[%d].path, spec.output.path): outputs would be written among the sources and could replace them; choose an output prefix outside the source prefix",
				rt.Job.Sources[i].Path, rt.Job.Output.Path, i))
		}
	}
	return errs
}

// ownInPlace refuses an in-place job whose trees would list one of
// encjob's own files: it would be encrypted, decrypted or replaced.
func (rt *Runtime) ownInPlace(locs []sources.Location) []string {
	var errs []string
	g := rt.guard
	if g == nil {
		return nil
	}
	for _, f := range g.files {
		if !f.refuse {
			continue
		}
		pl, real, err := placeOf(f.path)
		if err != nil {
			continue
		}
		ids, rels := ancestorIDs(real)
		for i, l := range locs {
			if l.Kind != sources.Local {
				continue
			}
			srcID, srcFi, err := statID(l.Path)
			if err != nil {
				continue
			}
			if !srcFi.IsDir() {
				if pl.rest == "" && pl.id == srcID {
					errs = append(errs, fmt.Sprintf("spec.sources[%d].path %s is encjob's own %s: replacing it in place would lose data", i, rt.Job.Sources[i].Path, f.what))
				}
				continue
			}
			for k, id := range ids {
				if id != srcID {
					continue
				}
				if rt.wouldList(i, l, rels[k]) {
					errs = append(errs, fmt.Sprintf("encjob's own %s %s is inside in-place source spec.sources[%d].path %s and would be replaced: move it out of the tree or add %q to spec.sources[%d].exclude",
						f.what, f.path, i, rt.Job.Sources[i].Path, rels[k], i))
				}
				break
			}
		}
	}
	return errs
}

// wouldList reports whether the source would list key (its glob and
// filters match).
func (rt *Runtime) wouldList(i int, l sources.Location, key string) bool {
	m := rt.matcher(i, l)
	if m.err != nil {
		return true // the source itself fails to open; refuse more, never less
	}
	if m.glob != nil && !m.glob.Match(key) {
		return false
	}
	return m.filter.Match(key)
}

// listMatcher is a source's glob and filters, compiled once.
type listMatcher struct {
	glob   *sources.Pattern
	filter *sources.Filter
	err    error
}

func (rt *Runtime) matcher(i int, l sources.Location) *listMatcher {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.matchers == nil {
		rt.matchers = map[int]*listMatcher{}
	}
	if m, ok := rt.matchers[i]; ok {
		return m
	}
	m := &listMatcher{}
	if l.Glob != "" {
		// The glob is relative to l.Path, as sources.NewSource compiles it.
		m.glob, m.err = sources.CompilePattern("/" + l.Glob)
	}
	if m.err == nil {
		s := rt.Job.Sources[i]
		m.filter, m.err = sources.NewFilter(s.Include, s.Exclude)
	}
	rt.matchers[i] = m
	return m
}
