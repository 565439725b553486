package hierarchy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/crypto/keystore"
)

// fakeStore counts reads; every version has the same (fixed) key.
type fakeStore struct{ reads atomic.Int64 }

func (f *fakeStore) GetActiveBranchKey(ctx context.Context, id string) (*keystore.BranchKey, error) {
	f.reads.Add(1)
	return &keystore.BranchKey{ID: id, Version: "83eec007-5659-4554-bf11-699b90f41ac6", Key: make([]byte, 32)}, nil
}

func (f *fakeStore) GetBranchKeyVersion(ctx context.Context, id, v string) (*keystore.BranchKey, error) {
	f.reads.Add(1)
	return &keystore.BranchKey{ID: id, Version: v, Key: make([]byte, 32)}, nil
}

func (f *fakeStore) LogicalName() string { return "fake" }

func TestCacheTTLAndCapacity(t *testing.T) {
	st := &fakeStore{}
	clock := time.Unix(1000, 0)
	cache := hierarchy.NewCache(2)
	hierarchy.SetNow(cache, func() time.Time { return clock })
	enc := func(kr *hierarchy.Keyring) {
		t.Helper()
		m := &crypto.EncryptionMaterials{Suite: crypto.SuiteByID(0x0478)}
		if err := kr.OnEncrypt(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	part := []byte("p")
	long, _ := hierarchy.New(hierarchy.Config{Store: st, BranchKeyID: "a", TTL: time.Hour, Cache: cache, PartitionID: part})
	short, _ := hierarchy.New(hierarchy.Config{Store: st, BranchKeyID: "a", TTL: time.Minute, Cache: cache, PartitionID: part})
	enc(long)
	enc(long)
	enc(short) // same partition, logical name and id: shared entry
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d reads, want 1", n)
	}
	clock = clock.Add(2 * time.Minute)
	enc(long) // within the filler's TTL
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d reads, want 1", n)
	}
	enc(short) // older than this keyring's TTL: treated as expired
	if n := st.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2", n)
	}
	clock = clock.Add(2 * time.Hour)
	enc(long)
	if n := st.reads.Load(); n != 3 {
		t.Fatalf("after the TTL: %d reads, want 3", n)
	}
	// Another partition does not share; capacity 2 evicts the oldest.
	other, _ := hierarchy.New(hierarchy.Config{Store: st, BranchKeyID: "a", TTL: time.Hour, Cache: cache})
	enc(other)
	b, _ := hierarchy.New(hierarchy.Config{Store: st, BranchKeyID: "b", TTL: time.Hour, Cache: cache, PartitionID: part})
	enc(b)
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d entries, capacity 2", cache.Len())
	}
	if n := st.reads.Load(); n != 5 {
		t.Fatalf("%d reads, want 5", n)
	}
	enc(long) // evicted
	if n := st.reads.Load(); n != 6 {
		t.Fatalf("%d reads after eviction, want 6", n)
	}
}
