// Package sources is encjob's storage layer: where items come from and where
// outputs go, for local files, stdin/stdout and S3 alike. It knows storage,
// not cryptography: the planner reads headers through package crypto from a
// reader that sources opened.
//
// The model follows rclone in miniature:
//
//   - [Parse] turns a user string into a [Location]: a local path (file,
//     directory or glob such as ./data/**/*.csv), "-" for stdin/stdout, or
//     s3://bucket/prefix-or-key.
//   - A [Source] lists [Item]s in a deterministic order (byte-wise
//     lexicographic by key, the order S3 lists in) with include/exclude rules
//     ([Filter]) applied during the walk, opens them for reading, and opens
//     just their first bytes ([Source.OpenHeader]).
//   - A [Destination] creates outputs atomically: [Destination.Create]
//     returns a [Writer] whose content becomes visible under its final name
//     only at [Writer.Commit], and never if [Writer.Abort] is called or the
//     commit fails.
//
// Errors the executor branches on are typed: [ErrConflict] (the destination
// exists under an overwrite policy that forbids replacing it, or an in-place
// source changed since it was listed; see [ConflictError]), [ErrEscapes] (a
// key would leave the destination root), [ErrNotFound], and [IsRetryable]
// for transient S3 and network failures.
//
// # Local outputs: confinement, durability, ownership
//
// A [LocalDestination] opens its root once and reaches every directory
// below it from that descriptor, one component at a time with O_NOFOLLOW:
// no key, and no directory swapped for a symlink while the run goes on,
// can place a file outside the root (S3 keys mapped to local files
// included); such a key fails with [ErrEscapes].
//
// An output is written to an unnamed file (O_TMPFILE) in its directory,
// mode 0600, so nothing named exists before the commit. Commit gives it its
// final mode: [CreateOptions.Mode], or for zero 0666 &^ umask (the replaced
// file's mode in place) - never more than the user's umask allows for a
// decrypted file. It then hands the file to the destination's group
// committer, which (1) appends one record per file to the run's journal,
// (2) makes file contents and journal durable with one syncfs(2) for the
// whole batch (or, where syncfs is unavailable, one fsync per file),
// (3) links each file to its final name (no overwrite), or links it to a
// temporary ".encjob-tmp-<run id>-<n>" renamed over the final name
// (overwrite), or exchanges it with the final name (in place, see below),
// and (4) fsyncs each affected directory. Commit returns once its file is
// durable under its final name. After a crash a final name holds either
// the complete old or the complete new content.
//
// A large output is asked to be written back as it is written, and made
// durable every 32 MiB on a goroutine of its own (writeback.go), and past
// its first 8 MiB it is written with O_DIRECT from an aligned buffer
// (directio.go): a bulk job's outputs stay out of the page cache, and the
// cores are not spent copying them into it and writing it back. The
// commit's sync is what makes either durable.
//
// In-place replacement is a compare-and-swap: renameat2(RENAME_EXCHANGE)
// swaps the new file with the final name, and what was swapped out must
// be the listed file unchanged (same inode, size, mtime); otherwise an
// external writer got there first, the swap is undone and the item fails
// with ConflictChanged - their content is never overwritten.
//
// The root's [StateDir] holds a lock (flock(2), which works across PID
// namespaces, so two pods on one volume exclude each other; a second run
// fails with [LockError]), the run journals and the provenance of outputs
// ([ProvenanceReader]). The first Create of a run (or [Cleanup]) takes the
// lock, then finishes or undoes what a crashed run left: it removes only
// temporary names that run's journal proves it made, never a file merely
// named like one, and never looks outside the root. Where the file system
// has no O_TMPFILE, outputs are written under their temporary name from
// the start, its directory recorded (and synced) in the journal first.
package sources
