package planner

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/sources"
)

// Listed is one item already listed from rt.Sources[Source]: the policy
// package lists a policy's sources once, decides which items a rule owns,
// and hands only those to BuildItems.
type Listed struct {
	Source int
	Item   sources.Item
}

// BuildItems is Build for items the caller already listed: each is decided
// exactly as Build decides a listed item (header read, in-place or
// destination checks), in the order given. Items naming a source index
// outside rt.Sources are planned as errors. It makes no KMS call.
func BuildItems(ctx context.Context, rt *Runtime, items []Listed, o BuildOptions) (*Plan, error) {
	p := &Plan{FormatVersion: FormatVersion, Name: o.Name, Created: time.Now().UTC().Truncate(time.Second),
		SpecDigest: rt.Job.Digest(), Job: rt.Job, BaseDir: rt.BaseDir}
	p.Items = make([]Item, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, o.Concurrency))
	if o.Concurrency <= 0 {
		g.SetLimit(16)
	}
	for i, l := range items {
		if l.Source < 0 || l.Source >= len(rt.Sources) {
			p.Items[i] = Item{Action: Error, Reason: "no such source", SourceIndex: l.Source, Key: l.Item.Key, Input: l.Item.Key, Rule: -1}
			continue
		}
		g.Go(func() error {
			p.Items[i] = rt.decide(gctx, l.Source, l.Item)
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
	markDuplicateOutputs(p.Items)
	return p, nil
}
