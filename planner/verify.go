package planner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/sources"
)

// PlanError is a plan refused by VerifyPlan: one item is not what the job
// would produce. Nothing has been written when it is returned.
type PlanError struct {
	Index int    // the item's index in Plan.Items (-1: the plan as a whole)
	Input string // the item's input, as the plan has it
	Field string // the JSON field at fault ("out_root", "action", ...)
	Cause string
	// Stale: the plan was right when made, the world changed since (a
	// source changed); planning again fixes it. Otherwise the plan was
	// edited, is errored or belongs to another job.
	Stale bool
}

func (e *PlanError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("plan: %s: %s", e.Field, e.Cause)
	}
	in := e.Input
	if in == "" {
		in = "?"
	}
	return fmt.Sprintf("plan item %d (%s): %s: %s", e.Index, in, e.Field, e.Cause)
}

// VerifyPlan checks, before anything is written, that every item of p is
// one the job (p's, run by rt) would plan from its sources as they are
// now: the source index exists; the key is a clean relative key; a
// changing item's action is the job's operation; and, for a plan not
// built by rt in this process (a saved plan, or one made by hand), that
// the item is listed by its source right now (Stat: it exists, is a
// regular file or object, is reached without an unfollowed symlink, and
// matches the source's glob and filters) with the fingerprint the plan
// recorded, that its input, output, out_root and out_key are exactly the
// ones the job derives from the source and the key, that it is none of
// encjob's own files, and that no two items are the same file. Mode,
// size, content type and metadata of such items are refreshed from the
// Stat, so a plan file cannot choose them either.
//
// The error is a *PlanError naming the item and the field. executor.Apply
// calls VerifyPlan first; it never panics on any plan.
func VerifyPlan(ctx context.Context, rt *Runtime, p *Plan) error {
	if p == nil {
		return &PlanError{Index: -1, Field: "plan", Cause: "no plan"}
	}
	trusted := p.builtBy == rt
	if !trusted {
		if err := rt.checkPlanJob(p); err != nil {
			return err
		}
	}
	var live, recorded []int // changing items to check live; others with a fingerprint
	outputs := map[string]int{}
	for i := range p.Items {
		changes, err := rt.checkItem(i, &p.Items[i], outputs)
		switch {
		case err != nil:
			return err
		case changes:
			live = append(live, i)
		case p.Items[i].Fingerprint != "":
			// Written nowhere, only recorded; but a saved plan's record
			// of it must still be true.
			recorded = append(recorded, i)
		}
	}
	if trusted {
		return nil
	}
	if err := rt.checkSources(ctx, p, live, recorded); err != nil {
		return err
	}
	p.builtBy = rt // verified: a second call (executor.Apply's) is cheap
	return nil
}

// checkItem checks what one item says without reading anything: its
// source index, action, apply fields, key, fingerprint and a unique
// output. It reports whether the item changes anything.
func (rt *Runtime) checkItem(i int, it *Item, outputs map[string]int) (bool, error) {
	job := rt.Job
	op := Action(job.Operation)
	bad := func(field, format string, a ...any) error {
		return &PlanError{Index: i, Input: it.Input, Field: field, Cause: fmt.Sprintf(format, a...)}
	}
	if it.SourceIndex < 0 || it.SourceIndex >= len(rt.Sources) || it.SourceIndex >= len(job.Sources) {
		return false, bad("source", "index %d out of range: the job has %d sources", it.SourceIndex, len(job.Sources))
	}
	switch it.Action {
	case Encrypt, Decrypt, Reencrypt, Rewrap:
		want := op
		if op == Reencrypt {
			want = rt.reencryptAction(it.SourceIndex, it.Suite) // as rewrapAction plans it
		}
		if it.Action != want {
			return false, bad("action", "%q, but the job (operation %s) would %s this item", it.Action, op, want)
		}
	case Unchanged, Skip, Conflict, Error:
		return false, nil
	default:
		return false, bad("action", "unknown action %q", it.Action)
	}
	if err := rt.checkApplyFields(it); err != nil {
		return false, bad(err.field, "%s", err.cause)
	}
	stdin := rt.Locations[it.SourceIndex].Kind == sources.Stdio
	if stdin {
		if it.Key != sources.StdinKey {
			return false, bad("key", "%q: standard input has the one item %q", it.Key, sources.StdinKey)
		}
	} else if err := sources.CheckKey(it.Key); err != nil {
		return false, bad("key", "%v", err)
	}
	if it.Fingerprint == "" && !stdin {
		return false, bad("fingerprint", "missing: without it the source cannot be checked for changes (or replaced in place safely)")
	}
	if prev, dup := outputs[it.Output]; dup && it.Output != "<stdout>" {
		return false, bad("output", "%s is also the output of item %d", it.Output, prev)
	}
	outputs[it.Output] = i
	return true, nil
}

// checkSources checks a plan not built by rt against its sources as they
// are now: every changing item (verifyLive), every other item's version
// (verifyRecorded), and what only the whole plan shows (the same checks
// the planner makes). The item stats run in parallel; the first refusal
// in plan order is the one reported.
func (rt *Runtime) checkSources(ctx context.Context, p *Plan, live, recorded []int) error {
	singles := map[int]bool{}
	for i, l := range rt.Locations {
		if l.Kind == sources.S3 {
			singles[i] = !l.IsPrefix() && rt.Storage.S3ObjectExists(ctx, l.Bucket, l.Key)
		}
	}
	gp := rt.newGuardPass()
	errs := make([]error, len(p.Items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, i := range live {
		g.Go(func() error {
			errs[i] = rt.verifyLive(gctx, gp, i, &p.Items[i], singles)
			return nil
		})
	}
	for _, i := range recorded {
		g.Go(func() error {
			errs[i] = rt.verifyRecorded(gctx, i, &p.Items[i])
			return nil
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	check := append([]Item(nil), p.Items...)
	gp.finish(check)
	for i := range check {
		if check[i].Action != p.Items[i].Action {
			return &PlanError{Index: i, Input: p.Items[i].Input, Field: "output", Cause: check[i].Reason}
		}
	}
	return nil
}

// verifyLive checks item i against its source as it is now and as the job
// derives it; it refreshes what the plan file must not choose.
func (rt *Runtime) verifyLive(ctx context.Context, gp *guardPass, i int, it *Item, singles map[int]bool) error {
	bad := func(field, format string, a ...any) error {
		return &PlanError{Index: i, Input: it.Input, Field: field, Cause: fmt.Sprintf(format, a...)}
	}
	loc := rt.Locations[it.SourceIndex]
	stdin := loc.Kind == sources.Stdio
	si, err := rt.liveItem(ctx, it.SourceIndex, it.Key, singles)
	if err != nil {
		return bad("key", "%v", err)
	}
	if !stdin && si.Print != it.Fingerprint {
		pe := bad("fingerprint", "stale: the source changed since planning (or the fingerprint was edited)").(*PlanError)
		pe.Stale = true
		return pe
	}
	if want := displayInput(loc, si); it.Input != want {
		return bad("input", "%q, but the source names this item %q", it.Input, want)
	}
	wantOut, wantRoot, wantKey := rt.outputFor(it.SourceIndex, si)
	switch {
	case it.OutRoot != wantRoot:
		return bad("out_root", "%q, but the job writes this item under %q", it.OutRoot, wantRoot)
	case it.OutKey != wantKey:
		return bad("out_key", "%q, but the job names this item's output %q", it.OutKey, wantKey)
	case it.Output != wantOut:
		return bad("output", "%q, but the job writes this item to %q", it.Output, wantOut)
	}
	if v := gp.classify(it.SourceIndex, si); v.reason != "" {
		return bad("key", "%s is %s; it is never an item", it.Input, v.reason)
	}
	if !stdin {
		it.Size, it.Mode = si.Size, uint32(si.Mode)
		if loc.Kind == sources.S3 {
			it.ContentType, it.Metadata = si.ContentType, si.Metadata
		}
	}
	return nil
}

// liveItem stats the item key of source src as a listing would report it
// now; an error says why the source would not list it as an item.
func (rt *Runtime) liveItem(ctx context.Context, src int, key string, singles map[int]bool) (sources.Item, error) {
	loc := rt.Locations[src]
	var si sources.Item
	err := retryTransient(ctx, func() (err error) {
		si, err = rt.Sources[src].Stat(ctx, key)
		return err
	})
	switch {
	case errors.Is(err, sources.ErrNotFound):
		return si, fmt.Errorf("%q: the source lists no such item", key)
	case err != nil:
		return si, err
	case si.Err != nil:
		return si, si.Err
	case si.Skipped != "":
		return si, fmt.Errorf("%q is not an item: %s", key, si.Skipped)
	}
	si.Key = key
	switch loc.Kind {
	case sources.Stdio:
		si.IsSingle = true
		return si, nil
	case sources.S3:
		si.IsSingle = singles[src] && key == baseName(loc.Key)
	case sources.Local:
		if si.IsSingle {
			return si, nil
		}
		// The walk does not enter symlinked directories unless asked to.
		if !rt.Job.Sources[src].FollowSymlinks {
			segs := strings.Split(key, "/")
			dir := loc.Path
			for _, s := range segs[:len(segs)-1] {
				dir = filepath.Join(dir, s)
				fi, err := os.Lstat(dir)
				if err != nil {
					return si, err
				}
				if fi.Mode()&fs.ModeSymlink != 0 {
					return si, fmt.Errorf("%q is reached through the symlink %s, which the source does not follow", key, dir)
				}
			}
		}
	}
	if !si.IsSingle && !rt.wouldList(src, loc, key) {
		return si, fmt.Errorf("%q is not listed by the source: its glob or include/exclude rules leave it out", key)
	}
	return si, nil
}

func baseName(k string) string {
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// fieldError is a plan item field that differs from what the job plans.
type fieldError struct{ field, cause string }

// checkApplyFields checks how a changing item says apply processes it
// against the job: the settings applySettings derives, and the target
// TargetFor derives (for a re-encryption, the key group and the context
// edit; the rest follows the source header, which apply checks against
// the authenticated header before writing).
func (rt *Runtime) checkApplyFields(it *Item) *fieldError {
	want := *it
	rt.applySettings(&want)
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"format", it.Format, want.Format}, {"input_encoding", it.InputEncoding, want.InputEncoding},
		{"output_encoding", it.OutputEncoding, want.OutputEncoding}, {"in_place", it.InPlace, want.InPlace},
		{"overwrite", it.Overwrite, want.Overwrite}, {"verify", it.Verify, want.Verify}, {"header_in_place", it.HeaderInPlace, want.HeaderInPlace},
		{"decrypt_key_group", it.DecryptKeyGroup, want.DecryptKeyGroup},
	} {
		if c.got != c.want {
			return &fieldError{c.field, fmt.Sprintf("%v, but the job plans %v", c.got, c.want)}
		}
	}
	tgt := rt.TargetFor(nil)
	switch {
	case tgt == nil && it.Target != nil:
		return &fieldError{"target", "a decryption writes no message"}
	case tgt == nil:
		return nil
	case it.Target == nil:
		return &fieldError{"target", "missing: the item does not say what it writes"}
	case it.Action == Encrypt && !it.Target.Equal(tgt):
		return &fieldError{"target", "not the key group, context, suite and frame length the job encrypts with"}
	case it.Target.KeyGroup != tgt.KeyGroup:
		return &fieldError{"target", fmt.Sprintf("key group %q, but the job writes under %q", it.Target.KeyGroup, tgt.KeyGroup)}
	case !it.Target.Edit.equal(tgt.Edit):
		return &fieldError{"target", "context_edit is not the job's (reencrypt.remove, reencrypt.add, encrypt.context)"}
	}
	return nil
}

// checkPlanJob refuses, before any item is looked at, a plan that is not
// this runtime's job as planned: its job edited (the recorded digest no
// longer matches), another job, another base directory, or a plan with
// errored items (an item the planner could not decide is not applied
// half: fix it and plan again).
func (rt *Runtime) checkPlanJob(p *Plan) error {
	whole := func(field, format string, a ...any) error {
		return &PlanError{Index: -1, Field: field, Cause: fmt.Sprintf(format, a...)}
	}
	if p.Job == nil {
		return whole("job", "missing")
	}
	d := p.Job.Digest()
	switch {
	case d != p.SpecDigest:
		return whole("spec_digest", "the plan's job does not match its recorded spec digest (the plan file was edited)")
	case d != rt.Job.Digest():
		return whole("job", "the plan was made for another job (spec digest %s, this job's %s)", short(d), short(rt.Job.Digest()))
	case p.BaseDir != rt.BaseDir:
		return whole("base_dir", "%s, but this job resolves its paths against %s", p.BaseDir, rt.BaseDir)
	}
	var errored []string
	for i := range p.Items {
		if it := &p.Items[i]; it.Action == Error {
			errored = append(errored, it.Input+": "+it.Reason)
		}
	}
	if len(errored) > 0 {
		return whole("items", "%d errored items (fix them and plan again); first: %s", len(errored), errored[0])
	}
	return nil
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// verifyRecorded checks that a non-changing item of a saved plan is still
// the version the plan decided on: an item planned unchanged, skipped or
// a conflict may need work once its source changed.
func (rt *Runtime) verifyRecorded(ctx context.Context, i int, it *Item) error {
	if it.SourceIndex < 0 || it.SourceIndex >= len(rt.Sources) {
		return nil // refused above for changing items; nothing is done with this one
	}
	var si sources.Item
	err := retryTransient(ctx, func() (err error) {
		si, err = rt.Sources[it.SourceIndex].Stat(ctx, it.Key)
		return err
	})
	switch {
	case err != nil:
		return &PlanError{Index: i, Input: it.Input, Field: "fingerprint", Cause: "stale: the source cannot be stat'ed now: " + err.Error(), Stale: true}
	case !samePrint(it.Fingerprint, si.Print) && si.Print != it.Fingerprint:
		return &PlanError{Index: i, Input: it.Input, Field: "fingerprint", Cause: "stale: the source changed since planning", Stale: true}
	}
	return nil
}
