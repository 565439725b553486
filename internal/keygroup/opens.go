package keygroup

import (
	"context"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// KeysOpen reports whether the group's local keys, as their key files
// hold them now, unwrap the data key of a message with these encrypted
// data keys and this full encryption context (stored and required
// pairs). A raw AES or raw RSA EDK names its key only by namespace and
// name, so a key file whose key was replaced (a rotated or regenerated
// key) still matches by name every message the old key wrapped: only
// unwrapping tells them apart, and it is local (AES-GCM, or RSA with the
// private key), no service call. A raw AES key not yet generated opens
// nothing. A group (or member) that is neither, a raw RSA group with only
// a public key (an RSA ciphertext cannot be tied to a public key), or one
// that holds none of edks, has no say: true.
//
// Callers ask before calling a message "already under this group": a
// message under the old key is not, and must be re-encrypted (or
// reported) rather than kept while the only key that opens it is gone.
func (g *Group) KeysOpen(ctx context.Context, suite *crypto.Suite, edks []crypto.EncryptedDataKey, full crypto.EncryptionContext) bool {
	if len(g.members) > 0 {
		for _, m := range g.members {
			if !m.KeysOpen(ctx, suite, edks, full) {
				return false
			}
		}
		return true
	}
	var kr crypto.Keyring
	switch k := g.Keyring.(type) {
	case *keyring.RawAES:
		kr = k
	case *keyring.RawRSA:
		// An RSA-OAEP or PKCS#1 EDK cannot be tied to a public key, so
		// a public-key-only group has no say; with the private key, a
		// replaced key file (same namespace and name) is caught the
		// same way as a raw AES one: by unwrapping.
		if !k.CanDecrypt() {
			return true
		}
		kr = k
	case *deferredKeyring:
		k.mu.RLock()
		kr = k.kr
		k.mu.RUnlock()
		if kr == nil {
			return !crypto.MatchesAnyEDK(k, edks) // no key yet: nothing it names is open
		}
	default:
		return true
	}
	var held []crypto.EncryptedDataKey
	for _, e := range edks {
		if crypto.MatchesAnyEDK(kr, []crypto.EncryptedDataKey{e}) {
			held = append(held, e)
		}
	}
	if len(held) == 0 {
		return true
	}
	m := &crypto.DecryptionMaterials{Suite: suite, Context: full}
	err := kr.OnDecrypt(ctx, m, held)
	ok := err == nil && m.DataKey != nil
	clear(m.DataKey)
	return ok
}
