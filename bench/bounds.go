package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/ecsig"
	"github.com/encjob/encjob/kmsemu"
)

// The bound of a row (issue 19) is what its two costs allow together:
// 1 / (1/crypto rate + 1/plain-copy rate). Both are measured right next
// to the row, by the commands below, so that a machine shared with other
// work loads the row and its bound alike: a bound measured minutes
// earlier under a different load would make the ratio noise.

// cmdCopy is the plain copy of the very files a row reads, at the row's
// concurrency, with the durability the executor gives its outputs: one
// fsync per file for a single file, one syncfs at the end for a set (as
// the group commit does).
func cmdCopy(args []string) error {
	fs := flag.NewFlagSet("copy", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	in := fs.String("in", "", "input directory")
	out := fs.String("out", "", "output directory (left in place: bench/run discards it)")
	conc := fs.Int("conc", 0, "goroutines (0: 2 x cores)")
	overlap := fs.Bool("overlap", false, "one file: read and write on two goroutines, writeback as it goes (copyOverlapped)")
	fs.Parse(args)
	if *conc == 0 {
		*conc = 2 * runtime.GOMAXPROCS(0)
	}
	files, err := listFiles(*in)
	if err != nil {
		return err
	}
	// The output is not removed here: removing thousands of files makes
	// the next row's creates slow on a journal-less ext4 (see
	// discard in bench/run), so bench/run moves it aside instead.
	dsts := make([]string, len(files))
	for i, f := range files {
		rel, _ := filepath.Rel(*in, f)
		dsts[i] = filepath.Join(*out, rel)
		if err := os.MkdirAll(filepath.Dir(dsts[i]), 0o755); err != nil {
			return err
		}
	}
	single := len(files) == 1
	unix.Sync()
	t := time.Now()
	g := new(errgroup.Group)
	g.SetLimit(*conc)
	var total atomic.Int64
	for i := range files {
		g.Go(func() error {
			if *overlap && single {
				n, err := copyOverlapped(files[i], dsts[i])
				total.Add(n)
				return err
			}
			n, err := copyFile(files[i], dsts[i], single)
			total.Add(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if !single {
		if f, err := os.Open(*out); err == nil {
			unix.Syncfs(int(f.Fd()))
			f.Close()
		}
	}
	secs := time.Since(t).Seconds()
	note := fmt.Sprintf("plain copy of the same files, %d goroutines, read + write 1 MiB at a time, ", *conc)
	if single && *overlap {
		note = "copy of the same file, read and write on two goroutines 1 MiB at a time, written through encjob's local writer (writeback, O_DIRECT past 8 MiB, commit)"
	} else if single {
		note += "fsync"
	} else {
		note += "one syncfs"
	}
	emit(Row{ID: *id, Items: int64(len(files)), Bytes: total.Load(), Seconds: secs, Note: note})
	return nil
}

// cmdPrim measures one primitive on min(conc, cores) goroutines for a
// while: what the crypto of a signed row cannot beat however the engine
// is written. Signing and verification are crypto/ecsig's, as in the
// engine (the fastest P-384 ECDSA here; `bench limits` shows crypto/ecdsa
// beside it). "sign" is ECDSA P-384 key generation + signing (an
// encryption makes a key pair per message and signs once), "verify" one
// verification (per decrypted message), "sha384" the signature hash on
// ONE core (a message's hash is serial), "reencrypt" verify + key
// generation + signing (a signed message in, a signed message out),
// "reencrypt-cached" verify + signing (the signing key is cached with the
// data key). Both reencrypt forms first decompress the old message's
// verification key into a new public key: a signed message's header
// carries its key as a compressed point, so every decryption pays the
// point decompression (a square root mod p) and verifies with a key it
// has not seen before. Items are operations (files);
// for sha384, bytes.
func cmdPrim(args []string) error {
	fs := flag.NewFlagSet("prim", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	what := fs.String("what", "sign", "sign, verify, reencrypt, reencrypt-cached or sha384")
	conc := fs.Int("conc", 1, "concurrency of the row (goroutines are capped at the cores)")
	size := fs.Int("bytes", 0, "sign, verify, reencrypt*: also hash this many bytes per operation (the message; reencrypt: twice)")
	dur := fs.Duration("time", 500*time.Millisecond, "measuring time")
	fs.Parse(args)
	w := min(max(1, *conc), runtime.GOMAXPROCS(0))
	priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	msg := make([]byte, 48)
	sig, _ := ecsig.Sign(rand.Reader, priv, msg)
	pub, _ := priv.PublicKey.Bytes()
	compressed := elliptic.MarshalCompressed(elliptic.P384(), new(big.Int).SetBytes(pub[1:49]), new(big.Int).SetBytes(pub[49:]))
	var mk func() func()
	switch *what {
	case "sign":
		mk = func() func() {
			hash := hasher(*size)
			return func() {
				hash()
				k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
				ecsig.Sign(rand.Reader, k, msg)
			}
		}
	case "verify":
		mk = func() func() {
			hash := hasher(*size)
			return func() { hash(); ecsig.Verify(&priv.PublicKey, msg, sig) }
		}
	case "reencrypt":
		mk = func() func() {
			hash := hasher(2 * *size)
			return func() {
				hash()
				verifyCompressed(compressed, msg, sig)
				k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
				ecsig.Sign(rand.Reader, k, msg)
			}
		}
	case "reencrypt-cached":
		// With the caching CMM the new message's signing key comes with
		// the cached encryption materials (shared by the messages of an
		// entry, as in the other ESDKs): no key generation per message.
		mk = func() func() {
			hash := hasher(2 * *size)
			return func() {
				hash()
				verifyCompressed(compressed, msg, sig)
				ecsig.Sign(rand.Reader, priv, msg)
			}
		}
	case "sha384":
		emit(sha384Row(*id, 2**dur))
		return nil
	default:
		return fmt.Errorf("prim %q: want sign, verify, reencrypt, reencrypt-cached or sha384", *what)
	}
	ops, secs := measure(w, *dur, mk)
	emit(Row{ID: *id, Items: ops, Seconds: secs, Note: fmt.Sprintf("ECDSA P-384 %s + SHA-384 of %d bytes per message, %d goroutine(s)", *what, *size, w)})
	return nil
}

// verifyCompressed is what a decryption does with the key in a signed
// message's header: decompress the point into a new public key (so that
// nothing is cached from an earlier message) and verify with it.
func verifyCompressed(compressed, msg, sig []byte) {
	x, y := elliptic.UnmarshalCompressed(elliptic.P384(), compressed)
	if x == nil {
		panic("bench: verification key rejected")
	}
	raw := make([]byte, 1+2*48)
	raw[0] = 4
	x.FillBytes(raw[1:49])
	y.FillBytes(raw[49:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), raw)
	if err != nil || !ecsig.Verify(pub, msg, sig) {
		panic("bench: verification key or signature rejected")
	}
}

// sha384Row is the bound of one large signed message: SHA-384 on one
// core, fed as the engine feeds it (1 MiB batches: the row's bytes and
// seconds) and, for comparison, 4 KiB at a time (Value). The two
// alternate in 16 MiB slices for d in all, so that both see the same
// machine: on the shared 2-vCPU benchmark VM one core's SHA-384 rate
// drifts by up to ±20% within a minute, far more than the write size
// changes it (0-5%), and a bound measured apart from its comparison is
// off by that drift.
func sha384Row(id string, d time.Duration) Row {
	h, b := sha512.New384(), make([]byte, 1<<20)
	const slice = 16 << 20
	var big, small [2]float64 // bytes, seconds
	for start := time.Now(); time.Since(start) < d; {
		for i, ws := range []int{1 << 20, 4096} {
			t := time.Now()
			for n := 0; n < slice; n += ws {
				// Through the whole buffer at either size: the engine's
				// batch comes from another core's cache, so 4 KiB writes
				// of one L1-resident block would measure the cache too.
				off := n % len(b)
				h.Write(b[off : off+ws])
			}
			acc := &big
			if i == 1 {
				acc = &small
			}
			acc[0] += slice
			acc[1] += time.Since(t).Seconds()
		}
	}
	return Row{ID: id, Items: 1, Bytes: int64(big[0]), Seconds: big[1], Value: small[0] / small[1] / 1e6, Unit: "MB/s",
		Note: fmt.Sprintf("SHA-384 on one core, 1 MiB writes as the engine's batches (4 KiB writes, interleaved: %.0f MB/s)", small[0]/small[1]/1e6)}
}

// hasher returns a function hashing n bytes with SHA-384 in 4 KiB writes
// (a frame at a time, as the engine does).
func hasher(n int) func() {
	h, b := sha512.New384(), make([]byte, 4096)
	return func() {
		h.Reset()
		for left := n; left > 0; left -= len(b) {
			h.Write(b[:min(left, len(b))])
		}
		h.Sum(nil)
	}
}

// cmdKMSCalls is the KMS part of a re-encryption row alone: per file the
// KMS calls the row makes (Decrypt of the old data key, GenerateDataKey
// of the new one; Decrypt only with -cache, where the new key is reused),
// through the same keyring, SDK client and in-process emulator with the
// same latency and concurrency, and no message work: the "plain copy" of
// a KMS row.
func cmdKMSCalls(args []string) error {
	fs := flag.NewFlagSet("kmscalls", flag.ExitOnError)
	id := fs.String("id", "", "row id")
	conc := fs.Int("conc", 64, "concurrency")
	n := fs.Int("n", 10000, "files")
	cache := fs.Bool("cache", false, "Decrypt only (the data key of the new message is cached)")
	latency := fs.Duration("latency", 5*time.Millisecond, "latency injected into every KMS call")
	fs.Parse(args)
	k, err := startKMS()
	if err != nil {
		return err
	}
	defer k.srv.Close()
	ctx := context.Background()
	o := k.options()
	kr, err := awskms.New(ctx, awskms.Config{Keys: []string{k.old}, Endpoint: o.KMS.Endpoint, Region: o.KMS.Region, Credentials: o.KMS.Credentials})
	if err != nil {
		return err
	}
	suite := crypto.SuiteByID(0x0578)
	ec := crypto.EncryptionContext{"tenant": "acme"}
	first := &crypto.EncryptionMaterials{Suite: suite, Context: ec}
	if err := kr.OnEncrypt(ctx, first); err != nil {
		return err
	}
	k.emu.SetFaults(kmsemu.Faults{Latency: *latency})
	k.emu.ResetCalls()
	g := new(errgroup.Group)
	g.SetLimit(*conc)
	t := time.Now()
	for range *n {
		g.Go(func() error {
			dm := &crypto.DecryptionMaterials{Suite: suite, Context: ec}
			if err := kr.OnDecrypt(ctx, dm, first.EncryptedDataKeys); err != nil {
				return err
			}
			if *cache {
				return nil
			}
			return kr.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: suite, Context: ec})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	secs := time.Since(t).Seconds()
	calls := map[string]int64{}
	for op, c := range k.emu.Calls() {
		if c > 0 {
			calls[op] = c
		}
	}
	emit(Row{ID: *id, Items: int64(*n), Seconds: secs, Calls: calls,
		Note: fmt.Sprintf("KMS calls alone (keyring OnDecrypt%s), %v per call, concurrency %d, %d connections to KMS", map[bool]string{false: " + OnEncrypt", true: ""}[*cache], *latency, *conc, k.conns.Load())})
	return nil
}
