// Package caching provides the caching cryptographic materials manager of
// the AWS Encryption SDK specification: it sits in front of another
// materials manager and reuses data keys, so that bulk encryption of many
// small messages does not ask the key provider (for example AWS KMS) for a
// new data key every time.
//
// Reuse is bounded. An encryption entry serves at most MaxMessagesEncrypted
// messages and MaxBytesEncrypted plaintext bytes, and no entry lives longer
// than MaxAge; the cache holds at most Capacity entries (least recently used
// first out). Entries are keyed so that a different partition, algorithm
// suite, commitment policy or encryption context never shares a data key,
// and decryption entries are keyed by every encrypted data key of the
// message as well.
//
// Following the specification, the cache is bypassed (the underlying
// manager is called and nothing is stored) when the plaintext length is
// unknown, when the suite has no key derivation (0x0014, 0x0046, 0x0078),
// and when one message alone is larger than MaxBytesEncrypted.
//
// Concurrent misses for the same entry are coalesced: one caller asks the
// underlying manager while the others wait for its result, so a cold cache
// hit by many workers at once mints one data key, not one per worker.
package caching

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/encjob/encjob/crypto"
)

// Defaults for limits left at zero, from the specification.
const (
	DefaultMaxMessagesEncrypted = uint64(1) << 32
	DefaultMaxBytesEncrypted    = uint64(math.MaxInt64)
)

// Options configures a caching materials manager.
type Options struct {
	// Capacity is the most entries (encryption and decryption together)
	// the cache holds; the least recently used is evicted first. Required.
	Capacity int
	// MaxAge is how long an entry may be used after it was created.
	// Required, greater than zero.
	MaxAge time.Duration
	// MaxMessagesEncrypted is how many messages one cached data key may
	// encrypt (0: 2^32).
	MaxMessagesEncrypted uint64
	// MaxBytesEncrypted is how many plaintext bytes one cached data key may
	// encrypt in total (0: 2^63-1).
	MaxBytesEncrypted uint64
	// PartitionID separates this manager's entries from any other's ("":
	// a random id unique to this manager).
	PartitionID string
	// Clock returns the current time (nil: time.Now). For tests.
	Clock func() time.Time
}

// Stats counts what the cache did. All counts are since New.
type Stats struct {
	Hits            uint64 // requests served from a cache entry
	Misses          uint64 // requests that fetched materials from the underlying manager to fill the cache
	Bypassed        uint64 // requests passed straight to the underlying manager (not cacheable)
	Coalesced       uint64 // times a request waited for another request's fetch of the same entry
	UnderlyingCalls uint64 // calls made to the underlying manager (misses and bypasses)
	Evictions       uint64 // entries removed for capacity, age or usage limits
	Entries         int    // entries held now
}

// CMM is the caching materials manager. It is safe for concurrent use.
type CMM struct {
	under     crypto.MaterialsManager
	capacity  int
	maxAge    time.Duration
	maxMsgs   uint64
	maxBytes  uint64
	now       func() time.Time
	partition [sha512.Size]byte // SHA-512 of the partition id

	mu      sync.Mutex
	entries map[cacheKey]*list.Element // values are *entry
	lru     *list.List                 // front: most recently used
	flights map[cacheKey]*flight

	hits, misses, bypassed, coalesced, calls, evictions atomic.Uint64
}

type cacheKey [sha512.Size]byte

type entry struct {
	key      cacheKey
	created  time.Time
	enc      *crypto.EncryptionMaterials // set for encryption entries
	dec      *crypto.DecryptionMaterials // set for decryption entries
	messages uint64
	bytes    uint64
}

// flight is one in-progress fetch from the underlying manager that other
// requests for the same entry wait for.
type flight struct {
	done chan struct{}
	// err is the fetch's error, shared with the waiters unless retry is
	// set (the leader's own context ended, which says nothing about theirs).
	err   error
	retry bool
}

// New returns a caching materials manager in front of underlying.
func New(underlying crypto.MaterialsManager, o Options) (*CMM, error) {
	switch {
	case underlying == nil:
		return nil, errors.New("caching: underlying materials manager is nil")
	case o.Capacity < 1:
		return nil, fmt.Errorf("caching: capacity is %d, want at least 1", o.Capacity)
	case o.MaxAge <= 0:
		return nil, fmt.Errorf("caching: max age is %v, want more than zero", o.MaxAge)
	case o.MaxBytesEncrypted > DefaultMaxBytesEncrypted:
		return nil, fmt.Errorf("caching: max bytes encrypted is %d, more than 2^63-1", o.MaxBytesEncrypted)
	}
	c := &CMM{
		under:    underlying,
		capacity: o.Capacity,
		maxAge:   o.MaxAge,
		maxMsgs:  o.MaxMessagesEncrypted,
		maxBytes: o.MaxBytesEncrypted,
		now:      o.Clock,
		entries:  map[cacheKey]*list.Element{},
		lru:      list.New(),
		flights:  map[cacheKey]*flight{},
	}
	if c.maxMsgs == 0 {
		c.maxMsgs = DefaultMaxMessagesEncrypted
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytesEncrypted
	}
	if c.now == nil {
		c.now = time.Now
	}
	pid := o.PartitionID
	if pid == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("caching: making a partition id: %w", err)
		}
		pid = hex.EncodeToString(b[:])
	}
	c.partition = sha512.Sum512([]byte(pid))
	return c, nil
}

// Stats returns the counters and the current number of entries.
func (c *CMM) Stats() Stats {
	c.mu.Lock()
	n := c.lru.Len()
	c.mu.Unlock()
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Bypassed: c.bypassed.Load(),
		Coalesced: c.coalesced.Load(), UnderlyingCalls: c.calls.Load(),
		Evictions: c.evictions.Load(), Entries: n,
	}
}

// GetEncryptionMaterials implements crypto.MaterialsManager. A hit returns
// a copy of the cached materials that the caller may modify or zero; only
// SigningKey (read-only by nature) is shared between the messages of one
// entry, as in the other ESDKs.
func (c *CMM) GetEncryptionMaterials(ctx context.Context, req crypto.EncryptionRequest) (*crypto.EncryptionMaterials, error) {
	if req.PlaintextLength < 0 || (req.Suite != nil && !req.Suite.HasKDF()) || uint64(req.PlaintextLength) > c.maxBytes {
		c.bypassed.Add(1)
		c.calls.Add(1)
		return c.under.GetEncryptionMaterials(ctx, req)
	}
	key, err := c.encryptionKey(req)
	if err != nil {
		return nil, err
	}
	n := uint64(req.PlaintextLength)
	return coalesce(ctx, c, key, func() *crypto.EncryptionMaterials { return c.takeEncryptionLocked(key, n) },
		func() (*entry, *crypto.EncryptionMaterials, error) {
			under := req
			under.PlaintextLength = int64(c.maxBytes)
			m, err := c.under.GetEncryptionMaterials(ctx, under)
			if err != nil {
				return nil, nil, err
			}
			if m == nil || m.Suite == nil || !m.Suite.HasKDF() || (req.Suite != nil && m.Suite.ID != req.Suite.ID) {
				return nil, m, nil // usable once, never shared
			}
			// The leader's own message is the entry's first use.
			return &entry{enc: cloneEncryption(m), messages: 1, bytes: n}, m, nil
		})
}

// DecryptMaterials implements crypto.MaterialsManager. A hit returns a copy
// of the cached materials that the caller may modify or zero.
func (c *CMM) DecryptMaterials(ctx context.Context, req crypto.DecryptionRequest) (*crypto.DecryptionMaterials, error) {
	if req.Suite == nil || !req.Suite.HasKDF() {
		c.bypassed.Add(1)
		c.calls.Add(1)
		return c.under.DecryptMaterials(ctx, req)
	}
	key, err := c.decryptionKey(req)
	if err != nil {
		return nil, err
	}
	return coalesce(ctx, c, key, func() *crypto.DecryptionMaterials { return c.takeDecryptionLocked(key) },
		func() (*entry, *crypto.DecryptionMaterials, error) {
			m, err := c.under.DecryptMaterials(ctx, req)
			if err != nil {
				return nil, nil, err
			}
			if m == nil || m.Suite == nil || m.Suite.ID != req.Suite.ID || m.DataKey == nil {
				return nil, m, nil
			}
			return &entry{dec: cloneDecryption(m)}, m, nil
		})
}

// coalesce serves a request from the cache (take runs with c.mu held); on a
// miss it either waits for the caller already fetching the same key and
// looks again, or becomes that caller itself: concurrent misses for one
// entry make one underlying call.
func coalesce[T any](ctx context.Context, c *CMM, key cacheKey, take func() *T, fetch func() (*entry, *T, error)) (*T, error) {
	for {
		c.mu.Lock()
		if m := take(); m != nil {
			c.mu.Unlock()
			c.hits.Add(1)
			return m, nil
		}
		if f := c.flights[key]; f != nil {
			c.mu.Unlock()
			if err := c.wait(ctx, f); err != nil {
				return nil, err
			}
			continue
		}
		f := &flight{done: make(chan struct{})}
		c.flights[key] = f
		c.mu.Unlock()

		var m *T
		err := c.lead(ctx, key, f, func() (*entry, error) {
			e, got, err := fetch()
			m = got
			return e, err
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

// wait blocks until f completes or ctx ends. A nil result means "look in
// the cache again".
func (c *CMM) wait(ctx context.Context, f *flight) error {
	c.coalesced.Add(1)
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.err != nil && !f.retry {
		return f.err
	}
	return ctx.Err()
}

// lead runs fetch for the flight f that this caller owns, stores the entry
// it returns (if any) and releases the waiters, even if fetch panics.
func (c *CMM) lead(ctx context.Context, key cacheKey, f *flight, fetch func() (*entry, error)) (err error) {
	c.misses.Add(1)
	c.calls.Add(1)
	var e *entry
	defer func() {
		if p := recover(); p != nil {
			f.err = fmt.Errorf("caching: underlying materials manager panicked")
			c.finish(key, f, nil)
			panic(p)
		}
		f.err = err
		f.retry = err != nil && ctx.Err() != nil
		c.finish(key, f, e)
	}()
	e, err = fetch()
	return err
}

// finish stores e (when not nil) and completes the flight.
func (c *CMM) finish(key cacheKey, f *flight, e *entry) {
	c.mu.Lock()
	delete(c.flights, key)
	if e != nil {
		e.key = key
		e.created = c.now()
		c.insertLocked(e)
	}
	c.mu.Unlock()
	close(f.done)
}

// takeEncryptionLocked returns a copy of the entry's materials and counts
// one message of n bytes against it, or nil when there is no usable entry
// (an expired or exhausted one is evicted).
func (c *CMM) takeEncryptionLocked(key cacheKey, n uint64) *crypto.EncryptionMaterials {
	el := c.entries[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*entry)
	if e.enc == nil || c.expired(e) || e.messages >= c.maxMsgs || n > c.maxBytes-e.bytes {
		c.removeLocked(el)
		return nil
	}
	e.messages++
	e.bytes += n
	m := cloneEncryption(e.enc)
	if e.messages >= c.maxMsgs || e.bytes >= c.maxBytes {
		c.removeLocked(el) // used up: no later message can use it
	} else {
		c.lru.MoveToFront(el)
	}
	return m
}

func (c *CMM) takeDecryptionLocked(key cacheKey) *crypto.DecryptionMaterials {
	el := c.entries[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*entry)
	if e.dec == nil || c.expired(e) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return cloneDecryption(e.dec)
}

func (c *CMM) expired(e *entry) bool { return !c.now().Before(e.created.Add(c.maxAge)) }

// insertLocked adds e (replacing an entry with the same key), then trims
// expired entries at the cold end and anything over capacity.
func (c *CMM) insertLocked(e *entry) {
	if e.enc != nil && (e.messages >= c.maxMsgs || e.bytes >= c.maxBytes) {
		zeroEntry(e) // the first use already exhausts it
		return
	}
	if old := c.entries[e.key]; old != nil {
		c.removeLocked(old)
	}
	c.entries[e.key] = c.lru.PushFront(e)
	for back := c.lru.Back(); back != nil && back != c.lru.Front() && c.expired(back.Value.(*entry)); back = c.lru.Back() {
		c.removeLocked(back)
	}
	for c.lru.Len() > c.capacity {
		c.removeLocked(c.lru.Back())
	}
}

func (c *CMM) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.key)
	zeroEntry(e)
	c.evictions.Add(1)
}

// zeroEntry clears the cached data key; callers hold their own copies.
func zeroEntry(e *entry) {
	if e.enc != nil {
		clear(e.enc.DataKey)
	}
	if e.dec != nil {
		clear(e.dec.DataKey)
	}
}

// encryptionKey follows the specification's entry identifier (SHA-512 over
// the partition hash, the suite or its absence, and the hash of the
// serialised context), with the commitment policy added: the policy decides
// which suites the underlying manager may choose, so requests under
// different policies must not share materials.
func (c *CMM) encryptionKey(req crypto.EncryptionRequest) (cacheKey, error) {
	ec, err := req.Context.Serialize()
	if err != nil {
		return cacheKey{}, fmt.Errorf("caching: %w", err)
	}
	ecHash := sha512.Sum512(ec)
	h := sha512.New()
	h.Write(c.partition[:])
	if req.Suite == nil {
		h.Write([]byte{0})
	} else {
		h.Write([]byte{1, byte(req.Suite.ID >> 8), byte(req.Suite.ID)})
	}
	h.Write([]byte{byte(req.CommitmentPolicy)})
	h.Write(ecHash[:])
	if len(req.RequiredContextKeys) > 0 {
		// Materials for a message that keeps some pairs out of its header
		// are not those for one that stores them (absent: the identifier
		// stays the specification's).
		h.Write([]byte("required keys"))
		for _, key := range slices.Sorted(slices.Values(req.RequiredContextKeys)) {
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(key))))
			h.Write([]byte(key))
		}
	}
	var k cacheKey
	h.Sum(k[:0])
	return k, nil
}

// decryptionKey is the specification's entry identifier: SHA-512 over the
// partition hash, the suite id, the sorted SHA-512 hashes of the serialised
// EDKs, 64 zero bytes and the hash of the serialised context.
func (c *CMM) decryptionKey(req crypto.DecryptionRequest) (cacheKey, error) {
	ec, err := req.Context.Serialize()
	if err != nil {
		return cacheKey{}, fmt.Errorf("caching: %w", err)
	}
	hashes := make([][sha512.Size]byte, len(req.EncryptedDataKeys))
	for i, edk := range req.EncryptedDataKeys {
		if !edk.WireOK() {
			return cacheKey{}, fmt.Errorf("caching: encrypted data key %d has a field longer than 65535 bytes", i)
		}
		hashes[i] = sha512.Sum512(edk.AppendWire(make([]byte, 0, edk.WireLen())))
	}
	sort.Slice(hashes, func(i, j int) bool { return string(hashes[i][:]) < string(hashes[j][:]) })
	ecHash := sha512.Sum512(ec)
	h := sha512.New()
	h.Write(c.partition[:])
	h.Write([]byte{byte(req.Suite.ID >> 8), byte(req.Suite.ID)})
	for i := range hashes {
		h.Write(hashes[i][:])
	}
	h.Write(make([]byte, sha512.Size))
	h.Write(ecHash[:])
	if len(req.ReproducedContext) > 0 {
		// The materials' context includes the reproduced pairs the header
		// does not store: a request reproducing other values must not be
		// served them (absent: the identifier stays the specification's).
		rc, err := req.ReproducedContext.Serialize()
		if err != nil {
			return cacheKey{}, fmt.Errorf("caching: reproduced context: %w", err)
		}
		rcHash := sha512.Sum512(rc)
		h.Write([]byte("reproduced context"))
		h.Write(rcHash[:])
	}
	var k cacheKey
	h.Sum(k[:0])
	return k, nil
}

func cloneEDKs(in []crypto.EncryptedDataKey) []crypto.EncryptedDataKey {
	if in == nil {
		return nil
	}
	out := make([]crypto.EncryptedDataKey, len(in))
	for i, e := range in {
		out[i] = crypto.EncryptedDataKey{
			ProviderID:   e.ProviderID,
			ProviderInfo: append([]byte(nil), e.ProviderInfo...),
			Ciphertext:   append([]byte(nil), e.Ciphertext...),
		}
	}
	return out
}

func cloneEncryption(m *crypto.EncryptionMaterials) *crypto.EncryptionMaterials {
	return &crypto.EncryptionMaterials{
		Suite:               m.Suite,
		Context:             m.Context.Clone(),
		DataKey:             append([]byte(nil), m.DataKey...),
		EncryptedDataKeys:   cloneEDKs(m.EncryptedDataKeys),
		SigningKey:          m.SigningKey,
		RequiredContextKeys: append([]string(nil), m.RequiredContextKeys...),
	}
}

func cloneDecryption(m *crypto.DecryptionMaterials) *crypto.DecryptionMaterials {
	return &crypto.DecryptionMaterials{
		Suite:           m.Suite,
		Context:         m.Context.Clone(),
		DataKey:         append([]byte(nil), m.DataKey...),
		VerificationKey: m.VerificationKey,
		DecryptedWith:   m.DecryptedWith,
		// Copied: the caller may change its materials.
		RequiredContextKeys: append([]string(nil), m.RequiredContextKeys...),
	}
}

var _ crypto.MaterialsManager = (*CMM)(nil)
