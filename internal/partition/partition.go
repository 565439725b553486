// Package partition owns the on-disk format `encjob partition` writes and
// `encjob apply --items` reads: a job's listing split into one part per
// shard, under an S3 prefix or in a directory (docs/kubernetes.md,
// "Listing at scale"). The layout, one version per run of partition:
//
//	part-00000.jsonl.gz … part-<N-1>   one gzip'ed JSON line per item (Line)
//	manifest.json                      written last: the commit marker (Manifest)
//
// Parts are gzip'ed: a listing line (key, size, ETag, mtime) is ~160 bytes
// of repetitive JSON that gzip shrinks about 4×, so 100 million items are
// ~4 GB instead of 16 GB to store and to download, for well under a second
// of CPU per million lines. The manifest records each part's SHA-256, so a
// shard never plans from a part that a later partition run is rewriting.
package partition

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/encjob/encjob/sources"
)

// FormatVersion is the version of the layout; readers refuse any other.
const FormatVersion = 1

const (
	// ManifestName is the manifest's name under the prefix.
	ManifestName = "manifest.json"
	// Kind identifies a manifest as this format's.
	Kind = "encjob-items"
)

// PartName is the name of shard i's part.
func PartName(i int) string { return fmt.Sprintf("part-%05d.jsonl.gz", i) }

// Manifest is manifest.json: what a shard checks before it trusts its
// part.
type Manifest struct {
	FormatVersion int        `json:"format_version"`
	Kind          string     `json:"kind"`
	Name          string     `json:"name"`
	SpecDigest    string     `json:"spec_digest"` // Job.Digest() of the partitioned spec
	Shards        int        `json:"shards"`
	Created       time.Time  `json:"created"`
	Sources       []string   `json:"sources"`
	Items         int64      `json:"items"`
	Parts         []PartInfo `json:"parts"` // Parts[i] is shard i's
}

// PartInfo describes one stored part.
type PartInfo struct {
	Name   string `json:"name"`
	Items  int64  `json:"items"`
	Bytes  int64  `json:"bytes"`  // as stored (gzip)
	SHA256 string `json:"sha256"` // of the stored bytes
}

// Line is one listed item: what planning needs from a listing.
type Line struct {
	Source      int       `json:"source"` // index into spec.sources
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	ModTime     time.Time `json:"mtime"`
	ETag        string    `json:"etag,omitempty"`
	Version     string    `json:"version,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Mode        uint32    `json:"mode,omitempty"`
	Single      bool      `json:"single,omitempty"`
	Skipped     string    `json:"skipped,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// LineOf is the line of item si of source src.
func LineOf(src int, si sources.Item) Line {
	l := Line{Source: src, Key: si.Key, Size: si.Size, ModTime: si.ModTime, ETag: si.ETag, Version: si.Version,
		Fingerprint: string(si.Print), Mode: uint32(si.Mode), Single: si.IsSingle, Skipped: si.Skipped}
	if si.Err != nil {
		l.Error = si.Err.Error()
	}
	return l
}

// Item is the listed item a line records (its error as text).
func (l *Line) Item() sources.Item {
	si := sources.Item{Key: l.Key, Size: l.Size, ModTime: l.ModTime, ETag: l.ETag, Version: l.Version,
		Print: sources.Fingerprint(l.Fingerprint), Mode: fs.FileMode(l.Mode), IsSingle: l.Single, Skipped: l.Skipped}
	if l.Error != "" {
		si.Err = errors.New(l.Error)
	}
	return si
}

// Store is a flat namespace of objects: an S3 prefix or a directory.
type Store interface {
	String() string
	// Get opens name; errors.Is(err, sources.ErrNotFound) when missing.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Put replaces name atomically with everything r yields.
	Put(ctx context.Context, name string, r io.Reader) error
	// Delete removes name; a missing name is not an error.
	Delete(ctx context.Context, name string) error
}

// NewStore is a Store whose objects are read through src and written and
// removed through dst, both over the same location (an S3 prefix or a
// directory); dst must be a sources.Remover.
func NewStore(src sources.Source, dst sources.Destination) (Store, error) {
	r, ok := dst.(sources.Remover)
	if !ok {
		return nil, fmt.Errorf("partition: destination %s cannot remove objects", dst)
	}
	return &store{src: src, dst: dst, rm: r}, nil
}

type store struct {
	src sources.Source
	dst sources.Destination
	rm  sources.Remover
}

func (s *store) String() string { return s.dst.String() }

func (s *store) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.src.Open(ctx, name)
}

// Put writes through the destination: a temporary name renamed at commit
// locally, one PutObject or a completed multipart upload on S3.
func (s *store) Put(ctx context.Context, name string, r io.Reader) error {
	w, err := s.dst.Create(ctx, name, sources.CreateOptions{Overwrite: sources.OverwriteAlways, Size: -1})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := w.Commit(ctx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (s *store) Delete(ctx context.Context, name string) error { return s.rm.Remove(ctx, name) }
