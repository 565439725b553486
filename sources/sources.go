package sources

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// Fingerprint identifies one version of an item so a later check can tell
// whether it changed: "local:dev:inode:mtime-ns:ctime-ns:size" for files,
// "s3:<etag>" (plus ":v=<version>" when versioned) for objects. Compare
// with ==; it is plain text so a saved plan can carry it.
type Fingerprint string

// Item is one entry a Source lists.
type Item struct {
	// Key is slash-separated and relative to the source root; for a
	// single-file or single-object source it is the base name.
	Key      string
	Size     int64
	ModTime  time.Time
	Mode     fs.FileMode // local files only
	ETag     string      // S3 only, with its quotes as S3 sends it
	Version  string      // S3 version ID, if any
	Print    Fingerprint // see Fingerprint
	IsSingle bool        // the source named this one item, not a tree

	// ContentType and Metadata are filled by Stat and by S3 sources'
	// Open (ListObjectsV2 does not return them).
	ContentType string
	Metadata    map[string]string

	// Skipped, when not empty, says why the item is not processed
	// (a fifo, device, socket, symlink not followed, symlink loop, S3
	// directory marker). Such items are never opened.
	Skipped string
	// Err is a per-item listing error (an unreadable directory, say);
	// the walk goes on.
	Err error
}

// Source lists and reads items. Implementations are safe for concurrent
// use once constructed.
type Source interface {
	// String is the location as the user wrote it, for messages.
	String() string
	// List calls fn for every item in byte-wise lexicographic key order,
	// filters applied, skipped and errored items included (check
	// Item.Skipped and Item.Err). An error from fn stops the walk and is
	// returned; a listing failure of the root itself is returned too.
	List(ctx context.Context, fn func(Item) error) error
	// Stat returns the current state of key (ErrNotFound if missing),
	// with ContentType and Metadata where the store has them.
	Stat(ctx context.Context, key string) (Item, error)
	// Open streams the whole item.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// OpenHeader streams the item for a caller that will read only its
	// first bytes and then Close: S3 fetches growing ranges (64 KiB
	// first) instead of the whole object.
	OpenHeader(ctx context.Context, key string) (io.ReadCloser, error)
}

// Overwrite is what Create does when the final name already exists.
type Overwrite int

const (
	// OverwriteNever fails the item with a *ConflictError (ErrConflict),
	// checked atomically when the output is committed (S3 may also refuse
	// at Create; a local destination leaves it to the link that names
	// the file).
	OverwriteNever Overwrite = iota
	// OverwriteAlways replaces the existing output.
	OverwriteAlways
)

// CreateOptions tune Destination.Create.
type CreateOptions struct {
	Overwrite Overwrite
	// IfMatch, when set, makes this an in-place replacement: the existing
	// item must still have this fingerprint right before the new content
	// replaces it (else *ConflictError with Reason ConflictChanged), and
	// Overwrite is ignored.
	IfMatch Fingerprint
	// Mode is the final permission of a local file. Zero: the replaced
	// file's mode for IfMatch, otherwise 0666 &^ umask (what any program
	// creating a file gets). Callers writing plaintext pass zero: copying
	// the mode of a ciphertext could expose plaintext wider than the
	// user's umask allows. Files are created 0600 and get this mode only
	// at commit.
	Mode fs.FileMode
	// SourcePrint is the fingerprint of the source the output is made
	// from. The destination records it atomically with the commit (local:
	// in the root's state directory, made durable before the output is
	// renamed into place; S3: object metadata "encjob-source-print"), so
	// a later run can ask ProvenanceReader.Provenance whether the output
	// at a key is still the one made from that source version.
	SourcePrint Fingerprint
	// ContentType and Metadata are stored with S3 objects.
	ContentType string
	Metadata    map[string]string
	// Size is the expected length, or -1/0 if unknown (a hint: S3 uses a
	// single PutObject below the part size either way).
	Size int64
}

// Writer is an output being written. Nothing is visible under the final
// name until Commit returns nil. After Commit or Abort the Writer is
// done; Abort after Commit (or twice) is a no-op, so `defer w.Abort()` is
// the idiom.
type Writer interface {
	io.Writer
	// Commit makes the output durable and visible under its final name.
	// It returns *ConflictError (ErrConflict) when the overwrite policy
	// or the IfMatch check fails at that moment; on any error nothing is
	// left behind.
	Commit(ctx context.Context) error
	// Abort discards the output (temp file removed, S3 multipart upload
	// aborted).
	Abort() error
}

// Destination creates outputs atomically. Safe for concurrent use.
type Destination interface {
	String() string
	// Create starts an output at key (slash-separated, relative to the
	// destination root). A key escaping the root fails with
	// *EscapeError (ErrEscapes); an existing output under
	// OverwriteNever, or one that no longer matches IfMatch, fails with
	// *ConflictError (ErrConflict) here or, at the latest, at Commit (S3
	// leaves it to the conditional write, which the server decides
	// atomically).
	Create(ctx context.Context, key string, o CreateOptions) (Writer, error)
	// Stat returns the current state of key (ErrNotFound if missing).
	Stat(ctx context.Context, key string) (Item, error)
}

// AsyncCommitter is an optional Writer capability (local files): start the
// commit and learn its result later, so one goroutine can pipeline many
// outputs into one group-commit sync. The result is what Commit would
// have returned; the item is durable only once it arrives (nil).
type AsyncCommitter interface {
	CommitAsync(ctx context.Context) <-chan error
}

// ProvenanceReader is an optional Destination capability (local
// directories and S3).
//
// Provenance returns the CreateOptions.SourcePrint recorded when encjob
// committed the output now at key, and true, only if that output is still
// the very one encjob wrote: for local files the same device, inode, size
// and mtime as at commit (a restored or rewritten file is a new inode or a
// new mtime), for S3 the object's own metadata. Otherwise, or if nothing
// was recorded, it returns false and no error; errors are for an
// unreadable state. The planner calls an output "unchanged" only when the
// recorded print equals the source's current fingerprint.
type ProvenanceReader interface {
	Provenance(ctx context.Context, key string) (Fingerprint, bool, error)
}
