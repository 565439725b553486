// Package planner expands a job into a plan: one action per item, decided
// from listings and message headers only - no decryption and no KMS call -
// so that items already in the desired state cost nothing.
package planner

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// BuildOptions configures Build.
type BuildOptions struct {
	Name string
	// Owns selects the items of this shard (nil: every item).
	Owns func(identity string) bool
	// Concurrency of header reads (default 16).
	Concurrency int
	// Completed maps inputs to the fingerprint they had when an earlier
	// run completed them (from its metadata log). It is consulted only
	// for a destination that keeps no provenance records (not a
	// sources.ProvenanceReader): local and S3 destinations record, with
	// every commit, which source version an output was made from, and
	// that record - not the log, which a crash can leave behind the
	// outputs - is what makes an item unchanged and a killed run resume.
	Completed map[string]sources.Fingerprint
}

// Build lists every source and decides an action per item.
func Build(ctx context.Context, rt *Runtime, o BuildOptions) (*Plan, error) {
	var all []Listed
	for i, src := range rt.Sources {
		err := src.List(ctx, func(it sources.Item) error {
			all = append(all, Listed{Source: i, Item: it})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", src, err)
		}
	}
	return BuildItems(ctx, rt, all, o)
}

// Listed is one item already listed from rt.Sources[Source] (by Build, by
// a policy that decides which items a rule owns, or from a partitioned
// item list).
type Listed struct {
	Source int
	Item   sources.Item
}

// BuildItems decides the items the caller already listed, in the order
// given: only this shard's items (o.Owns, decided before any header is
// read), with header reads in parallel. It makes no KMS call.
func BuildItems(ctx context.Context, rt *Runtime, items []Listed, o BuildOptions) (*Plan, error) {
	p := &Plan{FormatVersion: FormatVersion, Name: o.Name, Created: time.Now().UTC().Truncate(time.Second),
		SpecDigest: rt.Job.Digest(), Job: rt.Job, BaseDir: rt.BaseDir}
	if o.Owns != nil {
		kept := items[:0:0]
		for _, l := range items {
			if l.Source >= 0 && l.Source < len(rt.Locations) && o.Owns(displayInput(rt.Locations[l.Source], l.Item)) {
				kept = append(kept, l)
			}
		}
		items = kept
	}
	p.Items = make([]Item, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	if o.Concurrency > 0 {
		g.SetLimit(o.Concurrency)
	}
	gp := rt.newGuardPass()
	for i, l := range items {
		if l.Source < 0 || l.Source >= len(rt.Sources) {
			p.Items[i] = Item{Action: Error, Reason: "no such source", SourceIndex: l.Source, Key: l.Item.Key, Input: l.Item.Key, Rule: -1}
			continue
		}
		g.Go(func() error {
			it, err := gp.decide(gctx, l.Source, l.Item, o.Completed)
			p.Items[i] = it
			if err != nil {
				return err
			}
			rt.rewrapAction(&p.Items[i])
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	gp.finish(p.Items)
	markDuplicateOutputs(p.Items)
	p.builtBy = rt
	return p, nil
}

// markDuplicateOutputs turns items that would write the same output into
// conflicts (e.g. a.txt and a.txt.encrypted both decrypting to a.txt).
func markDuplicateOutputs(items []Item) {
	seen := map[string]int{}
	for i := range items {
		it := &items[i]
		if !it.Action.Changes() || it.Output == "<stdout>" {
			continue
		}
		if j, dup := seen[it.Output]; dup {
			it.Action, it.Reason = Conflict, fmt.Sprintf("output %s is also the output of %s", it.Output, items[j].Input)
			continue
		}
		seen[it.Output] = i
	}
}

// decide plans one listed item.
func (rt *Runtime) decideItem(ctx context.Context, srcIdx int, si sources.Item, completed map[string]sources.Fingerprint) Item {
	job := rt.Job
	src := rt.Sources[srcIdx]
	it := Item{SourceIndex: srcIdx, Key: si.Key, Size: si.Size, Fingerprint: si.Print, Mode: uint32(si.Mode),
		ContentType: si.ContentType, Metadata: si.Metadata, Rule: -1}
	it.Input = displayInput(rt.Locations[srcIdx], si)
	switch {
	case si.Err != nil:
		it.Action, it.Reason = Error, si.Err.Error()
		return it
	case si.Skipped != "":
		it.Action, it.Reason = Skip, si.Skipped
		return it
	}
	it.Output, it.OutRoot, it.OutKey = rt.outputFor(srcIdx, si)
	op := Action(job.Operation)
	stdin := rt.Locations[srcIdx].Kind == sources.Stdio

	blobs := rt.KMSBlobs(srcIdx)
	if job.Output.InPlace && (op == Decrypt || blobs) && rt.replacedBy(ctx, &it, op) {
		// The file is this operation's own output (plaintext, or a blob):
		// nothing in it can show that, and processing it again would do
		// the work twice.
		it.Action, it.Reason = Unchanged, fmt.Sprintf("completed by an earlier run (%s in place)", op)
		return it
	}
	var srcHdr *crypto.Header
	if !stdin && !blobs && (op != Encrypt || job.Output.InPlace) {
		var h *crypto.Header
		err := retryTransient(ctx, func() (err error) {
			h, err = readHeader(ctx, src, si.Key, job.Sources[srcIdx].Encoding, job.MaxEncryptedDataKeys)
			return err
		})
		switch {
		case err != nil && op != Encrypt:
			it.Action, it.Reason = Error, "not a readable ESDK message: "+err.Error()
			return it
		case err == nil:
			srcHdr = h
			it.Suite = h.Suite.Hex()
			for _, e := range h.EncryptedDataKeys {
				it.KeyIDs = append(it.KeyIDs, keygroup.EDKLabel(e))
			}
		}
	}
	// What a re-encryption writes follows the source (TargetFor); a
	// changed suite is noted in the plan.
	tgt := rt.TargetFor(srcHdr)
	if op == Reencrypt && tgt.Note != "" {
		it.Reason = tgt.Note
	}
	if op == Reencrypt && job.Output.InPlace && rt.satisfies(srcHdr, rt.reencryptContext(srcHdr), tgt) {
		// Already migrated: the source key group no longer matters.
		it.Action, it.Reason = Unchanged, fmt.Sprintf("already under key group %q with the desired context and suite", job.Encrypt.KeyGroup)
		return it
	}
	if srcHdr != nil && op != Encrypt {
		if keys, pairs := missingContext(srcHdr.Context, job.Decrypt.RequireContext); len(keys)+len(pairs) > 0 {
			it.Action, it.Reason = Skip, "Missing encryption context key or value"
			it.MissingContextKeys, it.MissingContextPairs = keys, pairs
			return it
		}
		if g := rt.Groups[job.Decrypt.KeyGroup]; !g.HoldsAny(srcHdr.EncryptedDataKeys) {
			it.Action = Error
			it.Reason = fmt.Sprintf("no encrypted data key of key group %q (message keys: %s)", g.Name, crypto.BoundedList(it.KeyIDs, ", "))
			return it
		}
	}
	if job.Output.InPlace {
		return rt.decideInPlace(ctx, it, srcHdr, blobs, tgt)
	}
	if it.OutRoot == "-" {
		it.Action = op
		return it
	}
	return rt.decideSeparate(ctx, it, srcHdr, tgt, completed)
}

// decideInPlace decides an item that replaces its own source. The header
// proves the desired state of encrypted files; what it cannot prove (that
// a file is the plaintext an earlier decrypt left, or a KMS blob an
// earlier run wrote) the tree's provenance record does, before the header
// is read (decideItem).
func (rt *Runtime) decideInPlace(ctx context.Context, it Item, srcHdr *crypto.Header, blobs bool, tgt Target) Item {
	job := rt.Job
	op := Action(job.Operation)
	if blobs {
		// A KMS blob's key is inside the blob, readable only by KMS: every
		// blob not written by this operation (decideItem asked the
		// provenance record) is processed.
		it.Action = op
		return it
	}
	switch {
	case op == Encrypt && srcHdr != nil && rt.satisfies(srcHdr, job.Encrypt.Context, tgt):
		it.Action, it.Reason = Unchanged, "already encrypted as desired"
	case op == Encrypt && srcHdr != nil:
		it.Action, it.Reason = Skip, "already an ESDK message (use operation reencrypt)"
	case op == Reencrypt && rt.satisfies(srcHdr, rt.reencryptContext(srcHdr), tgt):
		it.Action, it.Reason = Unchanged, fmt.Sprintf("already under key group %q with the desired context and suite", job.Encrypt.KeyGroup)
	default:
		it.Action = op
	}
	return it
}

// replacedBy reports whether the file now at the item's key is one that
// an in-place op of encjob wrote there (and nothing replaced since).
func (rt *Runtime) replacedBy(ctx context.Context, it *Item, op Action) bool {
	dst, err := rt.Destination(ctx, it)
	if err != nil {
		return false
	}
	prov, ok, err := provenance(ctx, dst, it.OutKey)
	return err == nil && ok && strings.HasPrefix(string(prov), inPlacePrefix(op))
}

// SourcePrint is the provenance an output is created with
// (sources.CreateOptions.SourcePrint), and what the planner later
// compares with to call an item unchanged:
//   - a separate destination records the fingerprint of the source
//     version it was made from; the output is current exactly when that
//     equals the source's fingerprint now;
//   - an in-place replacement destroys that version, so it records the
//     operation too, "inplace:<op>:<replaced print>": a later run learns
//     from it that the file is, say, plaintext an earlier decrypt wrote,
//     which no header can show.
func SourcePrint(job *spec.Job, it *Item) sources.Fingerprint {
	if job.Output.InPlace {
		return sources.Fingerprint(inPlacePrefix(it.Action) + string(it.Fingerprint))
	}
	return it.Fingerprint
}

func inPlacePrefix(op Action) string { return "inplace:" + string(op) + ":" }

// samePrint reports whether a recorded source fingerprint names the same
// version as the current one. S3 objects are compared by ETag, and by
// version ID only when both prints carry one: a listing (ListObjectsV2)
// reports no version ID while a HEAD does, and the same object must not
// look changed because one run planned from a listing and another from
// HEADs (encjob partition).
func samePrint(recorded, current sources.Fingerprint) bool {
	if recorded == current {
		return true
	}
	re, rv, ok1 := splitS3Print(recorded)
	ce, cv, ok2 := splitS3Print(current)
	return ok1 && ok2 && re == ce && re != "" && (rv == "" || cv == "" || rv == cv)
}

// splitS3Print splits "s3:<etag>[:v=<version>]".
func splitS3Print(p sources.Fingerprint) (etag, version string, ok bool) {
	s, ok := strings.CutPrefix(string(p), "s3:")
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndex(s, ":v="); i >= 0 {
		return s[:i], s[i+3:], true
	}
	return s, "", true
}

// provenance asks a destination which source version the output at key
// was written from; ok only while the output is still the very file (or
// object) encjob wrote. A destination that cannot tell proves nothing.
func provenance(ctx context.Context, dst sources.Destination, key string) (fp sources.Fingerprint, ok bool, err error) {
	pr, can := dst.(sources.ProvenanceReader)
	if !can {
		return "", false, nil
	}
	err = retryTransient(ctx, func() (err error) {
		fp, ok, err = pr.Provenance(ctx, key)
		return err
	})
	return fp, ok, err
}

// decideSeparate decides an item written to a separate destination. An
// existing output counts as current (unchanged) only when its provenance
// proves it was written from the source's current version - timestamps
// prove nothing: cp -p, rsync -t, tar x and touch -r all make an old
// file look new or a new one look old.
func (rt *Runtime) decideSeparate(ctx context.Context, it Item, srcHdr *crypto.Header, tgt Target, completed map[string]sources.Fingerprint) Item {
	job := rt.Job
	op := Action(job.Operation)
	dst, err := rt.Destination(ctx, &it)
	if err != nil {
		it.Action, it.Reason = Error, err.Error()
		return it
	}
	err = retryTransient(ctx, func() (err error) {
		_, err = dst.Stat(ctx, it.OutKey)
		return err
	})
	switch {
	case errors.Is(err, sources.ErrNotFound):
		it.Action = op
		return it
	case err != nil:
		it.Action, it.Reason = Error, "destination: "+err.Error()
		return it
	case job.Output.Overwrite == spec.OverwriteAlways:
		it.Action = op
		addReason(&it, "replaces the existing destination (overwrite: always)")
		return it
	}
	current, why := rt.outputCurrent(ctx, dst, &it, srcHdr, tgt, completed)
	switch {
	case current:
		it.Action, it.Reason = Unchanged, why
	case job.Output.Overwrite == spec.OverwriteIfNewer:
		it.Action = op
		addReason(&it, "replaces the existing destination: "+why+" (overwrite: if-newer)")
	default:
		it.Action, it.Reason = Conflict, "destination exists and "+why+" (overwrite: never)"
	}
	return it
}

// addReason adds why to an item's reason (which may already hold a note,
// such as the suite a re-encryption changes to).
func addReason(it *Item, why string) {
	if it.Reason == "" {
		it.Reason = why
	} else {
		it.Reason += "; " + why
	}
}

// outputCurrent reports whether the existing output of it was written by
// encjob from the source's current version, as the job now asks; if not,
// why, in words that follow "destination exists and".
func (rt *Runtime) outputCurrent(ctx context.Context, dst sources.Destination, it *Item, srcHdr *crypto.Header, tgt Target, completed map[string]sources.Fingerprint) (bool, string) {
	job := rt.Job
	op := Action(job.Operation)
	if it.Fingerprint == "" {
		return false, "the source has no fingerprint to compare with"
	}
	prov, ok, err := provenance(ctx, dst, it.OutKey)
	switch {
	case err != nil:
		return false, "its provenance cannot be read: " + err.Error()
	case !ok:
		if _, can := dst.(sources.ProvenanceReader); !can && completed[it.Input] == it.Fingerprint {
			// A destination without provenance records: the metadata
			// log's word is the best there is.
			return true, "completed by an earlier run (metadata log)"
		}
		return false, "encjob has no record of writing it (it was written or replaced by something else)"
	case !samePrint(prov, it.Fingerprint):
		return false, "it was written from another version of the source"
	case op == Decrypt:
		return true, "completed by an earlier run"
	}
	// Written from this very source version; but the job may ask for
	// another key group, context, suite or frame length since.
	dh, err := rt.readBackHeader(ctx, it)
	if err != nil {
		return false, "its header cannot be read: " + err.Error()
	}
	want := job.Encrypt.Context
	if op == Reencrypt {
		want = rt.reencryptContext(srcHdr)
	}
	if !rt.satisfies(dh, want, tgt) {
		return false, "it was written from the current source, but not with the key group, context, suite or frame length the job now asks for"
	}
	return true, "completed by an earlier run"
}

type headerOpener interface {
	OpenHeader(ctx context.Context, key string) (io.ReadCloser, error)
}

// readHeader parses the message header at key, reading only its first bytes.
func readHeader(ctx context.Context, src headerOpener, key, encoding string, maxEDKs int) (*crypto.Header, error) {
	rc, err := src.OpenHeader(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return crypto.ParseHeaderLimits(bufio.NewReaderSize(InputReader(rc, encoding), 4096), crypto.HeaderLimits{MaxEncryptedDataKeys: maxEDKs})
}

// InputReader decodes an input in the given encoding ("base64" or binary).
func InputReader(r io.Reader, encoding string) io.Reader {
	if encoding == "base64" {
		return base64.NewDecoder(base64.StdEncoding, &stripSpace{r: r})
	}
	return r
}

// stripSpace drops ASCII whitespace, so wrapped base64 text decodes.
type stripSpace struct{ r io.Reader }

func (s *stripSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// reencryptContext is the context a re-encrypted message must have: the
// source's, without the ESDK's own keys, edited by the job.
func (rt *Runtime) reencryptContext(h *crypto.Header) crypto.EncryptionContext {
	out := crypto.EncryptionContext{}
	if h != nil {
		for k, v := range h.Context {
			if !strings.HasPrefix(k, crypto.ReservedPrefix) {
				out[k] = v
			}
		}
	}
	for _, k := range rt.Job.Reencrypt.Remove {
		delete(out, k)
	}
	for k, v := range rt.Job.Reencrypt.Add {
		out[k] = v
	}
	for k, v := range rt.Job.Encrypt.Context {
		out[k] = v
	}
	return out
}

// satisfies: the header is under the target key group, with exactly the
// wanted user context, the desired suite and frame length.
func (rt *Runtime) satisfies(h *crypto.Header, want map[string]string, tgt Target) bool {
	if h == nil {
		return false
	}
	job := rt.Job
	g := rt.Groups[job.Encrypt.KeyGroup]
	// A rewrap keeps each message's suite (and frame length, then unset).
	if g == nil || !g.HoldsAny(h.EncryptedDataKeys) || (h.Suite != tgt.Suite && !job.Rewrap()) {
		return false
	}
	if fl := tgt.FrameLength; fl != nil && int(h.FrameLength) != *fl && !job.Rewrap() {
		return false
	}
	n := 0
	for k, v := range h.Context {
		if strings.HasPrefix(k, crypto.ReservedPrefix) {
			continue
		}
		if w, ok := want[k]; !ok || w != v {
			return false
		}
		n++
	}
	return n == len(want)
}

// missingContext compares a header context with the required one (a nil
// value means the key must exist with any value), as aws-encryption-cli
// reports it.
func missingContext(have crypto.EncryptionContext, req map[string]*string) (keys []string, pairs [][]string) {
	for k, v := range req {
		got, ok := have[k]
		switch {
		case !ok && v == nil:
			keys = append(keys, k)
		case v != nil && (!ok || got != *v):
			pairs = append(pairs, []string{k, *v})
		}
	}
	sort.Strings(keys)
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	return keys, pairs
}

func displayInput(loc sources.Location, it sources.Item) string {
	switch loc.Kind {
	case sources.Stdio:
		return "<stdin>"
	case sources.S3:
		return strings.TrimSuffix(sourceRoot(loc, it), "/") + "/" + it.Key
	default:
		if it.IsSingle {
			return loc.Path
		}
		return strings.TrimSuffix(loc.Path, "/") + "/" + it.Key
	}
}

// retryTransient retries what storage reports as transient (throttling,
// 5xx, connection resets) a few times with backoff, so that a flaky moment
// while planning does not turn an item into an error.
func retryTransient(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = fn(); err == nil || !sources.IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
	return err
}
