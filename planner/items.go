package planner

import (
	"context"
	"errors"
	"fmt"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// Vanished is the Reason of a Skip item that was listed earlier (by
// `encjob partition`) and no longer exists when its shard plans it.
const Vanished = "vanished"

// OpenSources makes a runtime that only lists: the job's sources are
// opened, no key group is built and no KMS call is made. It serves
// `encjob partition` (Sources[i].List and Identity); Build, BuildItems,
// BuildListed and the executor need a runtime from Prepare.
func OpenSources(ctx context.Context, job *spec.Job, o Options) (*Runtime, error) {
	rt := &Runtime{Job: job, BaseDir: o.BaseDir, Groups: map[string]*keygroup.Group{}, opts: o,
		dests: map[string]sources.Destination{}, s3c: o.S3Client}
	for i, s := range job.Sources {
		src, loc, err := rt.openSource(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("spec.sources[%d]: %w", i, err)
		}
		rt.Sources = append(rt.Sources, src)
		rt.locs = append(rt.locs, loc)
	}
	return rt, nil
}

// Identity is the identity (Item.Identity) that the item si, listed from
// rt.Sources[src], has in every plan of this job: what shards are assigned
// by. It reads nothing. It panics if src is out of range.
func (rt *Runtime) Identity(src int, si sources.Item) string {
	return displayInput(rt.locs[src], si)
}

// IsStdin reports whether rt.Sources[src] is standard input (which cannot
// be listed ahead of a run).
func (rt *Runtime) IsStdin(src int) bool { return rt.locs[src].Kind == sources.Stdio }

// S3Client returns the S3 client of the job's s3 section (Options.S3Client
// when one was given), built on first use and shared with the sources.
func (rt *Runtime) S3Client(ctx context.Context) (*awss3.Client, error) { return rt.s3Client(ctx) }

// BuildListed plans items listed earlier, typically by `encjob partition`
// into a part file that one shard reads. Unlike BuildItems it plans each
// item against its live state: the source is Stat'ed first (one HEAD per
// S3 object); an item that no longer exists is a Skip with Reason
// Vanished, one that changed is planned as it is now, and an error other
// than not-found makes the item an Error. Items the listing recorded as
// skipped or errored are planned as Build plans them, without a Stat.
// Then each item is decided exactly as Build decides a listed one (header
// read, in-place or destination checks, o.Completed). o.Owns filters the
// result as in Build. It makes no KMS call.
func BuildListed(ctx context.Context, rt *Runtime, items []Listed, o BuildOptions) (*Plan, error) {
	p := &Plan{FormatVersion: FormatVersion, Name: o.Name, Created: time.Now().UTC().Truncate(time.Second),
		SpecDigest: rt.Job.Digest(), Job: rt.Job, BaseDir: rt.BaseDir}
	p.Items = make([]Item, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(16, o.Concurrency))
	gp := rt.newGuardPass()
	for i, l := range items {
		if l.Source < 0 || l.Source >= len(rt.Sources) {
			p.Items[i] = Item{Action: Error, Reason: "no such source", SourceIndex: l.Source, Key: l.Item.Key, Input: l.Item.Key, Rule: -1}
			continue
		}
		g.Go(func() error {
			it, err := rt.decideLive(gctx, gp, l, o.Completed)
			p.Items[i] = it
			if err != nil {
				return err
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if o.Owns != nil {
		kept := p.Items[:0]
		for _, it := range p.Items {
			if o.Owns(it.Identity()) {
				kept = append(kept, it)
			}
		}
		p.Items = kept
	}
	gp.finish(p.Items)
	markDuplicateOutputs(p.Items)
	p.builtBy = rt
	return p, nil
}

// decideLive refreshes a listed item from its source, then decides it.
func (rt *Runtime) decideLive(ctx context.Context, gp *guardPass, l Listed, completed map[string]sources.Fingerprint) (Item, error) {
	si := l.Item
	if si.Err != nil || si.Skipped != "" || rt.locs[l.Source].Kind == sources.Stdio {
		return gp.decide(ctx, l.Source, si, completed)
	}
	cur, err := rt.Sources[l.Source].Stat(ctx, si.Key)
	if err != nil {
		it := Item{SourceIndex: l.Source, Key: si.Key, Size: si.Size, Fingerprint: si.Print, Mode: uint32(si.Mode), Rule: -1}
		it.Input = displayInput(rt.locs[l.Source], si)
		if errors.Is(err, sources.ErrNotFound) {
			it.Action, it.Reason = Skip, Vanished
		} else {
			it.Action, it.Reason = Error, "stat: "+err.Error()
		}
		return it, nil
	}
	// Keep what the listing knew that Stat does not report.
	cur.Key, cur.IsSingle = si.Key, si.IsSingle
	if cur.Mode == 0 {
		cur.Mode = si.Mode
	}
	it, err := gp.decide(ctx, l.Source, cur, completed)
	rt.rewrapAction(&it) // as BuildItems does
	return it, err
}
