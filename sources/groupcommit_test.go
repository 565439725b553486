package sources

import (
	"testing"
	"time"
)

// TestGroupCommitWait: a batch waits out batchInterval from the start of
// the previous sync only where waiting saves a syncfs.
func TestGroupCommitWait(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		n        int
		sync     SyncMode
		noSyncfs bool
		since    time.Duration // since the previous batch's sync began
		want     time.Duration
	}{
		{name: "nothing queued", n: 0, since: time.Millisecond, want: 0},
		{name: "first batch", n: 1, since: time.Hour, want: 0},
		{name: "right after a sync", n: 3, since: time.Millisecond, want: batchInterval - time.Millisecond},
		{name: "interval over", n: 3, since: batchInterval, want: 0},
		{name: "batch full", n: batchMax, since: time.Millisecond, want: 0},
		{name: "fsync per file", n: 3, noSyncfs: true, since: time.Millisecond, want: 0},
		{name: "SyncEach", n: 3, sync: SyncEach, since: time.Millisecond, want: 0},
		{name: "SyncNone", n: 3, sync: SyncNone, since: time.Millisecond, want: 0},
	}
	for _, c := range cases {
		d := &LocalDestination{opt: LocalDestOptions{Sync: c.sync}}
		g := &groupCommitter{d: d, noSyncfs: c.noSyncfs, lastSync: now.Add(-c.since)}
		if got := g.wait(c.n, now); got != c.want {
			t.Errorf("%s: wait = %v, want %v", c.name, got, c.want)
		}
	}
}
