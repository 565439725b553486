package planner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

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
	errs = append(errs, rt.ownWrites(locs)...)
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

// ownWrites refuses a job whose metadata log or saved plan - the files
// encjob writes as itself, by appending or by replacing - would land on a
// file that is not one: another of encjob's own files (a key file, a
// spec, the log and the plan on each other), a source file or the output
// file of the job, compared by place (device and inode, or the existing
// parent's identity and the rest of the path), so a symlink, a hard link,
// "..", "//" or a trailing "/" name the same file as the plain spelling.
// An existing file that does not hold JSON (what both are) is refused
// too: whatever it is, appending records to it or replacing it with a
// plan would destroy it. Devices and pipes are written into, never
// replaced, and are not compared.
func (rt *Runtime) ownWrites(locs []sources.Location) []string {
	g := rt.guard
	if g == nil {
		return nil
	}
	type named struct {
		what, path string
		pl         place
	}
	var others []named
	for _, f := range g.files {
		if pl, ok := writtenPlace(f.path); ok {
			others = append(others, named{f.what, f.path, pl})
		}
	}
	for i, l := range locs {
		if l.Kind != sources.Local || l.Glob != "" {
			continue
		}
		if fi, err := os.Stat(l.Path); err == nil && fi.Mode().IsRegular() {
			if pl, ok := writtenPlace(l.Path); ok {
				others = append(others, named{fmt.Sprintf("source (spec.sources[%d].path)", i), l.Path, pl})
			}
		}
	}
	if out := rt.Job.Output; !out.InPlace && !out.Stdout && out.Path != "" && out.Path != "-" && !strings.HasPrefix(rt.resolve(out.Path), "s3://") {
		dst := rt.resolve(out.Path)
		if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
			if pl, ok := writtenPlace(dst); ok {
				others = append(others, named{"output (spec.output.path)", dst, pl})
			}
		}
	}
	var errs []string
	seen, reported := map[string]bool{}, map[place]bool{}
	// The log first: apply reads a saved plan and appends to the log.
	for _, w := range writersFirst(g.files) {
		if seen[w.what+"\x00"+w.path] {
			continue
		}
		seen[w.what+"\x00"+w.path] = true
		wp, ok := writtenPlace(w.path)
		if !ok {
			continue
		}
		clash := reported[wp]
		for _, o := range others {
			if !clash && o.pl == wp && o.what != w.what {
				reported[wp] = true
				errs = append(errs, fmt.Sprintf("the %s %s is the same file as the %s %s: writing the %s there would destroy it; choose another file", w.what, w.path, o.what, o.path, w.what))
				clash = true
				break
			}
		}
		if !clash && !holdsOwn(w.path, w.what) {
			errs = append(errs, fmt.Sprintf("the %s %s exists and is not a %s (%s): writing the %s there would destroy it; choose another file", w.what, w.path, w.what, ownLooks[w.what], w.what))
		}
	}
	return errs
}

// ownLooks says how a metadata log and a saved plan start.
var ownLooks = map[string]string{"metadata log": `its first line is no record starting {"mode"`, "saved plan": `it is no JSON object with "format_version"`}

// writersFirst returns the own files encjob writes itself: the metadata
// logs, then the saved plans.
func writersFirst(files []ownFile) []ownFile {
	var out []ownFile
	for _, what := range []string{"metadata log", "saved plan"} {
		for _, f := range files {
			if f.what == what {
				out = append(out, f)
			}
		}
	}
	return out
}

// writtenPlace is the place of a file encjob may write or that it must
// not destroy; false for devices, pipes and sockets (written into, never
// replaced) and for paths with no existing ancestor. A dangling symlink
// is followed to where opening it would create the file.
func writtenPlace(p string) (place, bool) {
	for hops := 0; hops < 40; hops++ {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if _, err := os.Stat(p); err == nil {
			break // resolves: placeOf follows it
		}
		t, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return place{}, false
	}
	pl, _, err := placeOf(p)
	return pl, err == nil
}

// holdsOwn reports whether the file at p may be written as encjob's
// what (a metadata log, appended to; a saved plan, replaced): absent,
// empty, not a regular file, or already one - a log's first record starts
// {"mode", a plan {"format_version" (LooksLikeLog,
// FirstKeyIs). Only the first bytes are read.
func holdsOwn(p, what string) bool {
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() || sources.ThroughSpecialFS(p) {
		// Absent (created), unreadable (opening it will say), a device
		// or pipe, or a stream of the caller's (/dev/stderr behind which
		// the shell's 2>>file is): written into, whatever it holds.
		return true
	}
	// O_NONBLOCK: a pipe swapped in since the Stat does not block.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return true
	}
	defer f.Close()
	head, err := io.ReadAll(io.LimitReader(f, SniffBytes))
	if err != nil {
		return true
	}
	if what == "saved plan" {
		return HasTopKey(head, "format_version") || FirstKeyIs(head, "")
	}
	return LooksLikeLog(head)
}
