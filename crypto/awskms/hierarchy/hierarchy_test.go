package hierarchy_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/crypto/keystore"
	"github.com/encjob/encjob/crypto/keystore/keystoretest"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const seed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
`

const keyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

type env struct {
	ddb   *keystoretest.Server
	kms   *kmsemutest.Server
	store *keystore.Store
}

func setup(t testing.TB) *env {
	t.Helper()
	e := &env{kms: kmsemutest.Start(t, seed), ddb: keystoretest.Start(t)}
	e.ddb.CreateTable(t, "branch-keys")
	s, err := keystore.New(keystore.Config{Table: "branch-keys", LogicalName: "ks", KMS: keystore.KMSConfig{KeyARN: keyARN},
		DynamoDB: e.ddb.Client, KMSClient: e.kms.Client("us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	return e
}

func (e *env) reset(t testing.TB) {
	e.kms.Emu.ResetCalls()
	e.ddb.ResetCalls(t)
}

// calls returns the KMS and DynamoDB calls counted at the servers.
func (e *env) calls(t testing.TB) (kms, ddb int64) {
	for _, n := range e.kms.Emu.Calls() {
		kms += n
	}
	for _, n := range e.ddb.Calls(t) {
		ddb += n
	}
	return kms, ddb
}

func keyring(t testing.TB, cfg hierarchy.Config) *hierarchy.Keyring {
	t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	k, err := hierarchy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encrypt(t testing.TB, kr crypto.Keyring, pt []byte, ec crypto.EncryptionContext) []byte {
	t.Helper()
	msg, err := crypto.Encrypt(context.Background(), pt, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(kr), Context: ec,
		Suite: crypto.SuiteByID(0x0478)})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func decrypt(kr crypto.Keyring, msg []byte) ([]byte, *crypto.Header, error) {
	return crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr)})
}

func edkInfo(t testing.TB, h *crypto.Header) hierarchy.EDKInfo {
	t.Helper()
	if len(h.EncryptedDataKeys) != 1 {
		t.Fatalf("%d EDKs", len(h.EncryptedDataKeys))
	}
	info, err := hierarchy.ParseEDK(h.EncryptedDataKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestRoundTripAndRotation(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, err := e.store.CreateKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := e.store.GetActiveBranchKey(ctx, id)
	kr := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: id, TTL: time.Nanosecond})
	ec := crypto.EncryptionContext{"purpose": "test"}
	old := encrypt(t, kr, []byte("before rotation"), ec)
	pt, h, err := decrypt(kr, old)
	if err != nil || string(pt) != "before rotation" {
		t.Fatalf("%q %v", pt, err)
	}
	if info := edkInfo(t, h); info.BranchKeyID != id || info.Version != v1.Version {
		t.Fatalf("EDK info %+v, want %s %s", info, id, v1.Version)
	}
	if !kr.MatchesEDK(h.EncryptedDataKeys[0]) || h.DecryptedWith != "aws-kms-hierarchy/"+id+":"+v1.Version {
		t.Fatalf("MatchesEDK false or DecryptedWith %q", h.DecryptedWith)
	}
	v2, err := e.store.VersionKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // past the 1 ns TTL
	fresh := encrypt(t, kr, []byte("after rotation"), ec)
	_, h2, err := decrypt(kr, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if info := edkInfo(t, h2); info.Version != v2 {
		t.Fatalf("new message under version %s, want the new active %s", info.Version, v2)
	}
	if pt, _, err := decrypt(kr, old); err != nil || string(pt) != "before rotation" {
		t.Fatalf("old-version message after rotation: %q %v", pt, err)
	}
}

func TestSupplierAndNoMatch(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a, _ := e.store.CreateKey(ctx, "tenant-a", map[string]string{"tenant": "a"})
	b, _ := e.store.CreateKey(ctx, "tenant-b", map[string]string{"tenant": "b"})
	kr := keyring(t, hierarchy.Config{Store: e.store, Supplier: hierarchy.ContextKey{Key: "tenant",
		Map: map[string]string{"a": a, "b": b}}})
	for tenant, want := range map[string]string{"a": a, "b": b} {
		msg := encrypt(t, kr, []byte("x"), crypto.EncryptionContext{"tenant": tenant})
		_, h, err := decrypt(kr, msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := edkInfo(t, h).BranchKeyID; got != want {
			t.Fatalf("tenant %s under %s, want %s", tenant, got, want)
		}
	}
	if _, err := crypto.Encrypt(ctx, []byte("x"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(kr),
		Context: crypto.EncryptionContext{"tenant": "c"}}); err == nil {
		t.Fatal("a tenant without a branch key encrypted")
	}
	// A keyring of branch key a does not decrypt b's messages: no match,
	// no key store call.
	msgB := encrypt(t, kr, []byte("x"), crypto.EncryptionContext{"tenant": "b"})
	onlyA := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: a})
	e.reset(t)
	_, _, err := decrypt(onlyA, msgB)
	var nm *hierarchy.NoMatchError
	if !errors.Is(err, crypto.ErrNoMatchingKey) || !errors.As(err, &nm) || len(nm.Skipped) != 1 || nm.Skipped[0] != b {
		t.Fatalf("other branch key: %v", err)
	}
	if k, d := e.calls(t); k != 0 || d != 0 {
		t.Fatalf("no-match decrypt made %d KMS and %d DynamoDB calls", k, d)
	}
}

func TestTypedErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	unknown := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: "no-such-branch-key"})
	_, err := crypto.Encrypt(ctx, []byte("x"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(unknown)})
	var ke *keystore.Error
	if !errors.Is(err, keystore.ErrNotFound) || !errors.As(err, &ke) || ke.BranchKeyID != "no-such-branch-key" {
		t.Fatalf("unknown branch key: %v", err)
	}
	id, _ := e.store.CreateKey(ctx, "", nil)
	kr := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: id})
	msg := encrypt(t, kr, []byte("x"), nil)
	// A message whose EDK names a version the store does not have.
	_, h, _ := decrypt(kr, msg)
	edk := h.EncryptedDataKeys[0]
	ct := bytes.Clone(edk.Ciphertext)
	ct[28] ^= 0xff // first byte of the version
	if _, err := unwrapWith(kr, h, ct); !errors.Is(err, keystore.ErrNotFound) || !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("unknown version: %v", err)
	}
	ct = bytes.Clone(edk.Ciphertext)
	ct[len(ct)-1] ^= 1
	if _, err := unwrapWith(kr, h, ct); err == nil || !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("tampered EDK: %v", err)
	}
	// The right EDK with another encryption context does not unwrap.
	m := &crypto.DecryptionMaterials{Suite: h.Suite, Context: crypto.EncryptionContext{"x": "y"}}
	if err := kr.OnDecrypt(ctx, m, []crypto.EncryptedDataKey{edk}); err == nil {
		t.Fatal("EDK unwrapped under another encryption context")
	}
}

func unwrapWith(kr *hierarchy.Keyring, h *crypto.Header, ct []byte) ([]byte, error) {
	m := &crypto.DecryptionMaterials{Suite: h.Suite, Context: h.Context}
	edk := h.EncryptedDataKeys[0]
	edk.Ciphertext = ct
	err := kr.OnDecrypt(context.Background(), m, []crypto.EncryptedDataKey{edk})
	return m.DataKey, err
}

// TestColdCacheCoalesced: 64 workers hitting a cold cache at once make one
// key store read (one GetItem, one KMS Decrypt), on encrypt and on decrypt.
func TestColdCacheCoalesced(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, _ := e.store.CreateKey(ctx, "", nil)
	enc := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: id})
	dec := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: id})
	msgs := make([][]byte, 64)
	e.reset(t)
	parallel(64, func(i int) {
		msgs[i] = encrypt(t, enc, []byte("m"), crypto.EncryptionContext{"i": string(rune('a' + i%26))})
	})
	checkOneRead(t, e, "encrypt")
	e.reset(t)
	parallel(64, func(i int) {
		if _, _, err := decrypt(dec, msgs[i]); err != nil {
			t.Error(err)
		}
	})
	checkOneRead(t, e, "decrypt")
}

func checkOneRead(t *testing.T, e *env, what string) {
	t.Helper()
	ddb := e.ddb.Calls(t)
	if ddb["GetItem"] != 1 || e.kms.Emu.CallCount("Decrypt") != 1 {
		t.Fatalf("%s: 64 workers on a cold cache made %d GetItem and %d KMS Decrypt calls, want 1 and 1", what, ddb["GetItem"], e.kms.Emu.CallCount("Decrypt"))
	}
}

func parallel(n int, f func(int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() { <-start; f(i) })
	}
	close(start)
	wg.Wait()
}

// TestReencrypt10000Calls: re-encrypting 10,000 messages under one branch
// key (decrypt under the old version, encrypt under the new active one,
// eight workers) costs two key store reads: two GetItem and two KMS Decrypt
// calls in all, counted at the servers.
func TestReencrypt10000Calls(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	id, _ := e.store.CreateKey(ctx, "", nil)
	kr := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: id, TTL: time.Hour})
	const n = 10000
	msgs := make([][]byte, n)
	parallel(8, func(w int) {
		for i := w; i < n; i += 8 {
			msgs[i] = encrypt(t, kr, []byte("message"), crypto.EncryptionContext{"n": "x"})
		}
	})
	v2, err := e.store.VersionKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh keyring (a new job run) re-encrypts everything.
	job := keyring(t, hierarchy.Config{Store: e.store, BranchKeyID: id, TTL: time.Hour})
	e.reset(t)
	out := make([][]byte, n)
	parallel(8, func(w int) {
		for i := w; i < n; i += 8 {
			pt, h, err := decrypt(job, msgs[i])
			if err != nil {
				t.Error(err)
				return
			}
			out[i] = encrypt(t, job, pt, h.Context)
		}
	})
	kmsCalls, ddbCalls := e.calls(t)
	t.Logf("re-encrypting %d messages: %d KMS calls %v, %d DynamoDB calls %v", n, kmsCalls, nonZero(e.kms.Emu.Calls()), ddbCalls, e.ddb.Calls(t))
	if kmsCalls != 2 || ddbCalls != 2 {
		t.Fatalf("re-encrypting %d messages: %d KMS and %d DynamoDB calls, want 2 and 2", n, kmsCalls, ddbCalls)
	}
	_, h, err := decrypt(job, out[n-1])
	if err != nil || edkInfo(t, h).Version != v2 {
		t.Fatalf("re-encrypted message not under the new version: %v", err)
	}
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func TestConfigErrors(t *testing.T) {
	e := setup(t)
	for name, cfg := range map[string]hierarchy.Config{
		"no store":     {BranchKeyID: "x", TTL: time.Second},
		"no id":        {Store: e.store, TTL: time.Second},
		"both":         {Store: e.store, BranchKeyID: "x", Supplier: hierarchy.ContextKey{Key: "k"}, TTL: time.Second},
		"no ttl":       {Store: e.store, BranchKeyID: "x"},
		"negative ttl": {Store: e.store, BranchKeyID: "x", TTL: -time.Second},
	} {
		if _, err := hierarchy.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
