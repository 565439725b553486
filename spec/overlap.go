package spec

import (
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/encjob/encjob/internal/pathglob"
)

// validateOverlap finds, from the paths as written, outputs that would
// replace sources and encjob's own files that would be items. It is the
// early, lexical half of the rule (paths relative to the same spec
// directory, or both absolute, are compared after cleaning; S3 locations
// by bucket and prefix); the planner repeats every check by file
// identity when the job starts, where symlinks, bind mounts and mixed
// spellings are seen.
func validateOverlap(sp *Path, j *Job) ErrorList {
	var errs ErrorList
	op := sp.Child("output").Child("path")
	out := j.Output
	if out.Path != "" && out.Path != "-" && !out.InPlace && !out.Stdout {
		for i, s := range j.Sources {
			if s.Path == "" || s.Path == "-" {
				continue
			}
			switch relation(s.Path, out.Path) {
			case same:
				errs = append(errs, Invalid(op, out.Path, "is also spec.sources["+strconv.Itoa(i)+"].path: only output.inPlace: true may replace a source"))
			case inside:
				if isTree(s.Path) {
					errs = append(errs, Invalid(op, out.Path, "contains spec.sources["+strconv.Itoa(i)+"].path "+s.Path+": outputs would be written among the sources; choose an output outside the source tree"))
				}
			}
		}
	}
	if m := j.Metadata.Output; m != "" && m != "-" {
		mp := sp.Child("metadata").Child("output")
		for i, s := range j.Sources {
			if s.Path != "" && s.Path != "-" && relation(m, s.Path) == same {
				errs = append(errs, Invalid(mp, m, "is also spec.sources["+strconv.Itoa(i)+"].path"))
			}
		}
		if out.Path != "" && relation(m, out.Path) == same {
			errs = append(errs, Invalid(mp, m, "is also spec.output.path"))
		}
		if out.InPlace {
			if i, ok := listedInPlace(j.Sources, m); ok {
				errs = append(errs, Invalid(mp, m, "is inside in-place source spec.sources["+strconv.Itoa(i)+"].path and would be replaced; write the log outside the tree or exclude it"))
			}
		}
	}
	if out.InPlace {
		for _, name := range sortedKeys(j.KeyGroups) {
			for k, g := range j.KeyGroups[name].Singles() {
				if g.KeyFile == "" {
					continue
				}
				if i, ok := listedInPlace(j.Sources, g.KeyFile); ok {
					kp := sp.Child("keyGroups").Key(name)
					if len(j.KeyGroups[name].Members) > 0 {
						kp = kp.Child("members").Index(k)
					}
					errs = append(errs, Invalid(kp.Child("keyFile"), g.KeyFile, "is inside in-place source spec.sources["+strconv.Itoa(i)+"].path and would be encrypted with itself, losing every message; keep key files outside the tree or exclude them"))
				}
			}
		}
	}
	return errs
}

type rel int

const (
	apart  rel = iota
	same       // a and b name the same location
	inside     // a lies inside b
)

// relation compares two locations as written: local paths when both are
// relative or both absolute, S3 locations by bucket and key prefix.
func relation(a, b string) rel {
	as, bs := strings.HasPrefix(a, "s3://"), strings.HasPrefix(b, "s3://")
	if as != bs {
		return apart
	}
	var x, y string
	if as {
		x, y = strings.TrimPrefix(a, "s3://"), strings.TrimPrefix(b, "s3://")
		x, y = strings.TrimSuffix(staticPart(x), "/"), strings.TrimSuffix(staticPart(y), "/")
	} else {
		if filepath.IsAbs(a) != filepath.IsAbs(b) {
			return apart
		}
		x, y = path.Clean(filepath.ToSlash(staticPart(a))), path.Clean(filepath.ToSlash(staticPart(b)))
		if strings.HasPrefix(x, "..") || strings.HasPrefix(y, "..") {
			return apart // above the spec directory: the planner decides
		}
	}
	switch {
	case x == y && !hasGlob(a) && !hasGlob(b):
		return same
	case x == y:
		return inside
	case y == "." || strings.HasPrefix(x, y+"/"):
		return inside
	}
	return apart
}

// staticPart is a location without its glob segments.
func staticPart(p string) string {
	i := strings.IndexAny(p, "*?[{")
	if i < 0 {
		return p
	}
	j := strings.LastIndexByte(p[:i], '/')
	if j < 0 {
		return "."
	}
	return p[:j+1]
}

// globPart is the glob segments of a location ("" without a glob).
func globPart(p string) string {
	i := strings.IndexAny(p, "*?[{")
	if i < 0 {
		return ""
	}
	return p[strings.LastIndexByte(p[:i], '/')+1:]
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[{") }

// isTree reports whether a source surely names a tree (a glob, a
// directory written with a trailing slash, a whole bucket or prefix).
func isTree(p string) bool {
	if hasGlob(p) || strings.HasSuffix(p, "/") || p == "." || p == ".." {
		return true
	}
	if strings.HasPrefix(p, "s3://") {
		return !strings.Contains(strings.TrimPrefix(p, "s3://"), "/")
	}
	return false
}

// listedInPlace reports which source, if any, would list the file at p as
// an item: p lies inside it and its glob and filters keep p's key.
func listedInPlace(srcs []Source, p string) (int, bool) {
	for i, s := range srcs {
		if s.Path == "" || s.Path == "-" {
			continue
		}
		r := relation(p, s.Path)
		if r == same && !isTree(s.Path) {
			return i, true
		}
		if r != inside {
			continue
		}
		key := relKey(p, s.Path)
		if key == "" {
			continue
		}
		if g := globPart(s.Path); g != "" {
			pat, err := pathglob.Compile("/" + g)
			if err != nil || !pat.Match(key) {
				continue
			}
		}
		f, err := pathglob.NewFilter(s.Include, s.Exclude)
		if err == nil && !f.Match(key) {
			continue
		}
		return i, true
	}
	return 0, false
}

// relKey is the key of p below the static part of source src.
func relKey(p, src string) string {
	if strings.HasPrefix(p, "s3://") {
		x := strings.TrimPrefix(p, "s3://")
		y := strings.TrimSuffix(staticPart(strings.TrimPrefix(src, "s3://")), "/")
		return strings.TrimPrefix(strings.TrimPrefix(x, y), "/")
	}
	x := path.Clean(filepath.ToSlash(p))
	y := path.Clean(filepath.ToSlash(staticPart(src)))
	if y == "." {
		return x
	}
	return strings.TrimPrefix(x, y+"/")
}
