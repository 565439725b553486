package planner

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/internal/job"
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
func OpenSources(ctx context.Context, j *spec.Job, o Options) (*Runtime, error) {
	jr, err := job.OpenSources(ctx, j, o)
	if err != nil {
		return nil, err
	}
	return &Runtime{Runtime: jr, Job: j}, nil
}

// Identity is the identity (Item.Identity) that the item si, listed from
// rt.Sources[src], has in every plan of this job: what shards are assigned
// by. It reads nothing. It panics if src is out of range.
func (rt *Runtime) Identity(src int, si sources.Item) string {
	return displayInput(rt.Locations[src], si)
}

// IsStdin reports whether rt.Sources[src] is standard input (which cannot
// be listed ahead of a run).
func (rt *Runtime) IsStdin(src int) bool { return rt.Locations[src].Kind == sources.Stdio }

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
	g, gctx := errgroup.WithContext(withOutputIndex(ctx, len(items)))
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
	if si.Err != nil || si.Skipped != "" || rt.Locations[l.Source].Kind == sources.Stdio {
		return gp.decide(ctx, l.Source, si, completed)
	}
	cur, err := rt.Sources[l.Source].Stat(ctx, si.Key)
	if err != nil {
		it := Item{SourceIndex: l.Source, Key: si.Key, Size: si.Size, Fingerprint: si.Print, Mode: uint32(si.Mode), Rule: -1}
		it.Input = displayInput(rt.Locations[l.Source], si)
		if errors.Is(err, sources.ErrNotFound) {
			it.Action, it.Reason = Skip, Vanished
		} else {
			it.Action, it.Reason = Error, "source: "+err.Error() // the error names the operation and path
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
