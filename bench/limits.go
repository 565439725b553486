package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/encjob/encjob/crypto/ecsig"
)

// cmdLimits measures what this machine allows: the stdlib primitives the
// ESDK suites are made of, per core and on all cores, and plain file copy.
func cmdLimits(args []string) error {
	fs := flag.NewFlagSet("limits", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	fs.String("id", "limits", "row id (names the CPU profile)")
	dur := fs.Duration("time", 500*time.Millisecond, "time per primitive measurement")
	fs.Parse(args)
	cores := runtime.GOMAXPROCS(0)

	measurePrimitives(*dur, cores)
	if *dir == "" {
		return nil
	}
	if err := measureCopyLarge(*dir); err != nil {
		return err
	}
	return measureCopySmall(*dir, cores)
}

// measurePrimitives emits the rate of each primitive on one core and on all.
func measurePrimitives(dur time.Duration, cores int) {
	key := make([]byte, 32)
	blk, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(blk)
	msg := make([]byte, 32)
	priv, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sig, _ := ecdsa.SignASN1(rand.Reader, priv, msg)
	prims := []struct {
		id   string
		unit string // "MB/s" (4 KiB per op) or "us/op"
		fn   func() func()
	}{
		{"gcm-seal-4k", "MB/s", func() func() {
			pt, out, iv := make([]byte, 4096), make([]byte, 0, 4096+16), make([]byte, 12)
			return func() { out = gcm.Seal(out[:0], iv, pt, nil) }
		}},
		{"sha384-4k", "MB/s", func() func() {
			h, pt := sha512.New384(), make([]byte, 4096)
			return func() { h.Write(pt) }
		}},
		// The engine signs and verifies with crypto/ecsig; crypto/ecdsa's rates
		// beside them show what its blinded Euclid inversion saves.
		{"ecdsa-p384-sign", "us/op", func() func() {
			return func() { ecsig.Sign(rand.Reader, priv, msg) }
		}},
		{"ecdsa-p384-verify", "us/op", func() func() {
			return func() {
				if !ecsig.Verify(&priv.PublicKey, msg, sig) {
					panic("verify")
				}
			}
		}},
		{"stdlib-ecdsa-p384-sign", "us/op", func() func() {
			return func() { ecdsa.SignASN1(rand.Reader, priv, msg) }
		}},
		{"stdlib-ecdsa-p384-verify", "us/op", func() func() {
			return func() {
				if !ecdsa.VerifyASN1(&priv.PublicKey, msg, sig) {
					panic("verify")
				}
			}
		}},
		{"ecdsa-p384-keygen", "us/op", func() func() {
			return func() { ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }
		}},
	}
	for _, p := range prims {
		for _, w := range []int{1, cores} {
			ops, secs := measure(w, dur, p.fn)
			r := Row{ID: fmt.Sprintf("limit/%s/%s", p.id, coresLabel(w, cores)), Items: ops, Seconds: secs, Unit: p.unit}
			if p.unit == "MB/s" {
				r.Bytes = ops * 4096
				r.Value = float64(r.Bytes) / secs / 1e6
			} else {
				r.Value = secs * float64(w) / float64(ops) * 1e6 // CPU time per op
				r.Note = fmt.Sprintf("%.0f ops/s", float64(ops)/secs)
			}
			emit(r)
		}
	}
}

// measureCopyLarge emits the plain-copy rate of the large file: read and
// write through a 1 MiB buffer, then fsync (the executor makes its outputs
// durable too).
func measureCopyLarge(dir string) error {
	src := filepath.Join(dir, "large", "file")
	dst := filepath.Join(dir, "out", "copy-large")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	unix.Sync()
	t := time.Now()
	n, err := copyFile(src, dst, true)
	if err != nil {
		return err
	}
	emit(Row{ID: "limit/copy-large", Items: 1, Bytes: n, Seconds: time.Since(t).Seconds(), Unit: "MB/s",
		Value: float64(n) / time.Since(t).Seconds() / 1e6, Note: "read + write 1 MiB at a time + fsync, page-cached input"})
	os.Remove(dst)
	return nil
}

// measureCopySmall emits the plain-copy rate of the small files on
// 2 x cores goroutines, one syncfs at the end (as the executor's group
// commit does).
func measureCopySmall(dir string, cores int) error {
	sc, err := readScale(dir)
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "out", "copy-small")
	unix.Sync()
	t := time.Now()
	g := new(errgroup.Group)
	g.SetLimit(2 * cores)
	var total atomic.Int64
	for i := 0; i < sc.Small; i += 1000 {
		if err := os.MkdirAll(filepath.Dir(treePath(root, i, 1000)), 0o755); err != nil {
			return err
		}
	}
	for i := range sc.Small {
		g.Go(func() error {
			in, out := treePath(filepath.Join(dir, "small"), i, 1000), treePath(root, i, 1000)
			n, err := copyFile(in, out, false)
			total.Add(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if f, err := os.Open(root); err == nil {
		unix.Syncfs(int(f.Fd()))
		f.Close()
	}
	secs := time.Since(t).Seconds()
	emit(Row{ID: "limit/copy-small", Items: int64(sc.Small), Bytes: total.Load(), Seconds: secs, Unit: "files/s",
		Value: float64(sc.Small) / secs, Note: fmt.Sprintf("%d goroutines, read + write each file, one syncfs", 2*cores)})
	// root is left for bench/run to discard: removing its files here
	// would slow the creates of the rows after it (see discard there).
	return nil
}

func coresLabel(w, cores int) string {
	if w == 1 {
		return "1core"
	}
	return fmt.Sprintf("%dcores", cores)
}

// measure runs fn on w goroutines for about d and returns the operations
// done and the elapsed seconds.
func measure(w int, d time.Duration, mk func() func()) (int64, float64) {
	var ops atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range w {
		fn := mk()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for time.Now().Before(deadline) {
				for range 16 {
					fn()
				}
				n += 16
			}
			ops.Add(n)
		}()
	}
	wg.Wait()
	return ops.Load(), time.Since(start).Seconds()
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyFile copies through a user-space buffer (not copy_file_range, which
// would skip the data path an encryptor has to take).
func copyFile(src, dst string, sync bool) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	n, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, *buf)
	if err == nil && sync {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
