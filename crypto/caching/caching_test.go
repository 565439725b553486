package caching

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
)

var bg = context.Background()

// fakeCMM mints a fresh random data key per call and counts calls. An
// optional gate blocks each call until the test releases it.
type fakeCMM struct {
	encCalls, decCalls atomic.Int64
	gate               chan struct{}
	err                error
	lastReq            crypto.EncryptionRequest
	mu                 sync.Mutex
}

func (f *fakeCMM) GetEncryptionMaterials(ctx context.Context, req crypto.EncryptionRequest) (*crypto.EncryptionMaterials, error) {
	f.encCalls.Add(1)
	f.mu.Lock()
	f.lastReq = req
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	s := req.Suite
	if s == nil {
		s = crypto.DefaultSuite
	}
	dk := make([]byte, s.KeyLen)
	rand.Read(dk)
	return &crypto.EncryptionMaterials{
		Suite: s, Context: req.Context.Clone(), DataKey: dk,
		EncryptedDataKeys: []crypto.EncryptedDataKey{{ProviderID: "fake", ProviderInfo: []byte("k"), Ciphertext: append([]byte(nil), dk...)}},
	}, nil
}

func (f *fakeCMM) DecryptMaterials(ctx context.Context, req crypto.DecryptionRequest) (*crypto.DecryptionMaterials, error) {
	f.decCalls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	for _, e := range req.EncryptedDataKeys {
		if e.ProviderID == "fake" {
			return &crypto.DecryptionMaterials{Suite: req.Suite, Context: req.Context, DataKey: append([]byte(nil), e.Ciphertext...)}, nil
		}
	}
	return nil, fmt.Errorf("fake: %w", crypto.ErrNoMatchingKey)
}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCMM(t *testing.T, under crypto.MaterialsManager, o Options) *CMM {
	t.Helper()
	if o.Capacity == 0 {
		o.Capacity = 100
	}
	if o.MaxAge == 0 {
		o.MaxAge = time.Hour
	}
	c, err := New(under, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func encReq(ec crypto.EncryptionContext, n int64) crypto.EncryptionRequest {
	return crypto.EncryptionRequest{Context: ec, PlaintextLength: n}
}

func mustEnc(t *testing.T, c *CMM, req crypto.EncryptionRequest) *crypto.EncryptionMaterials {
	t.Helper()
	m, err := c.GetEncryptionMaterials(bg, req)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMaxMessages(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{MaxMessagesEncrypted: 100})
	keys := map[string]int{}
	for i := 0; i < 1000; i++ {
		m := mustEnc(t, c, encReq(crypto.EncryptionContext{"job": "bulk"}, 1000))
		keys[string(m.DataKey)]++
	}
	if got := f.encCalls.Load(); got != 10 {
		t.Fatalf("underlying calls %d, want 10", got)
	}
	if len(keys) != 10 {
		t.Fatalf("%d distinct data keys, want 10", len(keys))
	}
	for _, n := range keys {
		if n != 100 {
			t.Fatalf("a data key encrypted %d messages, want 100", n)
		}
	}
	s := c.Stats()
	if s.Hits != 990 || s.Misses != 10 || s.UnderlyingCalls != 10 || s.Bypassed != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The underlying request carries the byte limit as its plaintext length.
	if f.lastReq.PlaintextLength != int64(DefaultMaxBytesEncrypted) {
		t.Fatalf("underlying plaintext length %d", f.lastReq.PlaintextLength)
	}
}

func TestMaxBytes(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{MaxBytesEncrypted: 1000})
	ec := crypto.EncryptionContext{"a": "b"}
	k1 := mustEnc(t, c, encReq(ec, 400)).DataKey
	k2 := mustEnc(t, c, encReq(ec, 400)).DataKey // 800 used
	k3 := mustEnc(t, c, encReq(ec, 300)).DataKey // would be 1100: new key
	k4 := mustEnc(t, c, encReq(ec, 700)).DataKey // 1000 exactly: same as k3
	k5 := mustEnc(t, c, encReq(ec, 1)).DataKey   // k3 used up
	if !bytes.Equal(k1, k2) || bytes.Equal(k2, k3) || !bytes.Equal(k3, k4) || bytes.Equal(k4, k5) {
		t.Fatal("byte limit not applied as expected")
	}
	if got := f.encCalls.Load(); got != 3 {
		t.Fatalf("underlying calls %d, want 3", got)
	}
	// A message larger than the limit bypasses the cache.
	before := c.Stats()
	mustEnc(t, c, encReq(ec, 1001))
	if s := c.Stats(); s.Bypassed != before.Bypassed+1 || f.encCalls.Load() != 4 {
		t.Fatalf("oversized message: %+v", s)
	}
	if k6 := mustEnc(t, c, encReq(ec, 1)).DataKey; !bytes.Equal(k5, k6) {
		t.Fatal("bypass disturbed the cached entry")
	}
}

func TestBypass(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{})
	ec := crypto.EncryptionContext{"a": "b"}
	// Unknown length.
	a := mustEnc(t, c, encReq(ec, -1))
	b := mustEnc(t, c, encReq(ec, -1))
	// Suites without key derivation, on encrypt and decrypt.
	for _, id := range []uint16{0x0014, 0x0046, 0x0078} {
		s := crypto.SuiteByID(id)
		req := crypto.EncryptionRequest{Suite: s, Context: ec, PlaintextLength: 10}
		x, y := mustEnc(t, c, req), mustEnc(t, c, req)
		if bytes.Equal(x.DataKey, y.DataKey) {
			t.Fatalf("suite %s: data key reused", s.Hex())
		}
		dreq := crypto.DecryptionRequest{Suite: s, Context: ec, EncryptedDataKeys: x.EncryptedDataKeys}
		for i := 0; i < 2; i++ {
			if _, err := c.DecryptMaterials(bg, dreq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if bytes.Equal(a.DataKey, b.DataKey) {
		t.Fatal("unknown length: data key reused")
	}
	s := c.Stats()
	if s.Bypassed != 2+6+6 || s.Hits != 0 || s.Entries != 0 || f.decCalls.Load() != 6 {
		t.Fatalf("stats %+v, %d decrypt calls", s, f.decCalls.Load())
	}
}

func TestPartitioning(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{PartitionID: "p1"})
	c2 := newCMM(t, f, Options{PartitionID: "p2"})
	base := crypto.EncryptionRequest{Context: crypto.EncryptionContext{"a": "b"}, PlaintextLength: 1}
	variants := map[string]crypto.EncryptionRequest{
		"base":           base,
		"other value":    {Context: crypto.EncryptionContext{"a": "c"}, PlaintextLength: 1},
		"extra pair":     {Context: crypto.EncryptionContext{"a": "b", "c": "d"}, PlaintextLength: 1},
		"empty context":  {PlaintextLength: 1},
		"suite 0x0478":   {Suite: crypto.SuiteByID(0x0478), Context: base.Context, PlaintextLength: 1},
		"suite 0x0578":   {Suite: crypto.SuiteByID(0x0578), Context: base.Context, PlaintextLength: 1},
		"other policy":   {Context: base.Context, PlaintextLength: 1, CommitmentPolicy: crypto.RequireEncryptAllowDecrypt},
		"key/value swap": {Context: crypto.EncryptionContext{"b": "a"}, PlaintextLength: 1},
	}
	seen := map[string]string{}
	for name, req := range variants {
		k := string(mustEnc(t, c, req).DataKey)
		if prev, ok := seen[k]; ok {
			t.Fatalf("%s and %s share a data key", name, prev)
		}
		seen[k] = name
		// Same request again: same key.
		if again := mustEnc(t, c, req).DataKey; string(again) != k {
			t.Fatalf("%s: second request got another data key", name)
		}
	}
	if k := string(mustEnc(t, c2, base).DataKey); seen[k] != "" {
		t.Fatal("another partition shares a data key")
	}
	// Two managers with no partition id do not share either.
	d1, d2 := newCMM(t, f, Options{}), newCMM(t, f, Options{})
	if bytes.Equal(mustEnc(t, d1, base).DataKey, mustEnc(t, d2, base).DataKey) {
		t.Fatal("default partitions share a data key")
	}
}

func TestCapacityLRU(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{Capacity: 2})
	ctx := func(i int) crypto.EncryptionContext { return crypto.EncryptionContext{"n": fmt.Sprint(i)} }
	k0 := mustEnc(t, c, encReq(ctx(0), 1)).DataKey
	mustEnc(t, c, encReq(ctx(1), 1))
	mustEnc(t, c, encReq(ctx(0), 1)) // 0 is now most recent
	mustEnc(t, c, encReq(ctx(2), 1)) // evicts 1
	if s := c.Stats(); s.Entries != 2 || s.Evictions != 1 {
		t.Fatalf("stats %+v", s)
	}
	calls := f.encCalls.Load()
	if k := mustEnc(t, c, encReq(ctx(0), 1)).DataKey; !bytes.Equal(k, k0) || f.encCalls.Load() != calls {
		t.Fatal("recently used entry was evicted")
	}
	mustEnc(t, c, encReq(ctx(1), 1))
	if f.encCalls.Load() != calls+1 {
		t.Fatal("least recently used entry was not evicted")
	}
}

func TestMaxAge(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	f := &fakeCMM{}
	c := newCMM(t, f, Options{MaxAge: time.Minute, Clock: clk.Now})
	ec := crypto.EncryptionContext{"a": "b"}
	k1 := mustEnc(t, c, encReq(ec, 1)).DataKey
	clk.Advance(59 * time.Second)
	if k := mustEnc(t, c, encReq(ec, 1)).DataKey; !bytes.Equal(k, k1) {
		t.Fatal("entry expired early")
	}
	clk.Advance(time.Second)
	if k := mustEnc(t, c, encReq(ec, 1)).DataKey; bytes.Equal(k, k1) {
		t.Fatal("entry used at its max age")
	}
	// Decryption entries expire too.
	m := mustEnc(t, c, encReq(ec, 1))
	dreq := crypto.DecryptionRequest{Suite: m.Suite, Context: ec, EncryptedDataKeys: m.EncryptedDataKeys}
	for i := 0; i < 3; i++ {
		if _, err := c.DecryptMaterials(bg, dreq); err != nil {
			t.Fatal(err)
		}
	}
	if f.decCalls.Load() != 1 {
		t.Fatalf("decrypt calls %d, want 1", f.decCalls.Load())
	}
	clk.Advance(time.Minute)
	if _, err := c.DecryptMaterials(bg, dreq); err != nil || f.decCalls.Load() != 2 {
		t.Fatalf("expired decrypt entry reused: %v, %d calls", err, f.decCalls.Load())
	}
}

func TestCopiesAreIndependent(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{})
	ec := crypto.EncryptionContext{"a": "b"}
	m1 := mustEnc(t, c, encReq(ec, 1))
	want := bytes.Clone(m1.DataKey)
	clear(m1.DataKey)
	m1.Context["x"] = "y"
	m1.EncryptedDataKeys[0].Ciphertext[0] ^= 0xFF
	m1.EncryptedDataKeys = append(m1.EncryptedDataKeys, crypto.EncryptedDataKey{ProviderID: "junk"})
	m2 := mustEnc(t, c, encReq(ec, 1))
	if !bytes.Equal(m2.DataKey, want) || len(m2.Context) != 1 || len(m2.EncryptedDataKeys) != 1 || !bytes.Equal(m2.EncryptedDataKeys[0].Ciphertext, want) {
		t.Fatal("a caller's changes leaked into the cache")
	}
	clear(m2.DataKey)
	m3 := mustEnc(t, c, encReq(ec, 1))
	if !bytes.Equal(m3.DataKey, want) {
		t.Fatal("zeroing a hit's data key changed the cache")
	}
	// Same for decryption.
	dreq := crypto.DecryptionRequest{Suite: m3.Suite, Context: ec, EncryptedDataKeys: m3.EncryptedDataKeys}
	d1, _ := c.DecryptMaterials(bg, dreq)
	clear(d1.DataKey)
	if d2, _ := c.DecryptMaterials(bg, dreq); !bytes.Equal(d2.DataKey, want) {
		t.Fatal("zeroing a decrypt hit changed the cache")
	}
}

func TestDecryptCaching(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{})
	ec := crypto.EncryptionContext{"a": "b"}
	m := mustEnc(t, c, encReq(ec, 1))
	other := crypto.EncryptedDataKey{ProviderID: "other", ProviderInfo: []byte("x"), Ciphertext: []byte("y")}
	dreq := crypto.DecryptionRequest{Suite: m.Suite, Context: ec, EncryptedDataKeys: []crypto.EncryptedDataKey{m.EncryptedDataKeys[0], other}}
	for i := 0; i < 5; i++ {
		d, err := c.DecryptMaterials(bg, dreq)
		if err != nil || !bytes.Equal(d.DataKey, m.DataKey) {
			t.Fatal(err)
		}
	}
	if f.decCalls.Load() != 1 {
		t.Fatalf("decrypt calls %d, want 1", f.decCalls.Load())
	}
	// EDK order does not matter; a different EDK set, context or suite does.
	swapped := dreq
	swapped.EncryptedDataKeys = []crypto.EncryptedDataKey{other, m.EncryptedDataKeys[0]}
	c.DecryptMaterials(bg, swapped)
	if f.decCalls.Load() != 1 {
		t.Fatal("EDK order changed the cache key")
	}
	for name, r := range map[string]crypto.DecryptionRequest{
		"fewer EDKs":    {Suite: m.Suite, Context: ec, EncryptedDataKeys: m.EncryptedDataKeys},
		"other context": {Suite: m.Suite, Context: crypto.EncryptionContext{"a": "c"}, EncryptedDataKeys: dreq.EncryptedDataKeys},
		"other suite":   {Suite: crypto.SuiteByID(0x0478), Context: ec, EncryptedDataKeys: dreq.EncryptedDataKeys},
	} {
		n := f.decCalls.Load()
		if _, err := c.DecryptMaterials(bg, r); err != nil {
			t.Fatal(err)
		}
		if f.decCalls.Load() != n+1 {
			t.Fatalf("%s: served from another message's entry", name)
		}
	}
	// Failures are not cached.
	bad := crypto.DecryptionRequest{Suite: m.Suite, Context: ec, EncryptedDataKeys: []crypto.EncryptedDataKey{other}}
	for i := 0; i < 2; i++ {
		if _, err := c.DecryptMaterials(bg, bad); !errors.Is(err, crypto.ErrNoMatchingKey) {
			t.Fatalf("got %v", err)
		}
	}
	if s := c.Stats(); s.Hits < 5 {
		t.Fatalf("stats %+v", s)
	}
}

// waitFor polls cond (no timing assertion: it fails only if cond never
// holds within a generous bound).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentColdMissesCoalesce(t *testing.T) {
	const workers = 64
	f := &fakeCMM{gate: make(chan struct{})}
	c := newCMM(t, f, Options{MaxMessagesEncrypted: 1000})
	ec := crypto.EncryptionContext{"job": "cold"}
	keys := make([][]byte, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := c.GetEncryptionMaterials(bg, encReq(ec, 100))
			errs[i] = err
			if err == nil {
				keys[i] = m.DataKey
			}
		}()
	}
	// One worker is inside the underlying call; the rest wait for it.
	waitFor(t, "63 waiting workers", func() bool { return c.Stats().Coalesced == workers-1 })
	close(f.gate)
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("workers got different data keys")
		}
	}
	if got := f.encCalls.Load(); got != 1 {
		t.Fatalf("underlying calls %d, want 1", got)
	}
	if s := c.Stats(); s.Misses != 1 || s.Hits != workers-1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestConcurrentMessageLimit: under contention the message limit still
// holds exactly, and every miss is coalesced per entry.
func TestConcurrentMessageLimit(t *testing.T) {
	const workers, perWorker, limit = 16, 100, 50 // 800 messages per shard
	f := &fakeCMM{}
	c := newCMM(t, f, Options{MaxMessagesEncrypted: limit, Capacity: 4})
	var mu sync.Mutex
	uses := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				ec := crypto.EncryptionContext{"shard": fmt.Sprint(i % 2)}
				m, err := c.GetEncryptionMaterials(bg, encReq(ec, 10))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				uses[string(m.DataKey)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range uses {
		if n > limit {
			t.Fatalf("a data key encrypted %d messages, limit %d", n, limit)
		}
		total += n
	}
	if total != workers*perWorker {
		t.Fatalf("%d messages, want %d", total, workers*perWorker)
	}
	// Every data key is used to its limit: 800/50 keys per shard, 2 shards.
	if got := f.encCalls.Load(); got != 2*16 {
		t.Fatalf("underlying calls %d, want 32", got)
	}
}

func TestConcurrentDecryptCoalesce(t *testing.T) {
	const workers = 32
	f := &fakeCMM{gate: make(chan struct{})}
	c := newCMM(t, f, Options{})
	dk := bytes.Repeat([]byte{7}, 32)
	req := crypto.DecryptionRequest{Suite: crypto.DefaultSuite, EncryptedDataKeys: []crypto.EncryptedDataKey{{ProviderID: "fake", Ciphertext: dk}}}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := c.DecryptMaterials(bg, req)
			if err != nil || !bytes.Equal(m.DataKey, dk) {
				bad.Add(1)
			}
		}()
	}
	waitFor(t, "waiting decrypt workers", func() bool { return c.Stats().Coalesced == workers-1 })
	close(f.gate)
	wg.Wait()
	if bad.Load() != 0 || f.decCalls.Load() != 1 {
		t.Fatalf("%d failures, %d underlying calls", bad.Load(), f.decCalls.Load())
	}
}

func TestErrorsShareAndCancel(t *testing.T) {
	boom := errors.New("kms throttled")
	f := &fakeCMM{gate: make(chan struct{}), err: boom}
	c := newCMM(t, f, Options{})
	ec := crypto.EncryptionContext{"a": "b"}
	const workers = 8
	errs := make(chan error, workers)
	for i := 0; i < workers; i++ {
		go func() { _, err := c.GetEncryptionMaterials(bg, encReq(ec, 1)); errs <- err }()
	}
	waitFor(t, "waiting workers", func() bool { return c.Stats().Coalesced == workers-1 })
	close(f.gate)
	for i := 0; i < workers; i++ {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
	}
	if f.encCalls.Load() != 1 || c.Stats().Entries != 0 {
		t.Fatalf("a shared failure: %d calls, %d entries", f.encCalls.Load(), c.Stats().Entries)
	}

	// The leader's cancellation is not passed on: a waiter fetches for
	// itself.
	f2 := &fakeCMM{gate: make(chan struct{})}
	c2 := newCMM(t, f2, Options{})
	lctx, cancel := context.WithCancel(bg)
	leaderErr := make(chan error, 1)
	go func() { _, err := c2.GetEncryptionMaterials(lctx, encReq(ec, 1)); leaderErr <- err }()
	waitFor(t, "leader in the underlying call", func() bool { return f2.encCalls.Load() == 1 })
	waiterErr := make(chan error, 1)
	go func() { _, err := c2.GetEncryptionMaterials(bg, encReq(ec, 1)); waiterErr <- err }()
	waitFor(t, "waiter", func() bool { return c2.Stats().Coalesced == 1 })
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	waitFor(t, "waiter's own fetch", func() bool { return f2.encCalls.Load() == 2 })
	close(f2.gate)
	if err := <-waiterErr; err != nil {
		t.Fatalf("waiter inherited the leader's cancellation: %v", err)
	}
	// A waiter whose own context ends stops waiting.
	f3 := &fakeCMM{gate: make(chan struct{})}
	c3 := newCMM(t, f3, Options{})
	go c3.GetEncryptionMaterials(bg, encReq(ec, 1))
	waitFor(t, "leader", func() bool { return f3.encCalls.Load() == 1 })
	wctx, wcancel := context.WithCancel(bg)
	done := make(chan error, 1)
	go func() { _, err := c3.GetEncryptionMaterials(wctx, encReq(ec, 1)); done <- err }()
	waitFor(t, "waiter", func() bool { return c3.Stats().Coalesced == 1 })
	wcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(f3.gate)
}

func TestNewValidation(t *testing.T) {
	f := &fakeCMM{}
	for name, o := range map[string]Options{
		"no capacity":  {MaxAge: time.Minute},
		"no max age":   {Capacity: 1},
		"bytes > 2^63": {Capacity: 1, MaxAge: time.Minute, MaxBytesEncrypted: 1 << 63},
	} {
		if _, err := New(f, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(nil, Options{Capacity: 1, MaxAge: time.Minute}); err == nil {
		t.Error("nil underlying accepted")
	}
	// MaxMessagesEncrypted = 1: nothing is ever reused.
	c := newCMM(t, f, Options{MaxMessagesEncrypted: 1})
	a := mustEnc(t, c, encReq(nil, 1))
	b := mustEnc(t, c, encReq(nil, 1))
	if bytes.Equal(a.DataKey, b.DataKey) || c.Stats().Entries != 0 {
		t.Fatal("a one-message key was reused")
	}
}

// TestHitsRacingEvictionKeepTheirKey: a hit copies its data key while it
// holds the lock, so an eviction that zeroes the entry's key right after
// (capacity 1 and two contexts evict all the time, the message limit
// exhausts entries) never hands out a zeroed or foreign key: every
// materials' key is the one its encrypted data key wraps (the fake's
// ciphertext is the key itself).
func TestHitsRacingEvictionKeepTheirKey(t *testing.T) {
	f := &fakeCMM{}
	c := newCMM(t, f, Options{MaxMessagesEncrypted: 3, Capacity: 1})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ec := crypto.EncryptionContext{"shard": fmt.Sprint((w + i) % 2)}
				m, err := c.GetEncryptionMaterials(bg, encReq(ec, 10))
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(m.DataKey, m.EncryptedDataKeys[0].Ciphertext) || bytes.Equal(m.DataKey, make([]byte, len(m.DataKey))) {
					t.Errorf("encryption hit: data key %x, its encrypted data key wraps %x", m.DataKey, m.EncryptedDataKeys[0].Ciphertext)
					return
				}
				edk := m.EncryptedDataKeys[0]
				d, err := c.DecryptMaterials(bg, crypto.DecryptionRequest{Suite: m.Suite, Context: m.Context, EncryptedDataKeys: []crypto.EncryptedDataKey{edk}})
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(d.DataKey, edk.Ciphertext) {
					t.Errorf("decryption: data key %x, want %x", d.DataKey, edk.Ciphertext)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Hits == 0 || s.Evictions == 0 {
		t.Fatalf("stats %+v: want hits racing evictions", s)
	}
}
