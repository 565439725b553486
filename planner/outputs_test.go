package planner

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/encjob/encjob/sources"
)

// listingDest is a destination that lists a fixed set of keys (or fails
// to) and counts its listings.
type listingDest struct {
	sources.Destination
	keys  []string
	err   error
	lists int
}

func (d *listingDest) ListOutputs(ctx context.Context, fn func(sources.Item) error) error {
	d.lists++
	if d.err != nil {
		return d.err
	}
	for _, k := range d.keys {
		if err := fn(sources.Item{Key: k}); err != nil {
			return err
		}
	}
	return nil
}

// The build's index answers from one listing per root; it cannot tell -
// and the planner Stats - without an index, for a destination that
// cannot list, when the listing fails or outgrows the plan, and for a key
// the destination would refuse.
func TestListedOutput(t *testing.T) {
	ctx := withOutputIndex(context.Background(), 10)
	d := &listingDest{keys: []string{"a", "b/c"}}
	for _, tc := range []struct {
		key           string
		exists, known bool
	}{{"a", true, true}, {"b/c", true, true}, {"b", false, true}, {"z", false, true}, {"../x", false, false}} {
		exists, known := listedOutput(ctx, &Item{OutRoot: "s3://b/out/", OutKey: tc.key}, d)
		if exists != tc.exists || known != tc.known {
			t.Errorf("%q: exists %v known %v, want %v %v", tc.key, exists, known, tc.exists, tc.known)
		}
	}
	if d.lists != 1 {
		t.Errorf("%d listings of one root, want 1", d.lists)
	}
	if _, known := listedOutput(context.Background(), &Item{OutRoot: "r", OutKey: "a"}, d); known {
		t.Error("known without an index")
	}
	if _, known := listedOutput(ctx, &Item{OutRoot: "r2", OutKey: "a"}, struct{ sources.Destination }{d}); known {
		t.Error("known for a destination that cannot list")
	}
	failing := &listingDest{err: errors.New("access denied")}
	if _, known := listedOutput(ctx, &Item{OutRoot: "r3", OutKey: "a"}, failing); known {
		t.Error("known after a failed listing")
	}
	big := &listingDest{}
	for i := range 1001 { // the limit for 10 items is max(1000, 100) keys
		big.keys = append(big.keys, fmt.Sprintf("k%04d", i))
	}
	if _, known := listedOutput(ctx, &Item{OutRoot: "r4", OutKey: "k0000"}, big); known {
		t.Error("known for a destination larger than the limit")
	}
	if _, known := listedOutput(ctx, &Item{OutRoot: "r4", OutKey: "k0001"}, big); known || big.lists != 1 {
		t.Errorf("the root over the limit: known %v, %d listings, want Stat and one listing", known, big.lists)
	}
}
