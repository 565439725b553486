package caching

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// TestCachedRequiredContext: cached materials carry the reproduced pairs
// in their context, so a request reproducing other values must not get
// them (it fails as without a cache), and an encryption that keeps pairs
// out of the header does not share a data key with one that stores them.
func TestCachedRequiredContext(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("ns", "k", key)
	if err != nil {
		t.Fatal(err)
	}
	under, err := crypto.NewRequiredContextCMM(crypto.NewDefaultCMM(kr), []string{"tenant"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(under, Options{Capacity: 10, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := crypto.Encrypt(ctx, []byte("hi"), crypto.EncryptOptions{CMM: c, Context: crypto.EncryptionContext{"tenant": "a", "p": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	good := crypto.EncryptionContext{"tenant": "a"}
	for range 2 { // the second one is served from the cache
		if _, _, err := crypto.Decrypt(ctx, ct, crypto.DecryptOptions{CMM: c, ReproducedContext: good}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = crypto.Decrypt(ctx, ct, crypto.DecryptOptions{CMM: c, ReproducedContext: crypto.EncryptionContext{"tenant": "b"}})
	if !errors.Is(err, crypto.ErrReproducedContext) {
		t.Fatalf("a wrong reproduced value after a cached right one: %v", err)
	}
	k1, _ := c.encryptionKey(crypto.EncryptionRequest{Context: good})
	k2, _ := c.encryptionKey(crypto.EncryptionRequest{Context: good, RequiredContextKeys: []string{"tenant"}})
	if k1 == k2 {
		t.Fatal("storing and omitting the required pairs share a cache entry")
	}
}
