// Package shard splits the items of a plan deterministically between the
// workers of a parallel run: the indexes of a Kubernetes Indexed Job or of
// an AWS Batch array job.
//
// A Spec names one shard, Index of Count (0 ≤ Index < Count). Whether a
// shard owns an item depends only on the item's identity string and the
// count, never on listing order, the process, or the machine:
//
//	shard(identity) = SHA-256(identity)[0:8] as a big-endian uint64, mod Count
//
// so every shard of a run, listing the same items in any order, agrees on
// who does what: the shards partition the items (their union is every item,
// no item is in two shards), and re-running one index does exactly the
// items that index did before. The identity must therefore be stable
// across runs: the planner uses the item's source location (the source
// path joined with the item's relative path or key, e.g.
// "s3://bucket/invoices/a.csv"), never anything that changes when the item
// is processed (ETag, size, mtime, output name).
//
// SHA-256 is used rather than a faster hash for its uniform low bits on
// near-identical keys ("part-000001", "part-000002", ...); its cost (well
// under a microsecond per key) is small against one S3 request. The
// function is fixed: changing it would reassign items between shards and
// is a breaking change (a golden test guards it).
package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Environment variables read by FromEnv.
const (
	// EnvK8sIndex is set by Kubernetes in every pod of an Indexed Job.
	EnvK8sIndex = "JOB_COMPLETION_INDEX"
	// EnvBatchIndex is set by AWS Batch in every child of an array job.
	EnvBatchIndex = "AWS_BATCH_JOB_ARRAY_INDEX"
	// EnvCount is the shard count when no flag or spec gives one.
	EnvCount = "ENCJOB_SHARDS"
)

// MaxCount is the largest shard count accepted; it matches the number of
// indexes Kubernetes tracks comfortably in an Indexed Job.
const MaxCount = 100_000

// Errors wrapped by *Error, for errors.Is.
var (
	ErrSyntax   = errors.New("not a non-negative decimal integer")
	ErrRange    = errors.New("out of range")
	ErrNoCount  = errors.New("shard count unknown")
	ErrConflict = errors.New("conflicting shard indexes")
)

// Error is a shard setting that cannot be used. Source names where the
// value came from: "--shard", "--shards", or an environment variable name.
type Error struct {
	Source string
	Value  string
	Err    error  // ErrSyntax, ErrRange, ErrNoCount or ErrConflict
	Detail string // how to fix it
}

func (e *Error) Error() string {
	s := fmt.Sprintf("shard: %s=%q: %v", e.Source, e.Value, e.Err)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Spec is one shard of Count. The zero Spec (Count 0) and any Spec with
// Count 1 own every item: the run is not sharded.
type Spec struct {
	Index, Count int
}

// Sharded reports whether s selects a strict subset of the items.
func (s Spec) Sharded() bool { return s.Count > 1 }

// String formats s as Parse reads it, "i/n".
func (s Spec) String() string { return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count) }

// Owns reports whether the item with this identity belongs to shard s.
func (s Spec) Owns(identity string) bool {
	if s.Count <= 1 {
		return true
	}
	return Of(identity, s.Count) == s.Index
}

// Of returns the shard (0 ≤ shard < count) that owns identity. It panics
// if count < 1.
func Of(identity string, count int) int {
	if count < 1 {
		panic("shard: Of with count < 1")
	}
	return int(Hash(identity) % uint64(count))
}

// Hash is the 64-bit value shards are assigned by: the first 8 bytes of
// SHA-256(identity), big-endian.
func Hash(identity string) uint64 {
	sum := sha256.Sum256([]byte(identity))
	return binary.BigEndian.Uint64(sum[:8])
}

// Validate checks 0 ≤ Index < Count ≤ MaxCount.
func (s Spec) Validate() error {
	if s.Count < 1 || s.Count > MaxCount {
		return &Error{Source: "count", Value: strconv.Itoa(s.Count), Err: ErrRange,
			Detail: fmt.Sprintf("want 1 to %d", MaxCount)}
	}
	if s.Index < 0 || s.Index >= s.Count {
		return &Error{Source: "index", Value: strconv.Itoa(s.Index), Err: ErrRange,
			Detail: fmt.Sprintf("want 0 to %d for %d shards", s.Count-1, s.Count)}
	}
	return nil
}

// Parse reads "i/n" (the --shard flag): decimal integers, 0-based index,
// 0 ≤ i < n ≤ MaxCount, no spaces or signs.
func Parse(v string) (Spec, error) {
	is, ns, ok := strings.Cut(v, "/")
	if !ok {
		return Spec{}, &Error{Source: "--shard", Value: v, Err: ErrSyntax,
			Detail: `want "INDEX/COUNT" with a 0-based index, e.g. "0/4"`}
	}
	i, err := parseUint(is)
	if err != nil {
		return Spec{}, &Error{Source: "--shard", Value: v, Err: err,
			Detail: `the index (before "/") must be a non-negative integer, e.g. "0/4"`}
	}
	n, err := parseUint(ns)
	if err != nil {
		return Spec{}, &Error{Source: "--shard", Value: v, Err: err,
			Detail: `the count (after "/") must be a positive integer, e.g. "0/4"`}
	}
	if n < 1 || n > MaxCount {
		return Spec{}, &Error{Source: "--shard", Value: v, Err: ErrRange,
			Detail: fmt.Sprintf("the count must be 1 to %d", MaxCount)}
	}
	if i >= n {
		return Spec{}, &Error{Source: "--shard", Value: v, Err: ErrRange,
			Detail: fmt.Sprintf("the index is 0-based: want 0 to %d for %d shards", n-1, n)}
	}
	return Spec{Index: i, Count: n}, nil
}

// FromEnv finds this process's shard from the environment of a parallel
// runner. The index comes from JOB_COMPLETION_INDEX (Kubernetes Indexed
// Job) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array job); when both are
// set they must agree. The count is count when > 0 (the --shards flag or
// spec.execution.shards), else ENCJOB_SHARDS.
//
// ok is false, with a nil error, when neither index variable is set: the
// process is not running as a shard (the count alone does not make it
// one). An index variable that is set but empty counts as unset. With an
// index but no count the error wraps ErrNoCount.
func FromEnv(getenv func(string) string, count int) (s Spec, ok bool, err error) {
	src, raw := "", ""
	k8s, batch := getenv(EnvK8sIndex), getenv(EnvBatchIndex)
	switch {
	case k8s != "" && batch != "" && k8s != batch:
		return Spec{}, false, &Error{Source: EnvK8sIndex, Value: k8s, Err: ErrConflict,
			Detail: fmt.Sprintf("%s=%q is also set; unset one of them", EnvBatchIndex, batch)}
	case k8s != "":
		src, raw = EnvK8sIndex, k8s
	case batch != "":
		src, raw = EnvBatchIndex, batch
	default:
		return Spec{}, false, nil
	}
	i, perr := parseUint(raw)
	if perr != nil {
		return Spec{}, false, &Error{Source: src, Value: raw, Err: perr,
			Detail: "the runner should set a 0-based index"}
	}
	if count < 0 || count > MaxCount {
		return Spec{}, false, &Error{Source: "--shards", Value: strconv.Itoa(count), Err: ErrRange,
			Detail: fmt.Sprintf("want 1 to %d", MaxCount)}
	}
	if count == 0 {
		cs := getenv(EnvCount)
		if cs == "" {
			return Spec{}, false, &Error{Source: src, Value: raw, Err: ErrNoCount,
				Detail: fmt.Sprintf("pass --shards N, set spec.execution.shards, or set %s", EnvCount)}
		}
		n, perr := parseUint(cs)
		if perr != nil {
			return Spec{}, false, &Error{Source: EnvCount, Value: cs, Err: perr,
				Detail: "want the number of shards, e.g. 4"}
		}
		if n < 1 || n > MaxCount {
			return Spec{}, false, &Error{Source: EnvCount, Value: cs, Err: ErrRange,
				Detail: fmt.Sprintf("want 1 to %d", MaxCount)}
		}
		count = n
	}
	if i >= count {
		return Spec{}, false, &Error{Source: src, Value: raw, Err: ErrRange,
			Detail: fmt.Sprintf("want 0 to %d for %d shards; is the shard count the Job's completions (or the array size)?", count-1, count)}
	}
	return Spec{Index: i, Count: count}, true, nil
}

// parseUint accepts ASCII decimal digits only (no sign, space or
// underscore) and values that fit comfortably in an int.
func parseUint(s string) (int, error) {
	if s == "" || len(s) > 9 {
		if len(s) > 9 && strings.Trim(s, "0123456789") == "" {
			return 0, ErrRange
		}
		return 0, ErrSyntax
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, ErrSyntax
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}
