package hierarchy

import (
	"container/list"
	"context"
	"crypto/sha512"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/encjob/encjob/crypto/keystore"
)

// DefaultCacheSize is the entry capacity of a keyring's own cache.
const DefaultCacheSize = 1000

// Cache holds decrypted branch keys for one or more keyrings (share one
// Cache between keyrings with the same PartitionID to share entries). At
// most capacity entries are kept, least recently used evicted first. Misses
// for the same entry are coalesced: however many goroutines miss at once,
// one key store read (one DynamoDB GetItem, one KMS Decrypt) fills it.
// Failures are not cached. Safe for concurrent use.
type Cache struct {
	capacity int
	now      func() time.Time

	mu      sync.Mutex
	entries map[[sha512.Size384]byte]*list.Element
	lru     *list.List // front: most recently used; values *entry

	flight singleflight.Group
}

type entry struct {
	id      [sha512.Size384]byte
	bk      *keystore.BranchKey
	created time.Time
	expires time.Time // created + the TTL of the keyring that filled it
}

// NewCache returns a cache of capacity entries (DefaultCacheSize when
// capacity <= 0).
func NewCache(capacity int) *Cache {
	if capacity <= 0 {
		capacity = DefaultCacheSize
	}
	return &Cache{capacity: capacity, now: time.Now, entries: map[[sha512.Size384]byte]*list.Element{}, lru: list.New()}
}

// Len returns the number of entries (expired ones included until evicted).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// lookup returns the entry if it is usable by a keyring whose TTL is ttl:
// not expired, and not older than ttl (a shared entry filled by a keyring
// with a longer TTL must not outlive this keyring's).
func (c *Cache) lookup(id [sha512.Size384]byte, ttl time.Duration) *keystore.BranchKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	now := c.now()
	if !now.Before(e.expires) || now.Sub(e.created) > ttl {
		return nil
	}
	c.lru.MoveToFront(el)
	return e.bk
}

func (c *Cache) put(id [sha512.Size384]byte, bk *keystore.BranchKey, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	e := &entry{id: id, bk: bk, created: now, expires: now.Add(ttl)}
	if el, ok := c.entries[id]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[id] = c.lru.PushFront(e)
	for c.lru.Len() > c.capacity {
		last := c.lru.Back()
		delete(c.entries, last.Value.(*entry).id)
		c.lru.Remove(last)
	}
}

// get returns the entry id, filling it with fetch on a miss. Concurrent
// misses share one fetch, which runs detached from any one caller's
// cancellation (each caller still returns when its own context ends).
func (c *Cache) get(ctx context.Context, id [sha512.Size384]byte, ttl time.Duration,
	fetch func(context.Context) (*keystore.BranchKey, error)) (*keystore.BranchKey, error) {
	if bk := c.lookup(id, ttl); bk != nil {
		return bk, nil
	}
	detached := context.WithoutCancel(ctx)
	ch := c.flight.DoChan(string(id[:]), func() (any, error) {
		// A fetch that finished between our lookup and DoChan has
		// filled the entry already.
		if bk := c.lookup(id, ttl); bk != nil {
			return bk, nil
		}
		bk, err := fetch(detached)
		if err != nil {
			return nil, err
		}
		c.put(id, bk, ttl)
		return bk, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*keystore.BranchKey), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
