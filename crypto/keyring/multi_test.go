package keyring

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// fatalKeyring fails every call with a non-ErrNoMatchingKey error, as a KMS
// keyring would on AccessDenied.
type fatalKeyring struct{ err error }

func (f fatalKeyring) OnEncrypt(context.Context, *crypto.EncryptionMaterials) error { return f.err }
func (f fatalKeyring) OnDecrypt(context.Context, *crypto.DecryptionMaterials, []crypto.EncryptedDataKey) error {
	return f.err
}

// lazyKeyring returns nil without producing anything: a misbehaving member.
type lazyKeyring struct{}

func (lazyKeyring) OnEncrypt(context.Context, *crypto.EncryptionMaterials) error { return nil }
func (lazyKeyring) OnDecrypt(context.Context, *crypto.DecryptionMaterials, []crypto.EncryptedDataKey) error {
	return nil
}

func TestMultiEncryptDecrypt(t *testing.T) {
	a, _ := testRSAKeys(t)
	aesKR := newAES(t, "ns", "aes", randKey(t, 32))
	aes2 := newAES(t, "ns", "aes2", randKey(t, 16))
	rsaKR := newRSA(t, "ns", "rsa", a, &a.PublicKey, OAEPSHA1)
	group, err := NewMulti(aesKR, rsaKR, aes2)
	if err != nil {
		t.Fatal(err)
	}
	s := crypto.DefaultSuite
	ec := crypto.EncryptionContext{"k": "v"}
	m := encryptWith(t, group, s, ec)
	if len(m.EncryptedDataKeys) != 3 {
		t.Fatalf("%d EDKs, want 3", len(m.EncryptedDataKeys))
	}
	if string(m.EncryptedDataKeys[1].ProviderInfo) != "rsa" {
		t.Fatal("EDKs not in keyring order (generator first)")
	}
	// Each member alone, and the group, recover the same data key.
	for _, kr := range []crypto.Keyring{aesKR, rsaKR, aes2, group} {
		dk, err := decryptWith(kr, s, ec, m.EncryptedDataKeys)
		if err != nil || !bytes.Equal(dk, m.DataKey) {
			t.Fatalf("%v: %v", kr, err)
		}
	}
	// Only the last EDK left: the group falls through to its last member.
	dk, err := decryptWith(group, s, ec, m.EncryptedDataKeys[2:])
	if err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("last member only: %v", err)
	}
	// No member matches (the RSA EDK is absent, the AES ones were bound to
	// another context): every member's error is kept, and the whole wraps
	// ErrNoMatchingKey.
	aesOnly := []crypto.EncryptedDataKey{m.EncryptedDataKeys[0], m.EncryptedDataKeys[2]}
	_, err = decryptWith(group, s, crypto.EncryptionContext{"k": "other"}, aesOnly)
	var de *DecryptError
	if !errors.Is(err, crypto.ErrNoMatchingKey) || !errors.As(err, &de) || len(de.Errs) != 3 {
		t.Fatalf("all fail: %v", err)
	}
}

func TestMultiFatalErrors(t *testing.T) {
	aesKR := newAES(t, "ns", "aes", randKey(t, 32))
	s := crypto.DefaultSuite
	m := encryptWith(t, aesKR, s, nil)
	boom := errors.New("access denied")

	// A fatal member failure does not stop a later member from succeeding.
	g, _ := NewMulti(fatalKeyring{boom}, aesKR)
	if dk, err := decryptWith(g, s, nil, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("fatal then success: %v", err)
	}
	// When all fail and one failure is fatal, the result is fatal: it does
	// not claim ErrNoMatchingKey, and it carries the cause.
	other := newAES(t, "ns", "other", randKey(t, 32))
	g, _ = NewMulti(nil, other, fatalKeyring{boom})
	_, err := decryptWith(g, s, nil, m.EncryptedDataKeys)
	if errors.Is(err, crypto.ErrNoMatchingKey) || !errors.Is(err, boom) {
		t.Fatalf("no match + fatal: %v", err)
	}
	// A member that returns nil without a data key counts as no match.
	g, _ = NewMulti(lazyKeyring{}, other)
	if _, err := decryptWith(g, s, nil, m.EncryptedDataKeys); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("lazy member: %v", err)
	}
	// Nested groups keep the classification.
	inner, _ := NewMulti(nil, other)
	outer, _ := NewMulti(inner, aesKR)
	if dk, err := decryptWith(outer, s, nil, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
		t.Fatalf("nested: %v", err)
	}
}

func TestMultiEncryptRules(t *testing.T) {
	aesKR := newAES(t, "ns", "aes", randKey(t, 32))
	aes2 := newAES(t, "ns", "aes2", randKey(t, 32))
	s := crypto.DefaultSuite

	// Without a generator the materials must already have a data key.
	g, err := NewMulti(nil, aesKR, aes2)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.OnEncrypt(bg, &crypto.EncryptionMaterials{Suite: s}); !errors.Is(err, crypto.ErrCannotGenerate) {
		t.Fatalf("no generator, no key: %v", err)
	}
	dk := randKey(t, 32)
	m := &crypto.EncryptionMaterials{Suite: s, DataKey: bytes.Clone(dk)}
	if err := g.OnEncrypt(bg, m); err != nil || len(m.EncryptedDataKeys) != 2 || !bytes.Equal(m.DataKey, dk) {
		t.Fatalf("no generator, given key: %v", err)
	}
	// With a generator a pre-set data key is refused.
	g, _ = NewMulti(aesKR, aes2)
	if err := g.OnEncrypt(bg, &crypto.EncryptionMaterials{Suite: s, DataKey: bytes.Clone(dk)}); err == nil {
		t.Fatal("generator with a pre-set data key: accepted")
	}
	// A failing child fails the call and leaves the materials untouched.
	boom := errors.New("child down")
	g, _ = NewMulti(aesKR, aes2, fatalKeyring{boom})
	m = &crypto.EncryptionMaterials{Suite: s}
	if err := g.OnEncrypt(bg, m); !errors.Is(err, boom) || m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
		t.Fatalf("failing child: err %v, key %v, %d EDKs", err, m.DataKey != nil, len(m.EncryptedDataKeys))
	}
	// A generator that makes no data key is an error.
	g, _ = NewMulti(lazyKeyring{}, aes2)
	if err := g.OnEncrypt(bg, &crypto.EncryptionMaterials{Suite: s}); err == nil {
		t.Fatal("lazy generator: accepted")
	}
	// Construction.
	if _, err := NewMulti(nil); err == nil {
		t.Fatal("empty group accepted")
	}
	if _, err := NewMulti(aesKR, nil); err == nil {
		t.Fatal("nil child accepted")
	}
	g, _ = NewMulti(aesKR, aes2)
	if g.Generator() != aesKR || len(g.Children()) != 1 {
		t.Fatal("accessors")
	}
}
