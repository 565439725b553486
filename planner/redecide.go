package planner

import (
	"context"

	"github.com/encjob/encjob/sources"
)

// Redecide plans it again from the current state of its source, exactly
// as a new Build would plan it now. The executor calls it when an attempt
// found the source changed (sources.ErrSourceChanged): the next attempt
// must read the new version, and the new version may need another action
// (an in-place file someone encrypted meanwhile is now unchanged, a
// removed one a vanished skip). The item keeps its source, key, input and
// policy rule; it makes no KMS call.
func (rt *Runtime) Redecide(ctx context.Context, it *Item) Item {
	if it.SourceIndex < 0 || it.SourceIndex >= len(rt.Sources) {
		n := *it
		n.Action, n.Reason = Error, "no such source"
		return n
	}
	loc := rt.Locations[it.SourceIndex]
	si := sources.Item{Key: it.Key}
	// The listing's IsSingle is not in the item; the input name tells.
	single := sources.Item{Key: it.Key, IsSingle: true}
	si.IsSingle = displayInput(loc, single) == it.Input && displayInput(loc, si) != it.Input
	n, err := rt.decideLive(ctx, rt.newGuardPass(), Listed{Source: it.SourceIndex, Item: si}, nil)
	if err != nil {
		n.Action, n.Reason = Error, err.Error()
	}
	n.Rule = it.Rule
	return n
}
