package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/encjob/encjob/crypto"
)

// TestSignedPipelineMatchesSerial: a signed message whose signature hash
// ran on its own goroutine (Concurrency > 1, several batches) is byte for
// byte a valid message to a decryptor hashing inline (Concurrency 1), and
// the other way round, for sizes around the batch boundaries: the async
// hash sees exactly the bytes, in exactly the order, of the serial one.
func TestSignedPipelineMatchesSerial(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	s := crypto.SuiteByID(0x0578)
	const batch = 256 << 10
	for _, fl := range []int{4096, 1000, 64 << 10} {
		for _, n := range []int{0, 1, batch - 1, batch, batch + 1, 3*batch + 4097, 5 << 20} {
			pt := make([]byte, n)
			rand.Read(pt)
			for _, enc := range []int{1, 2, 4} {
				var ct bytes.Buffer
				e, err := crypto.NewEncryptor(ctx, &ct, crypto.EncryptOptions{CMM: cmm, Suite: s, FrameLength: fl, Concurrency: enc,
					PlaintextLength: int64(n), KnownLength: n%2 == 0})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(e, iotest.HalfReader(bytes.NewReader(pt))); err != nil {
					t.Fatal(err)
				}
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				for _, dec := range []int{1, 2, 4} {
					name := fmt.Sprintf("f%d/n%d/enc%d/dec%d", fl, n, enc, dec)
					d, err := crypto.NewDecryptor(ctx, iotest.HalfReader(bytes.NewReader(ct.Bytes())), crypto.DecryptOptions{CMM: cmm, Concurrency: dec})
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					var got bytes.Buffer
					if _, err := io.Copy(&got, d); err != nil || !d.Verified() {
						t.Fatalf("%s: %v (verified %v)", name, err, d.Verified())
					}
					if !bytes.Equal(got.Bytes(), pt) {
						t.Fatalf("%s: plaintext differs", name)
					}
				}
			}
		}
	}
}

// TestSignedPipelineRejects: on the pipelined path a flipped bit in a
// later batch, in the signature, or a cut-off footer still fails the
// stream with a typed error and never ends in a clean EOF.
func TestSignedPipelineRejects(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	pt := make([]byte, 3<<20)
	rand.Read(pt)
	ct, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: cmm, Suite: crypto.SuiteByID(0x0578), Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(ct) / 2, len(ct) - 200, len(ct) - 20, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[at] ^= 0x10
		for _, dec := range []int{1, 2, 4} {
			d, err := crypto.NewDecryptor(ctx, bytes.NewReader(bad), crypto.DecryptOptions{CMM: cmm, Concurrency: dec})
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, d)
			if !errors.Is(err, crypto.ErrAuthentication) && !errors.Is(err, crypto.ErrMalformed) {
				t.Fatalf("flip at %d of %d, concurrency %d: %v", at, len(ct), dec, err)
			}
			if d.Verified() {
				t.Fatalf("flip at %d: verified", at)
			}
		}
	}
	d, err := crypto.NewDecryptor(ctx, bytes.NewReader(ct[:len(ct)-50]), crypto.DecryptOptions{CMM: cmm, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, d); err == nil || d.Verified() {
		t.Fatal("cut-off footer ended cleanly")
	}
}
