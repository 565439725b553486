package crypto_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
)

// failAfter accepts limit bytes, then fails every write.
type failAfter struct {
	limit, n int
}

var errDisk = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		return 0, errDisk
	}
	f.n += len(p)
	return len(p), nil
}

// settledGoroutines waits (bounded) for goroutines started by the code
// under test to end and returns how many are left.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 200 && n > want; i++ {
		time.Sleep(5 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestPipedWriteErrors: when the destination fails midway through a
// pipelined (multi-core) encryption or decryption, the error is the
// destination's, it is returned (never a clean end), and no goroutine of
// the pipeline is left running.
func TestPipedWriteErrors(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	pt := make([]byte, 9<<20)
	rand.Read(pt)
	for _, id := range []uint16{0x0578, 0x0478} {
		ct, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: cmm, Suite: crypto.SuiteByID(id), Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		base := runtime.NumGoroutine()
		for _, limit := range []int{0, 1000, 3 << 20, 9<<20 - 1} {
			e, err := crypto.NewEncryptor(ctx, &failAfter{limit: limit}, crypto.EncryptOptions{CMM: cmm, Suite: crypto.SuiteByID(id), Concurrency: 2})
			if err == nil {
				if _, err = io.Copy(e, bytes.NewReader(pt)); err == nil {
					err = e.Close()
				} else {
					e.Abort()
				}
			}
			if !errors.Is(err, errDisk) {
				t.Fatalf("%04X encrypt, write fails after %d: %v", id, limit, err)
			}
			d, err := crypto.NewDecryptor(ctx, bytes.NewReader(ct), crypto.DecryptOptions{CMM: cmm, Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(&failAfter{limit: limit}, d); !errors.Is(err, errDisk) {
				t.Fatalf("%04X decrypt, write fails after %d: %v", id, limit, err)
			}
			if d.Verified() {
				t.Fatalf("%04X decrypt, write fails after %d: verified", id, limit)
			}
		}
		if n := settledGoroutines(base); n > base {
			t.Fatalf("%04X: %d goroutines left running (%d before)", id, n, base)
		}
	}
}

// TestPipedMemoryBounded: a pipelined encryption and decryption of a
// large message allocate a few MiB of buffers in all, reused batch after
// batch, not memory in proportion to the message.
func TestPipedMemoryBounded(t *testing.T) {
	ctx := context.Background()
	cmm := testCMM(t)
	const n = 64 << 20
	pt := make([]byte, n)
	var ct bytes.Buffer
	ct.Grow(n + n/64)
	s := crypto.SuiteByID(0x0578)
	allocated := func(f func()) uint64 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	enc := allocated(func() {
		e, err := crypto.NewEncryptor(ctx, &ct, crypto.EncryptOptions{CMM: cmm, Suite: s, Concurrency: 2,
			PlaintextLength: n, KnownLength: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(e, bytes.NewReader(pt)); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	})
	dec := allocated(func() {
		d, err := crypto.NewDecryptor(ctx, bytes.NewReader(ct.Bytes()), crypto.DecryptOptions{CMM: cmm, Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, d); err != nil || !d.Verified() {
			t.Fatalf("%v (verified %v)", err, d.Verified())
		}
	})
	const limit = 16 << 20
	if enc > limit || dec > limit {
		t.Fatalf("a %d MiB message allocated %d KiB to encrypt and %d KiB to decrypt, want < %d KiB", n>>20, enc>>10, dec>>10, limit>>10)
	}
}
