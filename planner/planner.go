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
	"github.com/encjob/encjob/keygroup"
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
	// run completed them (from its metadata log): such an item whose
	// output exists is unchanged. This is what lets a decrypt job resume.
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
			if l.Source >= 0 && l.Source < len(rt.locs) && o.Owns(displayInput(rt.locs[l.Source], l.Item)) {
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
	it.Input = displayInput(rt.locs[srcIdx], si)
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
	stdin := rt.locs[srcIdx].Kind == sources.Stdio

	var srcHdr *crypto.Header
	blobs := rt.KMSBlobs(srcIdx)
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
	if job.Output.InPlace && blobs {
		// A KMS blob's key is inside the blob, readable only by KMS: every
		// blob is processed.
		it.Action = op
		return it
	}
	if job.Output.InPlace {
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
	if it.OutRoot == "-" {
		it.Action = op
		return it
	}
	// A separate destination: what is there already?
	dst, err := rt.Destination(ctx, &it)
	if err != nil {
		it.Action, it.Reason = Error, err.Error()
		return it
	}
	var di sources.Item
	err = retryTransient(ctx, func() (err error) {
		di, err = dst.Stat(ctx, it.OutKey)
		return err
	})
	switch {
	case errors.Is(err, sources.ErrNotFound):
		it.Action = op
		return it
	case err != nil:
		it.Action, it.Reason = Error, "destination: "+err.Error()
		return it
	}
	newer := !di.ModTime.Before(si.ModTime)
	if fp, ok := completed[it.Input]; ok && fp == si.Print && si.Print != "" {
		it.Action, it.Reason = Unchanged, "completed by an earlier run (metadata log)"
		return it
	}
	if op != Decrypt && newer {
		if dh, err := rt.readBackHeader(ctx, &it); err == nil {
			want := job.Encrypt.Context
			if op == Reencrypt {
				want = rt.reencryptContext(srcHdr)
			}
			if rt.satisfies(dh, want, tgt) {
				it.Action, it.Reason = Unchanged, "destination already encrypted as desired"
				return it
			}
		}
	}
	switch job.Output.Overwrite {
	case spec.OverwriteAlways:
		it.Action = op
	case spec.OverwriteIfNewer:
		if newer {
			it.Action, it.Reason = Unchanged, "destination is newer than the source (overwrite: if-newer)"
		} else {
			it.Action = op
		}
	default:
		it.Action, it.Reason = Conflict, "destination exists (overwrite: never)"
	}
	return it
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
