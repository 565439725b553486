package crypto_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc),
// the least of three runs so a concurrent GC cycle does not count.
func allocated(f func()) uint64 {
	best := ^uint64(0)
	for range 3 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		best = min(best, b.TotalAlloc-a.TotalAlloc)
	}
	return best
}

// craftedHeader returns a genuine, authenticated header (and the CMM that
// opens it) whose frame length is frameLen (0: non-framed).
func craftedHeader(t *testing.T, frameLen int) ([]byte, crypto.MaterialsManager) {
	t.Helper()
	cmm := testCMM(t)
	o := crypto.EncryptOptions{CMM: cmm, Suite: crypto.SuiteByID(0x0478), CommitmentPolicy: crypto.RequireEncryptRequireDecrypt}
	if frameLen == 0 {
		o.NonFramed = true
	} else {
		o.FrameLength = frameLen
	}
	ct, err := crypto.Encrypt(context.Background(), []byte("x"), o)
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	return ct[:h.Len()], cmm
}

// TestClaimedLengthsCostBytesRead is issue 12.12: every length a message
// claims (frame length, final-frame content length, non-framed body
// length, EDK count and sizes, context length, footer length) is a claim;
// memory follows the bytes actually present. Each crafted message is a few
// hundred bytes claiming up to 64 GiB; decrypting or parsing it must
// allocate well under 1 MiB and fail as malformed.
func TestClaimedLengthsCostBytesRead(t *testing.T) {
	ctx := context.Background()
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	iv := make([]byte, 12)
	const limit = 1 << 20
	bigFramed, cmm := craftedHeader(t, crypto.MaxFrameLength)
	nonFramed, cmm2 := craftedHeader(t, 0)
	cases := []struct {
		name string
		msg  []byte
		cmm  crypto.MaterialsManager
	}{
		// a regular frame of a 2 GiB frame length, cut after 100 bytes
		{"frame-2GiB", cat(bigFramed, be32(1), iv, make([]byte, 100)), cmm},
		// a final frame claiming 2 GiB - 1 of content
		{"final-frame-2GiB", cat(bigFramed, be32(0xFFFFFFFF), be32(1), iv, be32(crypto.MaxFrameLength), make([]byte, 100)), cmm},
		// a non-framed body claiming 64 GiB
		{"nonframed-64GiB", cat(nonFramed, iv, binary.BigEndian.AppendUint64(nil, 1<<36-33), make([]byte, 100)), cmm2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n := allocated(func() {
				_, _, err = crypto.Decrypt(ctx, c.msg, crypto.DecryptOptions{CMM: c.cmm, CommitmentPolicy: crypto.RequireEncryptRequireDecrypt})
			})
			if !errors.Is(err, crypto.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			t.Logf("%d-byte message: %d bytes allocated", len(c.msg), n)
			if n > limit {
				t.Fatalf("a %d-byte message allocated %d bytes (limit %d)", len(c.msg), n, limit)
			}
		})
	}

	// Header fields, no key needed: a v2 header up to the EDK section.
	v2 := cat([]byte{2}, []byte{0x04, 0x78}, make([]byte, 32))
	headers := map[string][]byte{
		"context-64KiB":       cat(v2, []byte{0xFF, 0xFF}, make([]byte, 10)),
		"edk-count-65535":     cat(v2, []byte{0, 0}, []byte{0xFF, 0xFF}, []byte{0, 1, 'k', 0, 1, 'i', 0, 1, 'c'}),
		"edk-provider-64KiB":  cat(v2, []byte{0, 0}, []byte{0, 1}, []byte{0xFF, 0xFF}, make([]byte, 10)),
		"edk-ciphertext-64KB": cat(v2, []byte{0, 0}, []byte{0, 1}, []byte{0, 1, 'k', 0, 1, 'i', 0xFF, 0xFF}, make([]byte, 10)),
	}
	for name, msg := range headers {
		t.Run(name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = crypto.ParseHeader(bytes.NewReader(msg)) })
			if !errors.Is(err, crypto.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			t.Logf("%d-byte header: %d bytes allocated", len(msg), n)
			// A header has no field over 64 KiB; the point is that none
			// is allocated before its bytes arrive.
			if n > 32<<10 {
				t.Fatalf("a %d-byte header allocated %d bytes", len(msg), n)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestBoundedList(t *testing.T) {
	many := make([]string, 70000)
	for i := range many {
		many[i] = string(bytes.Repeat([]byte("k"), 1000))
	}
	got := crypto.BoundedList(many, ", ")
	if len(got) > 2000 || !bytes.HasSuffix([]byte(got), []byte("… and 69995 more")) {
		t.Fatalf("BoundedList of 70000 long items: %d bytes, ends %q", len(got), got[max(0, len(got)-40):])
	}
	if got := crypto.BoundedList([]string{"a", "b"}, ", "); got != "a, b" {
		t.Fatalf("BoundedList(a, b) = %q", got)
	}
	if got := crypto.Shorten("ключ", 3); got != "к…" {
		t.Fatalf("Shorten cut inside a rune: %q", got)
	}
}
