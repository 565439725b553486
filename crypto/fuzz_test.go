package crypto_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// FuzzParseHeader: no panics, and a header that parses re-serialises from
// its parsed fields to exactly the bytes it came from (age's malleability
// property): every header has one encoding, so two different byte strings
// never parse to the same header, and nothing a parser skips or normalises
// (context order, duplicate keys, a zero count with a length, reserved
// fields, the v1 IV length) can change without the parse failing.
func FuzzParseHeader(f *testing.F) {
	seedFromVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := crypto.ParseHeader(bytes.NewReader(b))
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		if h.Len() > len(b) {
			t.Fatalf("header of %d bytes parsed from %d", h.Len(), len(b))
		}
		again, err := crypto.RemarshalHeader(h)
		if err != nil {
			t.Fatalf("a parsed header does not serialise: %v", err)
		}
		if !bytes.Equal(again, b[:h.Len()]) {
			t.Fatalf("header re-serialises differently:\nparsed  %x\nwritten %x", b[:h.Len()], again)
		}
	})
}

// FuzzDecrypt: arbitrary messages under a fixed key never panic, and any
// success is only for an input that is a complete, authentic message.
func FuzzDecrypt(f *testing.F) {
	seedFromVectors(f)
	cmm := testCMM(f)
	ct, _ := crypto.Encrypt(context.Background(), []byte("seed plaintext"), crypto.EncryptOptions{CMM: cmm, FrameLength: 4})
	f.Add(ct)
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, _, err := crypto.Decrypt(context.Background(), b, crypto.DecryptOptions{CMM: cmm, MaxBodyLength: 1 << 20})
		if err == nil && !bytes.Equal(b, ct) && len(pt) > 0 {
			t.Fatalf("decrypted a message that was not made with the key")
		}
	})
}

func seedFromVectors(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(vectorsDir, "ciphertexts", "*.bin"))
	for i, p := range files {
		if i%7 != 0 {
			continue
		}
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
			f.Add(b)
		}
	}
	for _, p := range mustGlob(filepath.Join("testdata", "fuzz-regressions", "*")) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func mustGlob(p string) []string {
	m, _ := filepath.Glob(p)
	return m
}
