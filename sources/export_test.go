package sources

// GroupCommitStats exposes the committer's counters to tests.
func GroupCommitStats(d *LocalDestination) (batches, files int) {
	d.gc.mu.Lock()
	defer d.gc.mu.Unlock()
	return d.gc.batches, d.gc.files
}

// UseFsyncBatch makes the group committer fsync each file of a batch
// instead of calling syncfs (the fallback path).
func UseFsyncBatch(d *LocalDestination) { d.gc.noSyncfs = true }
