package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"testing"
)

// TestKDFMatchesStdlib: the shared-extraction HKDF gives crypto/hkdf's
// output for every hash the suites use, salts of every relevant length
// (none, shorter than, equal to and longer than the block), and output
// lengths within one hash length and beyond it.
func TestKDFMatchesStdlib(t *testing.T) {
	hashes := map[string]func() hash.Hash{"sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New,
		// A hash that cannot save its state: the pads are hashed again
		// for every key.
		"sha512-nostate": func() hash.Hash { return plainHash{sha512.New()} }}
	for name, h := range hashes {
		for _, saltLen := range []int{-1, 0, 16, 32, 64, 128, 129, 200} {
			var salt []byte
			if saltLen >= 0 {
				salt = make([]byte, saltLen)
				rand.Read(salt)
			}
			secret := make([]byte, 32)
			rand.Read(secret)
			k := newKDF(h, secret, salt)
			for _, info := range []string{"", "\x04\x78DERIVEKEY", "COMMITKEY", string(salt)} {
				for _, n := range []int{1, 16, 32, 48, 64, 65, 100, 200} {
					got := k.expand([]byte(info), n)
					want, err := hkdf.Key(h, secret, salt, info, n)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s salt %d info %q n %d: got %x, want %x", name, saltLen, info, n, got, want)
					}
				}
			}
			k.clear()
		}
	}
}

// plainHash hides every method of a hash but hash.Hash's.
type plainHash struct{ hash.Hash }
