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
// # Durability of local outputs
//
// A local [Writer] writes to a temporary file ".encjob-tmp-<random>" in the
// final directory, mode 0600. Commit closes it, sets the final mode and hands
// it to the destination's group committer, which renames files into place
// only after one syncfs(2) of the file system covered all of them (or, where
// syncfs is unavailable, one fsync per file of the batch), and then fsyncs
// each affected directory. Commit returns once its file is durable under its
// final name. Concurrent committers share one sync: while a sync runs, newly
// committed files queue for the next one. After a crash, a final name holds
// either the complete old content or the complete new content; leftover
// temporary files are removed by [Cleanup].
package sources
