package nettimeout

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// At a concurrency above the SDK's 10 idle connections per host, calls
// must keep reusing their connections instead of dialling (and, against
// AWS, handshaking TLS) a new one per call: rounds of 64 concurrent
// requests open about 64 connections, not one per request.
func TestConnectionsReusedAtHighConcurrency(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := Client(10*time.Second, 10*time.Second)
	const conc, rounds = 64, 5
	for range rounds {
		var wg sync.WaitGroup
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", srv.URL, nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	if n := conns.Load(); n > 2*conc {
		t.Fatalf("%d connections for %d requests at concurrency %d", n, conc*rounds, conc)
	}
}
