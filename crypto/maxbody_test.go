package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// TestMaxBodyLengthBoundsOneStep: DecryptOptions.MaxBodyLength limits the
// frame length of framed messages and the content length of non-framed
// ones (the ESDKs' max body length), never the total of a framed message.
// Decrypt, the streaming Decryptor and Rewrap (with and without opening
// the frames) all apply the same rule.
func TestMaxBodyLengthBoundsOneStep(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("encjob-test", "k1", key)
	if err != nil {
		t.Fatal(err)
	}
	cmm := crypto.NewDefaultCMM(kr)
	big := make([]byte, 1<<20)
	rand.Read(big)
	cases := []struct {
		name      string
		pt        []byte
		frame     int
		nonFramed bool
		limit     int64
		refused   string // "" = decrypts
	}{
		{"1 MB in 1 KiB frames under 1024", big, 1024, false, 1024, ""},
		{"1 MB in 1 KiB frames under 1023", big, 1024, false, 1023, "frame length 1024"},
		{"short final frame, frame length over the limit", big[:10], 1024, false, 1000, "frame length 1024"},
		{"exact multiple of the frame", big[:4096], 1024, false, 1024, ""},
		{"empty message", nil, 1024, false, 1024, ""},
		{"non-framed at the limit", big[:1024], 0, true, 1024, ""},
		{"non-framed one over", big[:1025], 0, true, 1024, "non-framed content length 1025"},
		{"non-framed 1 MB, no limit", big, 0, true, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := crypto.Encrypt(ctx, tc.pt, crypto.EncryptOptions{CMM: cmm, FrameLength: tc.frame,
				NonFramed: tc.nonFramed, PlaintextLength: int64(len(tc.pt)), KnownLength: true})
			if err != nil {
				t.Fatal(err)
			}
			do := crypto.DecryptOptions{CMM: cmm, MaxBodyLength: tc.limit}
			check := func(what string, err error) {
				t.Helper()
				if tc.refused == "" {
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					return
				}
				if !errors.Is(err, crypto.ErrPolicy) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("%s: got %v, want ErrPolicy naming %q", what, err, tc.refused)
				}
			}
			pt, _, err := crypto.Decrypt(ctx, ct, do)
			check("Decrypt", err)
			if err == nil && !bytes.Equal(pt, tc.pt) {
				t.Fatal("Decrypt: plaintext differs")
			}
			for _, hash := range []bool{false, true} {
				o := crypto.RewrapOptions{Decrypt: do, Keyring: kr, AllowHeaderNonceReuse: true}
				h := sha256.New()
				if hash {
					o.PlaintextHash = h
				}
				var out bytes.Buffer
				_, _, err := crypto.Rewrap(ctx, &out, bytes.NewReader(ct), o)
				check("Rewrap", err)
				if err != nil {
					continue
				}
				if want := sha256.Sum256(tc.pt); hash && !bytes.Equal(h.Sum(nil), want[:]) {
					t.Fatal("Rewrap: plaintext hash differs")
				}
				pt, _, err := crypto.Decrypt(ctx, out.Bytes(), do)
				if err != nil || !bytes.Equal(pt, tc.pt) {
					t.Fatalf("rewrapped message: %v", err)
				}
			}
		})
	}
}
