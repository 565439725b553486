package planner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// This file keeps encjob's own files out of the work and keeps outputs
// off sources. Both are decided by file identity (device and inode), never
// by comparing path strings: "./x", "$PWD//x", "a/../x", a symlinked
// directory, a bind mount and a hard link all name the same file, and
// only the kernel's answer says so.
//
// The rules (spec/REFERENCE.md, "Overlapping paths and encjob's own
// files"):
//   - encjob's own files - key files of every key group (generated or not,
//     existing or not yet), spec files, the metadata log, a saved plan -
//     are never items. A job that does not replace its sources plans them
//     as Skip with the reason; an in-place job refuses to start (a
//     SetupError) when one of them would be an item.
//   - the job's own outputs are never items: every file under a local
//     output directory, or an S3 output prefix, that lies inside a source
//     tree is a Skip ("encjob's own output"), and so is encjob's state
//     directory of an output root or in-place tree.
//   - only output.inPlace replaces a source: an output that is the same
//     file or tree as a source, or an output directory that contains a
//     source tree, is refused (SetupError); an item whose output is the
//     same file as a source item, or as one of encjob's own files, is a
//     Conflict.

// stateDirName is the directory encjob keeps in output roots and in-place
// trees (lock, journals).
const stateDirName = sources.StateDir

// fileID is a file's identity.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true
}

// statID returns the identity of the file p names (symlinks followed).
func statID(p string) (fileID, fs.FileInfo, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return fileID{}, nil, err
	}
	id, ok := idOf(fi)
	if !ok {
		return fileID{}, nil, fmt.Errorf("%s: no device and inode", p)
	}
	return id, fi, nil
}

// place names a local path that may not exist yet by identity: the id of
// the deepest existing ancestor (or of the file itself, rest "") and the
// clean slash-separated rest below it. Two spellings of one path have
// the same place.
type place struct {
	id   fileID
	rest string
}

// placeOf finds the place of p, and the absolute path of p with every
// symlink of its existing part resolved (for messages and containment).
func placeOf(p string) (place, string, error) {
	raw := p
	if !filepath.IsAbs(raw) {
		wd, err := os.Getwd()
		if err != nil {
			return place{}, "", err
		}
		raw = wd + string(filepath.Separator) + raw // not Clean: "link/.." is the kernel's to resolve
	}
	var rest []string
	cur := raw
	for {
		if id, _, err := statID(cur); err == nil {
			real, rerr := filepath.EvalSymlinks(cur)
			if rerr != nil {
				real = filepath.Clean(cur)
			}
			r := ""
			if len(rest) > 0 {
				r = path.Clean(strings.Join(rest, "/"))
				if r == "." {
					r = ""
				}
			}
			if r != "" && strings.HasPrefix(r, "..") {
				// "missing/../.." climbs above the existing part: name the
				// place lexically from the resolved parent instead.
				return placeOf(filepath.Join(real, filepath.FromSlash(r)))
			}
			return place{id: id, rest: r}, filepath.Join(real, filepath.FromSlash(r)), nil
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return place{}, "", err
		}
		i := strings.LastIndexByte(strings.TrimRight(cur, "/"), '/')
		if i < 0 {
			return place{}, "", fmt.Errorf("%s: no existing ancestor", p)
		}
		name := strings.TrimRight(cur, "/")[i+1:]
		rest = append([]string{name}, rest...)
		cur = cur[:i]
		if cur == "" {
			cur = "/"
		}
	}
}

// ancestorIDs returns the identities of the directories containing the
// resolved absolute path real, nearest first, each with the path of real
// relative to it.
func ancestorIDs(real string) (ids []fileID, rels []string) {
	dir := real
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return ids, rels
		}
		dir = parent
		id, _, err := statID(dir)
		if err != nil {
			continue
		}
		rel, err := filepath.Rel(dir, real)
		if err != nil {
			continue
		}
		ids = append(ids, id)
		rels = append(rels, filepath.ToSlash(rel))
	}
}

// ownFile is one of encjob's own files.
type ownFile struct {
	what string // "key file of key group \"dev\"", "metadata log", ...
	path string // as resolved, for messages
	// refuse: an in-place job refuses to start when this file would be
	// an item (replacing it loses data); outputs are merely skipped.
	refuse bool
}

// ownDir is a directory all of whose files are encjob's.
type ownDir struct {
	what string
	path string
}

// guard is the protected set of a runtime: built once in Prepare, looked
// up by identity for every item.
type guard struct {
	files []ownFile
	dirs  []ownDir
	// S3 locations: exact object URLs and prefixes ("s3://b/p/") that are
	// encjob's own.
	s3Files map[string]string
	s3Dirs  []ownDir
}

// ownFiles names the files the guard protects, as a caller sees them.
func ownFiles(o *Options) []ownFile {
	var out []ownFile
	for _, f := range o.SpecFiles {
		if f != "" && f != "-" {
			out = append(out, ownFile{what: "spec file", path: f, refuse: true})
		}
	}
	if o.PlanFile != "" && o.PlanFile != "-" {
		out = append(out, ownFile{what: "saved plan", path: o.PlanFile, refuse: true})
	}
	if o.MetadataLog != "" && o.MetadataLog != "-" {
		out = append(out, ownFile{what: "metadata log", path: o.MetadataLog, refuse: true})
	}
	return out
}

// buildGuard collects encjob's own files and directories for the job.
func (rt *Runtime) buildGuard(locs []sources.Location) {
	g := &guard{s3Files: map[string]string{}}
	job := rt.Job
	add := func(f ownFile) {
		if strings.HasPrefix(f.path, "s3://") {
			g.s3Files[f.path] = f.what
			return
		}
		g.files = append(g.files, f)
	}
	for _, name := range sortedGroupNames(job.KeyGroups) {
		for _, s := range job.KeyGroups[name].Singles() {
			if s.KeyFile != "" {
				// The key file of every group, used by this operation or
				// not, generated already or not yet.
				add(ownFile{what: fmt.Sprintf("key file (key group %s)", name), path: rt.resolve(s.KeyFile), refuse: true})
			}
		}
	}
	if m := job.Metadata.Output; m != "" && m != "-" {
		add(ownFile{what: "metadata log", path: rt.resolve(m), refuse: true})
	}
	for _, f := range ownFiles(&rt.Options) {
		add(f)
	}
	out := job.Output
	switch {
	case out.InPlace:
		for _, l := range locs {
			if l.Kind == sources.Local {
				g.dirs = append(g.dirs, ownDir{what: "encjob state directory", path: filepath.Join(treeRoot(l), stateDirName)})
			}
		}
	case out.Stdout || out.Path == "" || out.Path == "-":
	case strings.HasPrefix(rt.resolve(out.Path), "s3://"):
		dst := rt.resolve(out.Path)
		loc, err := sources.Parse(dst)
		if err == nil {
			p := loc.Key
			if p != "" && !strings.HasSuffix(p, "/") {
				// Either a prefix or one named object: both are ours.
				g.s3Files["s3://"+loc.Bucket+"/"+p] = "output (output.path)"
				p += "/"
			}
			g.s3Dirs = append(g.s3Dirs, ownDir{what: "output (output.path)", path: "s3://" + loc.Bucket + "/" + p})
		}
	default:
		dst := rt.resolve(out.Path)
		if fi, err := os.Stat(dst); err == nil && !fi.IsDir() {
			add(ownFile{what: "output (output.path)", path: dst})
		} else {
			g.dirs = append(g.dirs, ownDir{what: "output (output.path)", path: dst})
			g.dirs = append(g.dirs, ownDir{what: "encjob state directory", path: filepath.Join(dst, stateDirName)})
		}
	}
	rt.guard = g
}

func sortedGroupNames(m map[string]*spec.KeyGroup) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// treeRoot is the directory a local location's keys are relative to.
func treeRoot(l sources.Location) string {
	if fi, err := os.Stat(l.Path); err == nil && !fi.IsDir() && l.Glob == "" {
		return filepath.Dir(l.Path)
	}
	return l.Path
}

// guardPass is the guard's view of the file system for one plan build or
// verification: identities are taken once at its start, so files created
// since Prepare (a metadata log, a key) count.
type guardPass struct {
	rt    *Runtime
	files map[place]*ownFile
	dirs  map[fileID]*ownDir

	mu      sync.Mutex
	dirMemo map[string]*ownDir // local directory path -> what owns it (nil: nobody)
	outMemo map[string]place   // output directory path -> its place
	sources map[fileID]string  // identity of every source item planned -> its input
	ids     map[string]fileID  // input -> identity, for finish
}

func (rt *Runtime) newGuardPass() *guardPass {
	gp := &guardPass{rt: rt, files: map[place]*ownFile{}, dirs: map[fileID]*ownDir{},
		dirMemo: map[string]*ownDir{}, outMemo: map[string]place{}, sources: map[fileID]string{}, ids: map[string]fileID{}}
	g := rt.guard
	if g == nil {
		return gp
	}
	for i := range g.files {
		f := &g.files[i]
		if pl, _, err := placeOf(f.path); err == nil {
			if _, dup := gp.files[pl]; !dup {
				gp.files[pl] = f
			}
		}
	}
	for i := range g.dirs {
		d := &g.dirs[i]
		if id, fi, err := statID(d.path); err == nil && fi.IsDir() {
			if _, dup := gp.dirs[id]; !dup {
				gp.dirs[id] = d
			}
		}
	}
	// Named temporaries that a run journal below a source tree proves to
	// be encjob's (a crashed run's, removed by the next apply's recovery,
	// or a live run's): never items. Taken now, not in Prepare, because a
	// plan may be built long after the runtime.
	seenRoot := map[string]bool{}
	for _, l := range rt.Locations {
		if l.Kind != sources.Local {
			continue
		}
		root := treeRoot(l)
		if seenRoot[root] {
			continue
		}
		seenRoot[root] = true
		tmps, _ := sources.ProvenTemporaries(root)
		for _, p := range tmps {
			f := &ownFile{what: "temporary file of an encjob run (an interrupted run's is removed by the next apply)", path: p}
			if pl, _, err := placeOf(p); err == nil {
				if _, dup := gp.files[pl]; !dup {
					gp.files[pl] = f
				}
			}
		}
	}
	return gp
}

// itemPath is the local file a listed item names.
func itemPath(loc sources.Location, si sources.Item) string {
	if si.IsSingle {
		return loc.Path
	}
	return filepath.Join(loc.Path, filepath.FromSlash(si.Key))
}

// verdict is the guard's decision on one listed item.
type verdict struct {
	reason string // "" the item is not encjob's
	refuse bool   // an in-place job must not start
	path   string // the own file, for messages
}

// classify decides whether a listed item is one of encjob's own files or
// lies in one of its directories, and records the identity of every other
// local item (for the output checks of finish).
func (gp *guardPass) classify(srcIdx int, si sources.Item) verdict {
	loc := gp.rt.Locations[srcIdx]
	switch loc.Kind {
	case sources.S3:
		return gp.classifyS3(loc, si)
	case sources.Local:
	default:
		return verdict{}
	}
	p := itemPath(loc, si)
	id, fi, err := statID(p)
	if err != nil || !fi.Mode().IsRegular() {
		return verdict{} // listing errors and skips are the listing's to report
	}
	if f := gp.files[place{id: id}]; f != nil {
		if f.what == "output (output.path)" && !gp.rt.Job.Output.InPlace {
			// The output file is this very source (another spelling,
			// a hard link): skipped as aws-encryption-cli skips it.
			return verdict{reason: SameAsSource + " (" + gp.rt.Job.Output.Path + ")", path: f.path}
		}
		return verdict{reason: "encjob's own " + f.what, refuse: f.refuse, path: f.path}
	}
	if !si.IsSingle {
		// Every directory between the source root and the item.
		segs := strings.Split(si.Key, "/")
		dir := loc.Path
		for _, s := range segs[:len(segs)-1] {
			dir = filepath.Join(dir, s)
			if d := gp.ownerOf(dir); d != nil {
				return verdict{reason: "encjob's own " + d.what, path: d.path}
			}
		}
	}
	in := displayInput(loc, si)
	gp.mu.Lock()
	if _, seen := gp.sources[id]; !seen {
		gp.sources[id] = in
	}
	gp.ids[in] = id
	gp.mu.Unlock()
	return verdict{}
}

// ownerOf says which of encjob's directories a local directory is, if any.
func (gp *guardPass) ownerOf(dir string) *ownDir {
	gp.mu.Lock()
	d, ok := gp.dirMemo[dir]
	gp.mu.Unlock()
	if ok {
		return d
	}
	if id, _, err := statID(dir); err == nil {
		d = gp.dirs[id]
	}
	gp.mu.Lock()
	gp.dirMemo[dir] = d
	gp.mu.Unlock()
	return d
}

func (gp *guardPass) classifyS3(loc sources.Location, si sources.Item) verdict {
	g := gp.rt.guard
	if g == nil {
		return verdict{}
	}
	u := displayInput(loc, si)
	if what, ok := g.s3Files[u]; ok {
		return verdict{reason: "encjob's own " + what, refuse: what != "output (output.path)", path: u}
	}
	for _, d := range g.s3Dirs {
		if strings.HasPrefix(u, d.path) {
			return verdict{reason: "encjob's own " + d.what, path: d.path}
		}
	}
	return verdict{}
}

// decide plans one listed item, unless it is encjob's own: then it is a
// Skip (the returned error is nil) or, for an in-place job asked to
// replace a key, spec, log or plan, a refusal.
func (gp *guardPass) decide(ctx context.Context, srcIdx int, si sources.Item, completed map[string]sources.Fingerprint) (Item, error) {
	if si.Err == nil && si.Skipped == "" {
		if v := gp.classify(srcIdx, si); v.reason != "" {
			it := Item{SourceIndex: srcIdx, Key: si.Key, Size: si.Size, Fingerprint: si.Print, Mode: uint32(si.Mode), Rule: -1,
				Input: displayInput(gp.rt.Locations[srcIdx], si), Action: Skip, Reason: v.reason}
			if v.refuse && gp.rt.Job.Output.InPlace {
				return it, &SetupError{Err: fmt.Errorf("%s is %s and an item of in-place source %s (spec.sources[%d]): replacing it would lose data; move it out of the tree or exclude it",
					it.Input, v.reason, gp.rt.Job.Sources[srcIdx].Path, srcIdx)}
			}
			return it, nil
		}
	}
	return gp.rt.decideItem(ctx, srcIdx, si, completed), nil
}

// finish checks what only the whole plan shows: two items that are the
// same file (one source listed twice under different spellings), and
// outputs that are the same file as a source item or as one of encjob's
// own files. Such items become Conflicts.
func (gp *guardPass) finish(items []Item) {
	job := gp.rt.Job
	// The output checks stat one path per item: in parallel, as planning
	// reads headers.
	clash := make([]string, len(items))
	if !job.Output.InPlace {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range items {
			if !items[i].Action.Changes() {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				clash[i] = gp.outputClash(&items[i])
			}()
		}
		wg.Wait()
	}
	seen := map[fileID]int{}
	for i := range items {
		it := &items[i]
		if !it.Action.Changes() || it.SourceIndex < 0 || it.SourceIndex >= len(gp.rt.Locations) {
			continue
		}
		if loc := gp.rt.Locations[it.SourceIndex]; loc.Kind == sources.Local {
			id, ok := gp.ids[it.Input]
			if !ok {
				var err error
				id, _, err = statID(itemPath(loc, sources.Item{Key: it.Key, IsSingle: it.Input == loc.Path}))
				ok = err == nil
			}
			if ok {
				if j, dup := seen[id]; dup {
					it.Action, it.Reason = Conflict, fmt.Sprintf("%s is the same file as %s (listed twice)", it.Input, items[j].Input)
					continue
				}
				seen[id] = i
			}
		}
		switch clash[i] {
		case "":
		case SameAsSource:
			it.Action, it.Reason = Skip, SameAsSource+" ("+it.Output+")"
		default:
			it.Action, it.Reason = Conflict, clash[i]
		}
	}
}

// outputClash says why an item's output must not be written: it is the
// same file as a source item or one of encjob's own files.
func (gp *guardPass) outputClash(it *Item) string {
	root := it.OutRoot
	if root == "" || root == "-" {
		return ""
	}
	if strings.HasPrefix(root, "s3://") {
		if g := gp.rt.guard; g != nil {
			if what, ok := g.s3Files[it.Output]; ok && what != "output (output.path)" {
				return fmt.Sprintf("output %s would replace encjob's own %s", it.Output, what)
			}
		}
		for _, l := range gp.rt.Locations {
			if l.Kind == sources.S3 && it.Output == l.Raw && !l.IsPrefix() {
				return fmt.Sprintf("output %s is source %s (only output.inPlace: true may replace a source)", it.Output, l.Raw)
			}
		}
		return ""
	}
	out := filepath.Join(root, filepath.FromSlash(it.OutKey))
	pl, ok := gp.outputPlace(out)
	if !ok {
		return ""
	}
	if f := gp.files[pl]; f != nil && f.what != "output (output.path)" {
		return fmt.Sprintf("output %s would replace encjob's own %s %s", it.Output, f.what, f.path)
	}
	if pl.rest == "" {
		gp.mu.Lock()
		src, clash := gp.sources[pl.id]
		own, known := gp.ids[it.Input]
		gp.mu.Unlock()
		if clash && known && own == pl.id {
			return SameAsSource
		}
		if clash {
			return fmt.Sprintf("output %s is the same file as source item %s (only output.inPlace: true may replace a source)", it.Output, src)
		}
	}
	return ""
}

// SameAsSource is the reason of an item skipped because its output is its
// own source file (same device and inode: an empty suffix into the
// source's directory, "-o .", a symlinked or hard-linked spelling), as
// aws-encryption-cli skips it. Nothing is written; the source is intact.
const SameAsSource = "source and destination are the same"

// outputPlace is the place of an output path: the file itself when it
// exists, else its directory's place (memoized) and its name.
func (gp *guardPass) outputPlace(out string) (place, bool) {
	if id, _, err := statID(out); err == nil {
		return place{id: id}, true
	}
	dir, base := filepath.Dir(out), filepath.Base(out)
	gp.mu.Lock()
	dp, ok := gp.outMemo[dir]
	gp.mu.Unlock()
	if !ok {
		var err error
		if dp, _, err = placeOf(dir); err != nil {
			return place{}, false
		}
		gp.mu.Lock()
		gp.outMemo[dir] = dp
		gp.mu.Unlock()
	}
	if dp.rest != "" {
		base = dp.rest + "/" + base
	}
	return place{id: dp.id, rest: base}, true
}
