package crypto_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// Baselines measured in the same run: the stdlib AES-256-GCM seal rate and
// the SHA-384 rate at the frame size. bench/crypto.sh prints the
// engine's rates as ratios of these.
func BenchmarkBaselineGCMSeal4K(b *testing.B) {
	key := make([]byte, 32)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	pt := make([]byte, 4096)
	out := make([]byte, 0, 4096+16)
	iv := make([]byte, 12)
	b.SetBytes(4096)
	for b.Loop() {
		out = g.Seal(out[:0], iv, pt, iv)
	}
}

func BenchmarkBaselineSHA384(b *testing.B) {
	h := sha512.New384()
	pt := make([]byte, 4096)
	b.SetBytes(4096)
	for b.Loop() {
		h.Write(pt)
	}
}

func benchSizes() []int { return []int{4 << 10, 1 << 20, 256 << 20} }

func BenchmarkEncrypt(b *testing.B) {
	cmm := testCMM(b)
	for _, id := range []uint16{0x0478, 0x0578} {
		for _, n := range benchSizes() {
			for _, conc := range []int{1, 0} {
				name := fmt.Sprintf("%04X/%s/cores=%s", id, size(n), coresName(conc))
				b.Run(name, func(b *testing.B) {
					pt := make([]byte, min(n, 1<<20))
					rand.Read(pt)
					b.SetBytes(int64(n))
					for b.Loop() {
						e, err := crypto.NewEncryptor(context.Background(), io.Discard, crypto.EncryptOptions{CMM: cmm,
							Suite: crypto.SuiteByID(id), Concurrency: conc})
						if err != nil {
							b.Fatal(err)
						}
						for left := n; left > 0; left -= len(pt) {
							e.Write(pt[:min(left, len(pt))])
						}
						if err := e.Close(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	cmm := testCMM(b)
	for _, id := range []uint16{0x0478, 0x0578} {
		for _, n := range benchSizes() {
			var ct []byte
			for _, conc := range []int{1, 0} {
				b.Run(fmt.Sprintf("%04X/%s/cores=%s", id, size(n), coresName(conc)), func(b *testing.B) {
					if ct == nil {
						var err error
						ct, err = crypto.Encrypt(context.Background(), make([]byte, n), crypto.EncryptOptions{CMM: cmm, Suite: crypto.SuiteByID(id)})
						if err != nil {
							b.Fatal(err)
						}
					}
					b.SetBytes(int64(n))
					for b.Loop() {
						// To io.Discard: the engine's rate, not page faults
						// of a fresh output buffer.
						d, err := crypto.NewDecryptor(context.Background(), bytes.NewReader(ct), crypto.DecryptOptions{CMM: cmm, Concurrency: conc})
						if err != nil {
							b.Fatal(err)
						}
						if _, err := io.Copy(io.Discard, d); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	default:
		return fmt.Sprintf("%dKiB", n>>10)
	}
}

func coresName(c int) string {
	if c == 0 {
		return "all"
	}
	return fmt.Sprint(c)
}
