package crypto

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// RequiredContextCMM is the required-encryption-context materials manager
// (the MPL's CreateRequiredEncryptionContextCMM): on encrypt, every listed
// key must be in the context, and the message authenticates those pairs
// without storing them in its header; on decrypt, every listed key must be
// in the reproduced context, which supplies their values. The header
// authentication tag (and every keyring that binds the context to its
// encrypted data keys) covers the reproduced values, so a wrong one fails
// the decryption instead of being accepted.
type RequiredContextCMM struct {
	underlying MaterialsManager
	keys       []string
}

// NewRequiredContextCMM wraps underlying (typically NewDefaultCMM of a
// keyring). keys must be non-empty, distinct, valid UTF-8 and not
// reserved (aws-crypto-… pairs are always stored).
func NewRequiredContextCMM(underlying MaterialsManager, keys []string) (*RequiredContextCMM, error) {
	if underlying == nil {
		return nil, fmt.Errorf("crypto: required-context CMM: no underlying materials manager")
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("crypto: required-context CMM: no required keys")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if err := checkRequiredKey(k); err != nil {
			return nil, fmt.Errorf("crypto: required-context CMM: %w", err)
		}
		if seen[k] {
			return nil, fmt.Errorf("crypto: required-context CMM: key %q listed twice", k)
		}
		seen[k] = true
	}
	return &RequiredContextCMM{underlying: underlying, keys: slices.Sorted(slices.Values(keys))}, nil
}

func checkRequiredKey(k string) error {
	if err := (EncryptionContext{k: ""}).ValidateUser(); err != nil {
		return err
	}
	return nil
}

// Keys returns the required keys, sorted.
func (c *RequiredContextCMM) Keys() []string { return slices.Clone(c.keys) }

// GetEncryptionMaterials implements MaterialsManager.
func (c *RequiredContextCMM) GetEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*EncryptionMaterials, error) {
	if missing := missingKeys(req.Context, c.keys); len(missing) > 0 {
		return nil, fmt.Errorf("%w: required encryption context %s not in the encryption context", ErrReproducedContext, quoteKeys(missing))
	}
	req.RequiredContextKeys = unionKeys(req.RequiredContextKeys, c.keys)
	m, err := c.underlying.GetEncryptionMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	// The contract, checked: an underlying manager that dropped a required
	// key would make the message store it (or not bind it at all).
	for _, k := range c.keys {
		if !slices.Contains(m.RequiredContextKeys, k) {
			clear(m.DataKey)
			return nil, fmt.Errorf("crypto: required-context CMM: the underlying materials manager dropped required key %q", k)
		}
	}
	return m, nil
}

// DecryptMaterials implements MaterialsManager.
func (c *RequiredContextCMM) DecryptMaterials(ctx context.Context, req DecryptionRequest) (*DecryptionMaterials, error) {
	if missing := missingKeys(req.ReproducedContext, c.keys); len(missing) > 0 {
		return nil, fmt.Errorf("%w: required encryption context %s not in the reproduced encryption context", ErrReproducedContext, quoteKeys(missing))
	}
	m, err := c.underlying.DecryptMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	if missing := missingKeys(m.Context, c.keys); len(missing) > 0 {
		clear(m.DataKey)
		return nil, fmt.Errorf("crypto: required-context CMM: the underlying materials manager dropped required %s", quoteKeys(missing))
	}
	return m, nil
}

var _ MaterialsManager = (*RequiredContextCMM)(nil)

// mergeReproduced is the default CMM's decrypt-side use of a reproduced
// context: every reproduced pair the header stores must agree with it,
// and the others join the context as authenticated-only pairs (their keys
// returned sorted).
func mergeReproduced(stored, reproduced EncryptionContext) (EncryptionContext, []string, error) {
	full := stored.Clone()
	var only []string
	for _, k := range reproduced.SortedKeys() {
		v := reproduced[k]
		if sv, ok := stored[k]; ok {
			if sv != v {
				return nil, nil, fmt.Errorf("%w: key %q: the reproduced value %q differs from the value %q the message stores", ErrReproducedContext, k, v, sv)
			}
			continue
		}
		if strings.HasPrefix(k, ReservedPrefix) {
			return nil, nil, fmt.Errorf("%w: reserved key %q is not in the message", ErrReproducedContext, k)
		}
		full[k] = v
		only = append(only, k)
	}
	return full, only, nil
}

// splitRequired divides a full context into the pairs a header stores and
// the authenticated-only pairs of keys (each must be in full, none
// reserved).
// (only is nil when there are no keys).
func splitRequired(full EncryptionContext, keys []string) (stored, only EncryptionContext, err error) {
	if err := checkRequired(full, keys); err != nil {
		return nil, nil, err
	}
	stored = full.Clone()
	for _, k := range keys {
		if only == nil {
			only = make(EncryptionContext, len(keys))
		}
		only[k] = full[k]
		delete(stored, k)
	}
	return stored, only, nil
}

// checkRequired is splitRequired's check alone: each key is in full and
// none is reserved.
func checkRequired(full EncryptionContext, keys []string) error {
	for _, k := range keys {
		if _, ok := full[k]; !ok {
			return fmt.Errorf("%w: required encryption context key %q not in the encryption context", ErrReproducedContext, k)
		}
		if strings.HasPrefix(k, ReservedPrefix) {
			return fmt.Errorf("crypto: reserved encryption context key %q cannot be required (it is always stored)", k)
		}
	}
	return nil
}

// checkDecryptContext vets decryption materials against the header and the
// caller's reproduced context (whatever manager made them): the
// authenticated-only keys are in the materials' context but not in the
// header, the stored pairs are unchanged, and every reproduced pair
// equals the materials' value. It returns the authenticated-only pairs.
func checkDecryptContext(h *Header, m *DecryptionMaterials, reproduced EncryptionContext) (EncryptionContext, error) {
	var only EncryptionContext // nil when there are none
	for _, k := range m.RequiredContextKeys {
		v, ok := m.Context[k]
		if !ok {
			return nil, fmt.Errorf("crypto: decryption materials list required key %q without a value", k)
		}
		if _, stored := h.Context[k]; stored {
			return nil, fmt.Errorf("crypto: decryption materials list required key %q, which the message stores", k)
		}
		if only == nil {
			only = EncryptionContext{}
		}
		only[k] = v
	}
	for k, v := range h.Context {
		if mv, ok := m.Context[k]; !ok || mv != v {
			return nil, fmt.Errorf("crypto: decryption materials changed the stored encryption context pair %q", k)
		}
	}
	for _, k := range reproduced.SortedKeys() {
		if mv, ok := m.Context[k]; !ok || mv != reproduced[k] {
			return nil, fmt.Errorf("%w: key %q of the reproduced encryption context is not the message's", ErrReproducedContext, k)
		}
	}
	if len(m.Context) != len(h.Context)+len(only) {
		return nil, fmt.Errorf("crypto: decryption materials carry context pairs that are neither stored nor required")
	}
	return only, nil
}

// notStored returns the reproduced keys the header does not store, sorted.
func notStored(h *Header, reproduced EncryptionContext) []string {
	var out []string
	for _, k := range reproduced.SortedKeys() {
		if _, ok := h.Context[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func missingKeys(c EncryptionContext, keys []string) []string {
	var out []string
	for _, k := range keys {
		if _, ok := c[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func unionKeys(a, b []string) []string {
	out := slices.Clone(a)
	for _, k := range b {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func quoteKeys(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	if len(q) == 1 {
		return "key " + q[0]
	}
	return "keys " + strings.Join(q, ", ")
}
