package crypto_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// BenchmarkSmall is the engine's per-message cost for 4 KiB messages as
// bench mem measures it (context {tenant: acme}, one core per message),
// with the process CPU time per message (cpu-us/op: on a shared machine
// the figure to compare, wall time is noise), beside the ECDSA floor of
// the signed suite measured the same way (floor/...: key generation +
// signing + SHA-384 of the message, or verification + SHA-384).
func BenchmarkSmall(b *testing.B) {
	cmm := testCMM(b)
	ec := crypto.EncryptionContext{"tenant": "acme"}
	pt := make([]byte, 4096)
	rand.Read(pt)
	for _, id := range []uint16{0x0478, 0x0578} {
		s := crypto.SuiteByID(id)
		o := crypto.EncryptOptions{CMM: cmm, Suite: s, Context: ec, PlaintextLength: int64(len(pt)), KnownLength: true, Concurrency: 1}
		b.Run(fmt.Sprintf("%04X/enc", id), func(b *testing.B) {
			cpuLoop(b, func() {
				e, err := crypto.NewEncryptor(context.Background(), io.Discard, o)
				if err != nil {
					b.Fatal(err)
				}
				e.Write(pt)
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			})
		})
		ct, err := crypto.Encrypt(context.Background(), pt, o)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%04X/dec", id), func(b *testing.B) {
			cpuLoop(b, func() {
				d, err := crypto.NewDecryptor(context.Background(), bytes.NewReader(ct), crypto.DecryptOptions{CMM: cmm, Concurrency: 1})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, d); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	digest := make([]byte, 48)
	sig, _ := ecdsa.SignASN1(rand.Reader, priv, digest)
	hash := func() {
		h := sha512.New384()
		h.Write(pt)
		h.Sum(digest[:0])
	}
	b.Run("floor/sign", func(b *testing.B) {
		cpuLoop(b, func() {
			hash()
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			ecdsa.SignASN1(rand.Reader, k, digest)
		})
	})
	b.Run("floor/verify", func(b *testing.B) {
		cpuLoop(b, func() {
			hash()
			ecdsa.VerifyASN1(&priv.PublicKey, digest, sig)
		})
	})
}

// cpuLoop runs fn b.N times and reports the process CPU time (user +
// system, GC included) per run.
func cpuLoop(b *testing.B, fn func()) {
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		fn()
	}
	b.ReportMetric(float64(processCPU()-c0)/1e3/float64(b.N), "cpu-us/op")
}

func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
