package caching

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// countingKeyring counts the calls that reach a real keyring.
type countingKeyring struct {
	crypto.Keyring
	enc, dec atomic.Int64
}

func (k *countingKeyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	k.enc.Add(1)
	return k.Keyring.OnEncrypt(ctx, m)
}

func (k *countingKeyring) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	k.dec.Add(1)
	return k.Keyring.OnDecrypt(ctx, m, edks)
}

// TestWithDefaultCMMAndRawAES runs whole messages through the engine: the
// caching manager over the default manager over a raw AES keyring.
// Messages encrypted under one cached entry share their EDK (one data key),
// every message decrypts, and the keyring is asked for a data key once per
// MaxMessagesEncrypted messages.
func TestWithDefaultCMMAndRawAES(t *testing.T) {
	aes, err := keyring.NewRawAES("encjob-test", "cache-key", bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	kr := &countingKeyring{Keyring: aes}
	c, err := New(crypto.NewDefaultCMM(kr), Options{Capacity: 10, MaxAge: time.Hour, MaxMessagesEncrypted: 10})
	if err != nil {
		t.Fatal(err)
	}
	ec := crypto.EncryptionContext{"job": "cache", "ключ": "значение"}
	const n = 100
	msgs := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := []byte(fmt.Sprintf("message %d", i))
			msg, err := crypto.Encrypt(context.Background(), pt, crypto.EncryptOptions{CMM: c, Context: ec, FrameLength: 4096})
			if err != nil {
				errs <- err
				return
			}
			msgs[i] = msg
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := kr.enc.Load(); got != n/10 {
		t.Fatalf("keyring OnEncrypt calls %d, want %d", got, n/10)
	}
	edks := map[string]int{}
	for i, msg := range msgs {
		pt, h, err := crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: c})
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(pt) != fmt.Sprintf("message %d", i) {
			t.Fatalf("message %d: wrong plaintext", i)
		}
		edks[string(h.EncryptedDataKeys[0].Ciphertext)]++
	}
	if len(edks) != n/10 {
		t.Fatalf("%d distinct wrapped data keys, want %d", len(edks), n/10)
	}
	for _, k := range edks {
		if k != 10 {
			t.Fatalf("a data key encrypted %d messages, want 10", k)
		}
	}
	// Signed suite: each message has its own header, but messages of one
	// entry share the data key and signing key. Decryption is cached per
	// EDK set + context, so the keyring unwrapped each distinct data key
	// once.
	if got := kr.dec.Load(); got != n/10 {
		t.Fatalf("keyring OnDecrypt calls %d, want %d", got, n/10)
	}
	// A fresh manager without the cache decrypts them too (the cached
	// materials are the real ones).
	plain := crypto.NewDefaultCMM(aes)
	if _, _, err := crypto.Decrypt(context.Background(), msgs[0], crypto.DecryptOptions{CMM: plain}); err != nil {
		t.Fatal(err)
	}
}
