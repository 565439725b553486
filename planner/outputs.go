package planner

import (
	"context"
	"errors"
	"sync"

	"github.com/encjob/encjob/sources"
)

// outputIndex is what one plan build learned of its destinations from
// listings (sources.OutputLister, i.e. S3): for each output root, the
// keys that exist. With it, an item whose output does not exist costs no
// request at all, instead of a HEAD per item; an existing one still has
// its provenance read. A listing is a snapshot taken while planning, as a
// Stat would be: what appears after it is refused by the conditional write
// at apply.
//
// The index lives in the build's context (withOutputIndex): it belongs to
// that build only, never to the runtime - a later build or a Redecide must
// see the destination as it is then, not as an earlier listing saw it.
type outputIndex struct {
	limit int // keys listed at most per root; past it, the root falls back to Stat
	mu    sync.Mutex
	roots map[string]*listedRoot
}

type listedRoot struct {
	once sync.Once
	keys map[string]struct{}
	ok   bool // the listing completed within the limit
}

type outputIndexKey struct{}

// errTooMany stops a listing that would cost more than the Stats it saves.
var errTooMany = errors.New("more outputs than the plan has items")

// withOutputIndex returns ctx carrying a fresh index for a build of items
// items. A destination is listed only while its keys number at most ten
// per item (and at least one page): a listing of 1,000 keys costs about
// what a few HEADs cost, so even a destination ten times larger than the
// plan is cheaper listed than checked key by key; a larger one is
// checked key by key.
func withOutputIndex(ctx context.Context, items int) context.Context {
	return context.WithValue(ctx, outputIndexKey{}, &outputIndex{limit: max(1000, 10*items), roots: map[string]*listedRoot{}})
}

// listedOutput reports whether the output at it.OutKey exists according
// to the build's listing of dst, and whether the listing can tell (no
// index, a destination that cannot list, a listing that failed or hit
// the limit, or a key the destination would refuse: the caller Stats).
func listedOutput(ctx context.Context, it *Item, dst sources.Destination) (exists, known bool) {
	x, _ := ctx.Value(outputIndexKey{}).(*outputIndex)
	lister, can := dst.(sources.OutputLister)
	if x == nil || !can || sources.CheckKey(it.OutKey) != nil {
		return false, false
	}
	x.mu.Lock()
	r := x.roots[it.OutRoot]
	if r == nil {
		r = &listedRoot{}
		x.roots[it.OutRoot] = r
	}
	x.mu.Unlock()
	r.once.Do(func() {
		keys := map[string]struct{}{}
		err := retryTransient(ctx, func() error {
			clear(keys)
			return lister.ListOutputs(ctx, func(o sources.Item) error {
				if len(keys) >= x.limit {
					return errTooMany
				}
				keys[o.Key] = struct{}{}
				return nil
			})
		})
		r.keys, r.ok = keys, err == nil
	})
	if !r.ok {
		return false, false
	}
	_, exists = r.keys[it.OutKey]
	return exists, true
}
