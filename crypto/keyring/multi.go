package keyring

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/encjob/encjob/crypto"
)

// Multi is a key group: one optional generator plus any number of child
// keyrings. On encrypt every member wraps the same data key, so any one of
// them can decrypt the message.
type Multi struct {
	generator crypto.Keyring
	children  []crypto.Keyring
}

// NewMulti returns a multi-keyring. generator may be nil, in which case the
// materials handed to OnEncrypt must already hold a data key; without a
// generator at least one child is required. Nil children are rejected.
func NewMulti(generator crypto.Keyring, children ...crypto.Keyring) (*Multi, error) {
	if generator == nil && len(children) == 0 {
		return nil, errors.New("keyring: multi-keyring needs a generator or at least one child keyring")
	}
	for i, c := range children {
		if c == nil {
			return nil, fmt.Errorf("keyring: multi-keyring child %d is nil", i)
		}
	}
	return &Multi{generator: generator, children: append([]crypto.Keyring(nil), children...)}, nil
}

// MatchesEDK implements crypto.EDKMatcher: true when the generator or any
// child matches edk. Members that do not implement crypto.EDKMatcher
// match nothing.
func (k *Multi) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	for _, m := range k.members() {
		if mm, ok := m.(crypto.EDKMatcher); ok && mm.MatchesEDK(edk) {
			return true
		}
	}
	return false
}

// members returns the generator (if any) and then the children.
func (k *Multi) members() []crypto.Keyring {
	if k.generator == nil {
		return k.children
	}
	return append([]crypto.Keyring{k.generator}, k.children...)
}

// Generator returns the generator keyring, or nil.
func (k *Multi) Generator() crypto.Keyring { return k.generator }

// Children returns a copy of the child keyrings, in order.
func (k *Multi) Children() []crypto.Keyring { return append([]crypto.Keyring(nil), k.children...) }

// OnEncrypt lets the generator create and wrap the data key, then every
// child wraps it too. With a generator, m must not already have a data key;
// without one, it must. Any member's failure fails the whole call, and the
// materials are then left as they were (a data key generated here is
// zeroed).
func (k *Multi) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	if m == nil {
		return fmt.Errorf("keyring: multi-keyring: %w: nil materials", errMaterials)
	}
	hadKey := m.DataKey != nil
	nEDK := len(m.EncryptedDataKeys)
	fail := func(err error) error {
		if !hadKey && m.DataKey != nil {
			clear(m.DataKey)
			m.DataKey = nil
		}
		clear(m.EncryptedDataKeys[nEDK:])
		m.EncryptedDataKeys = m.EncryptedDataKeys[:nEDK]
		return err
	}
	if k.generator != nil {
		if hadKey {
			return fmt.Errorf("keyring: multi-keyring: %w: the materials already have a data key, but this key group has a generator", errMaterials)
		}
		if err := k.generator.OnEncrypt(ctx, m); err != nil {
			return fail(fmt.Errorf("keyring: multi-keyring generator %s: %w", describe(k.generator), err))
		}
		if m.DataKey == nil {
			return fail(fmt.Errorf("keyring: multi-keyring generator %s did not produce a data key", describe(k.generator)))
		}
	} else if !hadKey {
		return fmt.Errorf("keyring: multi-keyring: %w: no generator and the materials have no data key", crypto.ErrCannotGenerate)
	}
	for i, c := range k.children {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := c.OnEncrypt(ctx, m); err != nil {
			return fail(fmt.Errorf("keyring: multi-keyring child %d %s: %w", i, describe(c), err))
		}
	}
	return nil
}

// OnDecrypt tries the generator and then each child, in order, each with
// the unmodified materials; the first to set a data key wins. If m already
// has a data key it returns nil at once. When every member fails it returns
// a *DecryptError holding each member's error; that error wraps
// crypto.ErrNoMatchingKey only when every member failed that way, and
// otherwise wraps the other (fatal) errors.
func (k *Multi) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if m == nil {
		return fmt.Errorf("keyring: multi-keyring: %w: nil materials", errMaterials)
	}
	if m.DataKey != nil {
		return nil
	}
	de := &DecryptError{}
	for _, c := range k.members() {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := c.OnDecrypt(ctx, m, edks)
		if err == nil && m.DataKey != nil {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%w: %s returned without a data key", crypto.ErrNoMatchingKey, describe(c))
		}
		de.Errs = append(de.Errs, err)
	}
	return de
}

// DecryptError reports that no member of a multi-keyring could decrypt.
// Errs holds each member's error in the order they were tried (generator
// first).
type DecryptError struct {
	Errs []error
}

func (e *DecryptError) Error() string {
	var b strings.Builder
	b.WriteString("keyring: no key in the key group could decrypt any encrypted data key")
	for i, err := range e.Errs {
		fmt.Fprintf(&b, "; [%d] %v", i, err)
	}
	return b.String()
}

// Unwrap returns every member's error when all failed for want of a
// matching key, and otherwise only the errors that were not of that kind, so errors.Is(err, crypto.ErrNoMatchingKey) is true exactly when
// another keyring might still succeed.
func (e *DecryptError) Unwrap() []error {
	var fatal []error
	for _, err := range e.Errs {
		if !errors.Is(err, crypto.ErrNoMatchingKey) {
			fatal = append(fatal, err)
		}
	}
	if len(fatal) == 0 {
		return e.Errs // each wraps crypto.ErrNoMatchingKey
	}
	return fatal
}

func describe(k crypto.Keyring) string {
	if s, ok := k.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", k)
}

func (k *Multi) String() string {
	var parts []string
	if k.generator != nil {
		parts = append(parts, "generator "+describe(k.generator))
	}
	for _, c := range k.children {
		parts = append(parts, describe(c))
	}
	return "key group [" + strings.Join(parts, ", ") + "]"
}

var _ crypto.Keyring = (*Multi)(nil)
