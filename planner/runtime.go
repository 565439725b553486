package planner

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/job"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// Options configures Prepare (see job.Options).
type Options = job.Options

// SetupError is a job that cannot start for a reason a retry will not
// fix (see job.SetupError).
type SetupError = job.SetupError

// Runtime is a job made ready to plan and apply: the job runtime (key
// groups, materials managers, storage; package job builds it) with the
// job it was built from and what the planner keeps about encjob's own
// files. Planner and executor share it.
type Runtime struct {
	*job.Runtime
	Job *spec.Job

	// RenewDataKey, when set, says that a message whose header already
	// shows the target state must still be re-encrypted in full: its
	// recorded write kept an older data key (a rewrap), and the job
	// requires a full re-encryption (reencrypt.require: full; the
	// policy sets it from the metadata log, which the header cannot
	// replace). Read while planning only.
	RenewDataKey func(*crypto.Header) bool

	guard    *guard               // encjob's own files and directories (guard.go)
	mu       sync.Mutex           // guards matchers
	matchers map[int]*listMatcher // per source, under mu (overlap.go)
}

// Prepare builds the runtime of a validated job (job.Prepare). Overlaps
// of sources and outputs, and encjob's own files, are checked before a key
// is generated or anything is opened.
func Prepare(ctx context.Context, j *spec.Job, o Options) (*Runtime, error) {
	rt := &Runtime{Job: j}
	o.BeforeOpen = func(ctx context.Context, jr *job.Runtime) error {
		rt.Runtime = jr
		rt.buildGuard(jr.Locations)
		return rt.checkOverlap(ctx, jr.Locations)
	}
	jr, err := job.Prepare(ctx, j, o)
	if err != nil {
		return nil, err
	}
	rt.Runtime = jr
	if err := rt.recoverInPlaceRoots(ctx); err != nil {
		return nil, err
	}
	return rt, nil
}

// recoverInPlaceRoots settles the header rewrites a crashed in-place
// rewrap left in the local trees this in-place job reads
// (sources.RecoverHeaderRewrites), before any header is read: a header
// torn by a crash must not be planned from (it would read as no
// message). The roots are those items are committed under (sourceRoot):
// a directory source's path, a single file's directory.
func (rt *Runtime) recoverInPlaceRoots(ctx context.Context) error {
	if !rt.Job.Output.InPlace {
		return nil
	}
	for _, loc := range rt.Locations {
		if loc.Kind != sources.Local {
			continue
		}
		for _, root := range []string{loc.Path, filepath.Dir(loc.Path)} {
			done, err := sources.RecoverHeaderRewrites(ctx, root)
			if err != nil {
				return fmt.Errorf("recovering header rewrites in %s: %w", root, err)
			}
			for _, d := range done {
				rt.Notes = append(rt.Notes, "recovered "+root+": "+d)
			}
		}
	}
	return nil
}

// resolve makes a local path relative to the base dir.
func (rt *Runtime) resolve(p string) string { return rt.Storage.Resolve(p) }

// Destination returns the destination an item is written to.
func (rt *Runtime) Destination(ctx context.Context, it *Item) (sources.Destination, error) {
	return rt.Storage.Destination(ctx, it.OutRoot)
}

// outputFor computes where an item goes: the output display string (root
// joined with key) and the key under that root.
func (rt *Runtime) outputFor(srcIndex int, it sources.Item) (output, root, key string) {
	job := rt.Job
	loc := rt.Locations[srcIndex]
	out := job.Output
	join := func(root, key string) string {
		if strings.HasPrefix(root, "s3://") {
			return strings.TrimSuffix(root, "/") + "/" + key
		}
		return path.Join(filepath.ToSlash(root), key)
	}
	switch {
	case out.Stdout:
		return "<stdout>", "-", it.Key
	case out.InPlace:
		root := sourceRoot(loc, it)
		return join(root, it.Key), root, it.Key
	}
	dst := rt.resolve(out.Path)
	if dst == "-" {
		return "<stdout>", "-", it.Key
	}
	if it.IsSingle && !isDirLike(dst) {
		// One input, one named output file: the name is used as it is.
		dir, base := splitLast(dst)
		return join(dir, base), dir, base
	}
	name := out.Name(it.Key)
	return join(dst, name), dst, name
}

// sourceRoot is the directory (or prefix) the item's key is relative to.
func sourceRoot(loc sources.Location, it sources.Item) string {
	switch loc.Kind {
	case sources.S3:
		k := loc.Key
		if it.IsSingle {
			k, _ = splitLast(k)
			if k == "." {
				k = ""
			}
		}
		return "s3://" + loc.Bucket + "/" + strings.TrimSuffix(k, "/")
	default:
		if it.IsSingle {
			return filepath.Dir(loc.Path)
		}
		return loc.Path
	}
}

func isDirLike(p string) bool {
	if strings.HasSuffix(p, "/") {
		return true
	}
	if strings.HasPrefix(p, "s3://") {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func splitLast(p string) (dir, base string) {
	if strings.HasPrefix(p, "s3://") {
		i := strings.LastIndex(p, "/")
		return p[:i], p[i+1:]
	}
	return filepath.Dir(p), filepath.Base(p)
}

// readBackHeader reads the header of an item's existing output.
func (rt *Runtime) readBackHeader(ctx context.Context, it *Item) (*crypto.Header, error) {
	src, err := rt.Storage.OpenRoot(ctx, it.OutRoot)
	if err != nil {
		return nil, err
	}
	return readHeader(ctx, src, it.OutKey, rt.Job.Output.Encoding, rt.Job.MaxEncryptedDataKeys)
}
