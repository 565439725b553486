package awskms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// barrier lets requests through only once n of them are in flight at the
// same time, or 10 s after the first arrived (so that a failure does not
// hang): it records the most that were ever in flight together.
type barrier struct {
	next http.Handler
	n    int

	mu       sync.Mutex
	inFlight int
	most     int
	all      chan struct{}
	open     func() // closes all, once
}

func newBarrier(next http.Handler, n int) *barrier {
	b := &barrier{next: next}
	b.reset(n)
	return b
}

func (b *barrier) reset(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := make(chan struct{})
	b.n, b.most, b.all, b.open = n, 0, all, sync.OnceFunc(func() { close(all) })
}

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.inFlight++
	b.most = max(b.most, b.inFlight)
	all, open := b.all, b.open
	if b.inFlight == 1 {
		time.AfterFunc(10*time.Second, open)
	}
	if b.inFlight == b.n {
		open()
	}
	b.mu.Unlock()
	<-all
	b.next.ServeHTTP(w, r)
	b.mu.Lock()
	b.inFlight--
	b.mu.Unlock()
}

// A job at concurrency 64 hides KMS latency only if 64 calls can be in
// flight at once through one keyring: no lock in the keyring, its client
// cache or the SDK client serializes them, and the HTTP pool lets each
// have its own connection. The server holds every request until all 64
// have arrived, so any serialization shows up as fewer in flight.
func TestConcurrentCallsOverlap(t *testing.T) {
	const conc = 64
	emu := kmsemutest.Start(t, seedYAML).Emu
	for _, op := range []string{"Decrypt", "GenerateDataKey"} {
		t.Run(op, func(t *testing.T) {
			b := newBarrier(emu, conc)
			srv := httptest.NewServer(b)
			defer srv.Close()
			ctx := context.Background()
			kr, err := awskms.New(ctx, awskms.Config{Keys: []string{eastARN}, Region: "us-east-1", Endpoint: srv.URL, Credentials: kmsemutest.Credentials})
			if err != nil {
				t.Fatal(err)
			}
			var first *crypto.EncryptionMaterials
			if op == "Decrypt" {
				// The message to decrypt: its one call passes alone.
				b.reset(1)
				first = &crypto.EncryptionMaterials{Suite: suite, Context: ec}
				if err := kr.OnEncrypt(ctx, first); err != nil {
					t.Fatal(err)
				}
				b.reset(conc)
			}
			var wg sync.WaitGroup
			errs := make(chan error, conc)
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if op == "Decrypt" {
						errs <- kr.OnDecrypt(ctx, &crypto.DecryptionMaterials{Suite: suite, Context: ec}, first.EncryptedDataKeys)
					} else {
						errs <- kr.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: suite, Context: ec})
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			b.mu.Lock()
			most := b.most
			b.mu.Unlock()
			if most != conc {
				t.Fatalf("at most %d of %d concurrent %s calls were in flight together", most, conc, op)
			}
		})
	}
}
