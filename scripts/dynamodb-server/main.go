// Command dynamodb-server serves minidyn (github.com/truora/minidyn), an
// in-memory DynamoDB implementation written by others, on a loopback port,
// so the branch key store tests talk to a real DynamoDB wire protocol
// implementation rather than to a fake of our own. It lives in its own
// module so the project's go.mod does not gain minidyn and its test-only
// dependencies; scripts/setup.d/40-dynamodb.sh installs it.
//
// Besides DynamoDB's API (POST /, X-Amz-Target: DynamoDB_20120810.<Op>) the
// listener answers, without authentication:
//
//	GET  /_calls   {"GetItem":3,"TransactWriteItems":1,...}: requests per operation
//	POST /_reset   sets every counter to zero (204)
//
// so tests can count the calls their code made at the server.
//
// Usage: dynamodb-server [-addr 127.0.0.1:0]. The first line on stdout is
// "listening on http://HOST:PORT" once the listener accepts connections.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/truora/minidyn/server"
)

type counting struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_calls" && r.Method == http.MethodGet:
		c.mu.Lock()
		b, _ := json.Marshal(c.n)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	case r.URL.Path == "/_reset" && r.Method == http.MethodPost:
		c.mu.Lock()
		c.n = map[string]int64{}
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		op := t[strings.LastIndexByte(t, '.')+1:]
		c.mu.Lock()
		c.n[op]++
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("dynamodb-server: -addr %q: %v", *addr, err)
	}
	// A test server without authentication must not be reachable from
	// other machines.
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("dynamodb-server: -addr %q is not a loopback address", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("dynamodb-server: %v", err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	h := &counting{next: server.NewServer(), n: map[string]int64{}}
	log.Fatal(http.Serve(ln, h))
}
