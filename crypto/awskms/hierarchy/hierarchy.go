// Package hierarchy is the AWS KMS Hierarchical keyring (provider id
// "aws-kms-hierarchy"), wire-compatible with the other AWS Encryption SDKs:
// data keys are wrapped (AES-256-GCM under a key derived per data key with
// a counter-mode KDF) by branch keys kept in a DynamoDB branch key store
// (package keystore) and themselves protected by an AWS KMS key. Branch keys
// are cached for a required TTL, so KMS and DynamoDB are called once per
// branch key version and cache period, not once per message.
//
// An encrypted data key carries the branch key id as provider info and
// salt ‖ IV ‖ version ‖ wrapped key ‖ tag as ciphertext. Encryption uses the
// active version of the configured branch key id, or of the id a Supplier
// chooses from each message's encryption context; decryption uses whichever
// version the EDK names.
package hierarchy

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keystore"
)

// ProviderID is the provider id of hierarchical keyring EDKs.
const ProviderID = "aws-kms-hierarchy"

// Store is the part of *keystore.Store the keyring uses.
type Store interface {
	GetActiveBranchKey(ctx context.Context, id string) (*keystore.BranchKey, error)
	GetBranchKeyVersion(ctx context.Context, id, version string) (*keystore.BranchKey, error)
	// LogicalName is the logical key store name (part of cache ids).
	LogicalName() string
}

var _ Store = (*keystore.Store)(nil)

// Supplier chooses the branch key id of a message from its encryption
// context (multi-tenant use: one branch key per tenant). It must be
// deterministic: decryption asks it again with the message's context.
type Supplier interface {
	BranchKeyID(ec crypto.EncryptionContext) (string, error)
}

// ContextKey is a Supplier that takes the branch key id from one
// encryption context key, optionally through a map from context values to
// branch key ids (a value missing from a non-nil map is an error).
type ContextKey struct {
	Key string
	Map map[string]string
}

// BranchKeyID implements Supplier.
func (s ContextKey) BranchKeyID(ec crypto.EncryptionContext) (string, error) {
	v, ok := ec[s.Key]
	if !ok {
		return "", fmt.Errorf("hierarchy: the encryption context has no %q key to choose the branch key by", s.Key)
	}
	if s.Map == nil {
		if v == "" {
			return "", fmt.Errorf("hierarchy: encryption context key %q is empty", s.Key)
		}
		return v, nil
	}
	id, ok := s.Map[v]
	if !ok {
		return "", fmt.Errorf("hierarchy: no branch key configured for %s=%q", s.Key, v)
	}
	return id, nil
}

// Config configures a keyring. Exactly one of BranchKeyID and Supplier must
// be set; TTL must be positive.
type Config struct {
	Store       Store
	BranchKeyID string
	Supplier    Supplier
	// TTL: how long a branch key is used from the cache before it is read
	// again (an encrypting keyring sees a rotation at most TTL late).
	TTL time.Duration
	// Cache: a cache shared with other keyrings (entries are shared only
	// between keyrings with the same PartitionID, logical key store name
	// and branch key id); nil = a cache of CacheSize entries for this
	// keyring alone.
	Cache     *Cache
	CacheSize int // entries of the keyring's own cache; 0 = DefaultCacheSize
	// PartitionID separates keyrings sharing a Cache; nil = 16 random bytes
	// (no sharing).
	PartitionID []byte
}

// Keyring is a hierarchical keyring. It is safe for concurrent use; use one
// keyring (or one Cache) for all workers so that they share branch keys.
type Keyring struct {
	store     Store
	id        string
	supplier  Supplier
	ttl       time.Duration
	cache     *Cache
	partition []byte
}

// New validates cfg. It makes no call.
func New(cfg Config) (*Keyring, error) {
	if cfg.Store == nil {
		return nil, errors.New("hierarchy: no key store")
	}
	if (cfg.BranchKeyID == "") == (cfg.Supplier == nil) {
		return nil, errors.New("hierarchy: set either a branch key id or a branch key id supplier")
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("hierarchy: cache TTL %v must be positive", cfg.TTL)
	}
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("hierarchy: cache size %d must not be negative", cfg.CacheSize)
	}
	k := &Keyring{store: cfg.Store, id: cfg.BranchKeyID, supplier: cfg.Supplier, ttl: cfg.TTL,
		cache: cfg.Cache, partition: append([]byte(nil), cfg.PartitionID...)}
	if k.cache == nil {
		k.cache = NewCache(cfg.CacheSize)
	}
	if cfg.PartitionID == nil {
		k.partition = make([]byte, 16)
		if _, err := rand.Read(k.partition); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Cache returns the keyring's cache.
func (k *Keyring) Cache() *Cache { return k.cache }

// branchKeyID is the configured id or the supplier's choice for ec.
func (k *Keyring) branchKeyID(ec crypto.EncryptionContext) (string, error) {
	if k.supplier == nil {
		return k.id, nil
	}
	id, err := k.supplier.BranchKeyID(ec)
	if err == nil && id == "" {
		err = errors.New("hierarchy: the branch key id supplier returned an empty id")
	}
	return id, err
}

// cacheID is the cache entry identifier of the specification's appendix A:
// SHA-384(resource 0x02 ‖ 0 ‖ scope ‖ 0 ‖ partition ‖ 0 ‖ logical name ‖ 0 ‖
// branch key id [‖ 0 ‖ version]), scope 1 for encrypt, 2 for decrypt.
func (k *Keyring) cacheID(scope byte, id, version string) [sha512.Size384]byte {
	b := []byte{0x02, 0, scope, 0}
	b = append(b, k.partition...)
	b = append(b, 0)
	b = append(b, k.store.LogicalName()...)
	b = append(b, 0)
	b = append(b, id...)
	if scope == 2 {
		b = append(b, 0)
		b = append(b, version...)
	}
	return sha512.Sum384(b)
}

// OnEncrypt implements crypto.Keyring: it wraps the data key (generating
// it if needed) under the active version of the branch key.
func (k *Keyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	if m.Suite == nil {
		return errors.New("hierarchy: encryption materials have no algorithm suite")
	}
	if m.DataKey != nil && len(m.DataKey) != m.Suite.KeyLen {
		return fmt.Errorf("hierarchy: data key is %d bytes, suite %s needs %d", len(m.DataKey), m.Suite.Hex(), m.Suite.KeyLen)
	}
	id, err := k.branchKeyID(m.Context)
	if err != nil {
		return err
	}
	bk, err := k.cache.get(ctx, k.cacheID(1, id, ""), k.ttl, func(ctx context.Context) (*keystore.BranchKey, error) {
		return k.store.GetActiveBranchKey(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("hierarchy: branch key %q: %w", id, err)
	}
	dk := m.DataKey
	if dk == nil {
		dk = make([]byte, m.Suite.KeyLen)
		if _, err := rand.Read(dk); err != nil {
			return err
		}
	}
	edk, err := wrap(bk, dk, m.Context)
	if err != nil {
		if m.DataKey == nil {
			clear(dk)
		}
		return fmt.Errorf("hierarchy: wrap under branch key %q version %s: %w", id, bk.Version, err)
	}
	m.DataKey = dk
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, edk)
	return nil
}

// OnDecrypt implements crypto.Keyring: it unwraps the first EDK of its
// branch key it can, with the version that EDK names. When none unwraps it
// returns a *NoMatchError (wrapping crypto.ErrNoMatchingKey) holding every
// failure, key store errors (*keystore.Error) included.
func (k *Keyring) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if m.DataKey != nil {
		return errors.New("hierarchy: decryption materials already have a data key")
	}
	if m.Suite == nil {
		return errors.New("hierarchy: decryption materials have no algorithm suite")
	}
	id, err := k.branchKeyID(m.Context)
	if err != nil {
		return &NoMatchError{Failures: []error{err}}
	}
	nm := &NoMatchError{BranchKeyID: id}
	for i, edk := range edks {
		info, err := ParseEDK(edk)
		if err != nil || info.BranchKeyID != id {
			if err == nil {
				nm.Skipped = append(nm.Skipped, info.BranchKeyID)
			}
			continue
		}
		dk, err := k.decryptOne(ctx, m, info, edk)
		if err == nil {
			m.DataKey, m.DecryptedWith = dk, info.Label()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		nm.Failures = append(nm.Failures, fmt.Errorf("encrypted data key %d (branch key %q version %s): %w", i, id, info.Version, err))
	}
	return nm
}

func (k *Keyring) decryptOne(ctx context.Context, m *crypto.DecryptionMaterials, info EDKInfo, edk crypto.EncryptedDataKey) ([]byte, error) {
	bk, err := k.cache.get(ctx, k.cacheID(2, info.BranchKeyID, info.Version), k.ttl, func(ctx context.Context) (*keystore.BranchKey, error) {
		return k.store.GetBranchKeyVersion(ctx, info.BranchKeyID, info.Version)
	})
	if err != nil {
		return nil, err
	}
	return unwrap(bk, edk.Ciphertext, m.Context, m.Suite.KeyLen)
}

// MatchesEDK implements crypto.EDKMatcher: a hierarchical EDK of the
// configured branch key id (any version). With a supplier, whose choice
// depends on the message's context, every well-formed hierarchical EDK
// matches.
func (k *Keyring) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	return NewMatcher(k.id).MatchesEDK(edk)
}

// Matcher is the key-less EDK matcher of a hierarchical keyring.
type Matcher struct{ BranchKeyID string }

// NewMatcher matches hierarchical EDKs of branchKeyID, any version; ""
// (a keyring with a supplier) matches every well-formed hierarchical EDK.
func NewMatcher(branchKeyID string) Matcher { return Matcher{BranchKeyID: branchKeyID} }

// MatchesEDK implements crypto.EDKMatcher.
func (m Matcher) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	info, err := ParseEDK(edk)
	return err == nil && (m.BranchKeyID == "" || info.BranchKeyID == m.BranchKeyID)
}

// NoMatchError says why no EDK was unwrapped.
type NoMatchError struct {
	BranchKeyID string   // the branch key looked for
	Skipped     []string // branch key ids of hierarchical EDKs of other branch keys
	Failures    []error  // EDKs of the branch key that failed, and supplier errors
}

func (e *NoMatchError) Error() string {
	var b strings.Builder
	b.WriteString(crypto.ErrNoMatchingKey.Error())
	fmt.Fprintf(&b, " (hierarchical keyring, branch key %q", e.BranchKeyID)
	if len(e.Skipped) > 0 {
		fmt.Fprintf(&b, "; the message's hierarchical keys are of branch keys %q", e.Skipped)
	}
	b.WriteString(")")
	for _, f := range e.Failures {
		b.WriteString(": ")
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap returns crypto.ErrNoMatchingKey and the failures.
func (e *NoMatchError) Unwrap() []error {
	return append([]error{crypto.ErrNoMatchingKey}, e.Failures...)
}

var (
	_ crypto.Keyring    = (*Keyring)(nil)
	_ crypto.EDKMatcher = (*Keyring)(nil)
)
