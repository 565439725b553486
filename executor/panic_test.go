package executor_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// panicWriter panics part-way through one output (a bug in a writer).
type panicDest struct{ sources.Destination }

func (d panicDest) Create(ctx context.Context, key string, o sources.CreateOptions) (sources.Writer, error) {
	if strings.Contains(key, "big") {
		panic("boom in " + key)
	}
	return d.Destination.Create(ctx, key, o)
}

// TestItemPanicIsItemError: a panic while processing one item becomes
// that item's *PanicError (with a stack); the other items complete.
func TestItemPanicIsItemError(t *testing.T) {
	dir := t.TempDir()
	in, enc := filepath.Join(dir, "in"), filepath.Join(dir, "enc")
	writeTree(t, in, map[string]int{"big.bin": 1 << 16, "small.txt": 1000})
	env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "k")}
	r, recs := applyWith(t, jobFor(t, env), planner.Options{WrapDestination: func(d sources.Destination) sources.Destination { return panicDest{d} }}, executor.Options{})
	var pe *executor.PanicError
	if len(r.sum.Failed) != 1 || !errors.As(r.sum.Failed[0].Err, &pe) || len(pe.Stack) == 0 {
		t.Fatalf("want one panic failure with a stack: %v", r.sum.Failed)
	}
	if done, failed := checkOutputs(t, dir, recs); done != 1 || failed != 1 {
		t.Fatalf("%d done %d failed", done, failed)
	}
}
