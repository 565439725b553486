package executor_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// changingDest changes the item's source the first time its output is
// written to, that is while the executor is still reading the source (a
// deterministic stand-in for a writer racing the job).
type changingDest struct {
	sources.Destination
	fired  *atomic.Bool
	change func()
}

func (d changingDest) Create(ctx context.Context, key string, o sources.CreateOptions) (sources.Writer, error) {
	w, err := d.Destination.Create(ctx, key, o)
	if err != nil {
		return nil, err
	}
	return &changingWriter{Writer: w, d: d}, nil
}

type changingWriter struct {
	sources.Writer
	d changingDest
}

func (w *changingWriter) Write(p []byte) (int, error) {
	if w.d.fired.CompareAndSwap(false, true) {
		time.Sleep(10 * time.Millisecond) // let the clock move on: ctime and mtime tick
		w.d.change()
	}
	return w.Writer.Write(p)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

// sourceChanges are the ways a source changes under a reader.
var sourceChanges = map[string]func(t *testing.T, p string, next []byte){
	"append": func(t *testing.T, p string, next []byte) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.Write(next)
		f.Close()
	},
	"rewrite in place, same size, mtime restored": func(t *testing.T, p string, next []byte) {
		fi, _ := os.Stat(p)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.Write(next[:min(len(next), int(fi.Size()))])
		f.Close()
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
	},
	"truncate": func(t *testing.T, p string, next []byte) { os.Truncate(p, 100) },
	"renamed over": func(t *testing.T, p string, next []byte) {
		os.WriteFile(p+".tmp", next, 0o644)
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Error(err)
		}
	},
}

// TestSourceChangedWhileEncrypting: a source that changes while it is
// encrypted never yields a committed output. Without retries the item
// fails with a retryable ErrSourceChanged and no output; with retries the
// item is planned again and its new content is what gets encrypted.
func TestSourceChangedWhileEncrypting(t *testing.T) {
	for name, change := range sourceChanges {
		for _, retries := range []int{0, 2} {
			t.Run(name+"/retries="+string(rune('0'+retries)), func(t *testing.T) {
				dir := t.TempDir()
				in, enc, dec := filepath.Join(dir, "in"), filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
				files := writeTree(t, in, map[string]int{"big.bin": 1 << 20, "other.bin": 5000})
				src := filepath.Join(in, "big.bin")
				next := randBytes(1 << 20)
				var fired atomic.Bool
				wrap := func(d sources.Destination) sources.Destination {
					return changingDest{Destination: d, fired: &fired, change: func() { change(t, src, next) }}
				}
				env := map[string]string{"OP": "encrypt", "IN": in, "OUT": enc, "KEY": filepath.Join(dir, "k")}
				// Only big.bin's output triggers the change.
				files["other.bin"] = nil
				r, recs := applyWith(t, jobFor(t, env), planner.Options{WrapDestination: func(d sources.Destination) sources.Destination {
					return onlyKey{Destination: d, key: "big.bin", wrapped: wrap(d)}
				}}, executor.Options{Retries: executor.Retry(retries), Concurrency: 1})
				if !fired.Load() {
					t.Fatal("the source was never changed: the test proved nothing")
				}
				checkOutputs(t, dir, recs)
				out := filepath.Join(enc, "big.bin.encrypted")
				if retries == 0 {
					if len(r.sum.Failed) != 1 || !errors.Is(r.sum.Failed[0].Err, sources.ErrSourceChanged) || !sources.IsRetryable(r.sum.Failed[0].Err) {
						t.Fatalf("want big.bin to fail with a retryable ErrSourceChanged: %+v", r.sum.Failed)
					}
					if msg := r.sum.Failed[0].Err.Error(); !strings.Contains(msg, "big.bin") || !strings.Contains(msg, "changed") {
						t.Errorf("error does not say what changed: %s", msg)
					}
					if _, err := os.Stat(out); err == nil {
						t.Fatal("an output was committed from a source that changed while it was read")
					}
					// The next run encrypts what the file holds now.
					r, _ = applyWith(t, jobFor(t, env), planner.Options{}, executor.Options{Retries: executor.Retry(0)})
				}
				if !r.sum.OK() {
					t.Fatalf("failures: %+v", r.sum.Failed)
				}
				want, _ := os.ReadFile(src)
				denv := map[string]string{"OP": "decrypt", "IN": out, "OUT": filepath.Join(dec, "big.bin"), "KEY": env["KEY"]}
				if r, _ := applyWith(t, jobFor(t, denv), planner.Options{}, executor.Options{Retries: executor.Retry(0)}); !r.sum.OK() {
					t.Fatalf("decrypt back: %+v", r.sum.Failed)
				}
				if got, err := os.ReadFile(filepath.Join(dec, "big.bin")); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("the output is not the source's current content (%d bytes, want %d): %v", len(got), len(want), err)
				}
			})
		}
	}
}

// onlyKey routes the outputs of one key through a wrapped destination.
type onlyKey struct {
	sources.Destination
	key     string
	wrapped sources.Destination
}

func (d onlyKey) Create(ctx context.Context, key string, o sources.CreateOptions) (sources.Writer, error) {
	if strings.HasPrefix(key, d.key) {
		return d.wrapped.Create(ctx, key, o)
	}
	return d.Destination.Create(ctx, key, o)
}

// TestSourceChangedWhileReencryptingInPlace: an in-place re-encryption
// whose source is replaced by another message while it is read neither
// commits nor overwrites the newcomer; the retry re-encrypts the newcomer.
func TestSourceChangedWhileReencryptingInPlace(t *testing.T) {
	for _, retries := range []int{0, 3} {
		dir := t.TempDir()
		in, tree := filepath.Join(dir, "in"), filepath.Join(dir, "tree")
		plain := writeTree(t, in, map[string]int{"a.bin": 1 << 20, "b.bin": 3000})
		key := filepath.Join(dir, "k")
		env := map[string]string{"OP": "encrypt", "IN": in, "OUT": tree, "KEY": key}
		if r := run(t, jobFor(t, env)); !r.sum.OK() {
			t.Fatal(r.sum.Failed)
		}
		// The newcomer: another message, of other plaintext.
		other := filepath.Join(dir, "other")
		writeTree(t, other, map[string]int{"a.bin": 70000})
		newPlain, _ := os.ReadFile(filepath.Join(other, "a.bin"))
		if r := run(t, jobFor(t, map[string]string{"OP": "encrypt", "IN": other, "OUT": filepath.Join(dir, "otherenc"), "KEY": key})); !r.sum.OK() {
			t.Fatal(r.sum.Failed)
		}
		newcomer, _ := os.ReadFile(filepath.Join(dir, "otherenc", "a.bin.encrypted"))
		target := filepath.Join(tree, "a.bin.encrypted")
		var fired atomic.Bool
		job := loadJob(t, inPlaceReencrypt, map[string]string{"IN": tree, "KEY": key})
		r, _ := applyWith(t, job, planner.Options{WrapDestination: func(d sources.Destination) sources.Destination {
			return onlyKey{Destination: d, key: "a.bin", wrapped: changingDest{Destination: d, fired: &fired, change: func() {
				sourceChanges["renamed over"](t, target, newcomer)
			}}}
		}}, executor.Options{Retries: executor.Retry(retries), Concurrency: 1})
		if !fired.Load() {
			t.Fatal("the source was never changed")
		}
		got, _ := os.ReadFile(target)
		if retries == 0 {
			if len(r.sum.Failed) != 1 || !errors.Is(r.sum.Failed[0].Err, sources.ErrSourceChanged) {
				t.Fatalf("want a.bin to fail with ErrSourceChanged: %+v", r.sum.Failed)
			}
			if !bytes.Equal(got, newcomer) {
				t.Fatal("the newcomer was replaced")
			}
			continue
		}
		if !r.sum.OK() || r.sum.Done[planner.Reencrypt] != 2 {
			t.Fatalf("retries=%d: %+v %v", retries, r.sum.Done, r.sum.Failed)
		}
		if bytes.Equal(got, newcomer) {
			t.Fatal("the newcomer was not re-encrypted")
		}
		dec := filepath.Join(dir, "dec")
		if r := run(t, jobFor(t, map[string]string{"OP": "decrypt", "IN": tree, "OUT": dec, "KEY": key})); !r.sum.OK() {
			t.Fatal(r.sum.Failed)
		}
		if b, _ := os.ReadFile(filepath.Join(dec, "a.bin")); !bytes.Equal(b, newPlain) {
			t.Fatal("a.bin does not decrypt to the newcomer's plaintext")
		}
		if b, _ := os.ReadFile(filepath.Join(dec, "b.bin")); !bytes.Equal(b, plain["b.bin"]) {
			t.Fatal("b.bin lost")
		}
	}
}

const inPlaceReencrypt = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: t}
spec:
  operation: reencrypt
  sources: [{path: "${IN}"}]
  output: {inPlace: true}
  keyGroups:
    dev: {provider: raw-aes, keyFile: "${KEY}", namespace: encjob, name: dev}
  decrypt: {keyGroup: dev, requireContext: {tenant: acme}}
  encrypt: {keyGroup: dev}
  reencrypt: {add: {rotated: "yes"}}
`
