// Package planner expands a job into a plan: one action per item, decided
// from listings and message headers only - no decryption and no KMS call -
// so that items already in the desired state cost nothing.
package planner

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/sources"
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
			return nil, &SourceError{Index: i, Source: src.String(), Err: err}
		}
	}
	return BuildItems(ctx, rt, all, o)
}

// SourceError: listing the job's source Index (spec.sources[Index])
// failed, e.g. it does not exist or its glob matches nothing.
type SourceError struct {
	Index  int
	Source string
	Err    error
}

func (e *SourceError) Error() string { return fmt.Sprintf("listing %s: %v", e.Source, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

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
	g, gctx := errgroup.WithContext(withOutputIndex(ctx, len(items)))
	workers := 16
	if o.Concurrency > 0 {
		workers = o.Concurrency
	}
	gp := rt.newGuardPass()
	// A fixed set of workers takes the items in order: a goroutine per
	// item grew a fresh stack through decide for every one of them
	// (runtime.copystack was ~6 us of CPU per 4 KiB file in perf).
	var next atomic.Int64
	for range min(workers, len(items)) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return nil
				}
				if err := decideAt(gctx, rt, gp, p.Items, i, items[i], o.Completed); err != nil {
					return err
				}
			}
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

// decideAt decides items[i] into out[i]; an error stops the build.
func decideAt(ctx context.Context, rt *Runtime, gp *guardPass, out []Item, i int, l Listed, completed map[string]sources.Fingerprint) error {
	if l.Source < 0 || l.Source >= len(rt.Sources) {
		out[i] = Item{Action: Error, Reason: "no such source", SourceIndex: l.Source, Key: l.Item.Key, Input: l.Item.Key, Rule: -1}
		return nil
	}
	it, err := gp.decide(ctx, l.Source, l.Item, completed)
	out[i] = it
	if err != nil {
		return err
	}
	rt.rewrapAction(&out[i])
	return ctx.Err()
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
