// Command kmsemu serves the encjob KMS emulator (package kmsemu) over HTTP,
// for local development, demos and benchmarks:
//
//	kmsemu --addr 127.0.0.1:4599 --seed keys.yaml [--latency 5ms --jitter 2ms --throttle-rate 0.3 --error-rate 0.05]
//
// It prints the listening address and the key ARNs it serves on stderr, and
// stops gracefully on SIGINT or SIGTERM. Point the AWS SDK or CLI at it with
// AWS_ENDPOINT_URL_KMS=http://127.0.0.1:4599 and any credentials (the
// emulator checks the shape of the SigV4 header, not the signature). The
// admin endpoint (GET /_emu/calls, POST /_emu/reset, GET/POST /_emu/faults,
// GET /_emu/keys) is documented in package kmsemu.
//
// Exit status: 0 after a clean shutdown, 1 if it cannot start or serve,
// 2 for a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/encjob/encjob/kmsemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	os.Exit(code)
}

// config is the parsed command line.
type config struct {
	addr   string
	seed   string // "" = no keys
	faults kmsemu.Faults
}

// parseArgs parses the command line; it returns pflag.ErrHelp for --help.
func parseArgs(args []string) (config, string, error) {
	var c config
	fs := pflag.NewFlagSet("kmsemu", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4599", "`host:port` to listen on (loopback by default; port 0 picks a free port)")
	fs.StringVar(&c.seed, "seed", "", "seed `file` (YAML) declaring the keys; none: start without keys")
	fs.DurationVar(&c.faults.Latency, "latency", 0, "fixed latency added to every KMS request")
	fs.DurationVar(&c.faults.Jitter, "jitter", 0, "random extra latency, uniform in [0, jitter]")
	fs.Float64Var(&c.faults.ThrottleRate, "throttle-rate", 0, "fraction of KMS requests answered with ThrottlingException (0..1)")
	fs.Float64Var(&c.faults.ErrorRate, "error-rate", 0, "fraction of KMS requests answered with a 500/503 error (0..1)")
	usage := "usage: kmsemu [flags]\n\nflags:\n" + fs.FlagUsages()
	if err := fs.Parse(args); err != nil {
		return c, usage, err
	}
	if fs.NArg() > 0 {
		return c, usage, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"--throttle-rate", c.faults.ThrottleRate}, {"--error-rate", c.faults.ErrorRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return c, usage, fmt.Errorf("%s %v: must be between 0 and 1", r.flag, r.v)
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--latency", c.faults.Latency}, {"--jitter", c.faults.Jitter}} {
		if d.v < 0 {
			return c, usage, fmt.Errorf("%s %v: must not be negative", d.flag, d.v)
		}
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return c, usage, fmt.Errorf("--addr %q: %w", c.addr, err)
	}
	return c, usage, nil
}

// run serves until ctx is done and returns the exit status. ready, if not
// nil, is called with the listening address once the server accepts
// connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) int {
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "kmsemu: "+format+"\n", a...) }
	cfg, usage, err := parseArgs(args)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprint(stderr, usage)
		return 0
	}
	if err != nil {
		say("error: %v", err)
		fmt.Fprint(stderr, usage)
		return 2
	}
	var seed *kmsemu.Seed
	if cfg.seed != "" {
		if seed, err = kmsemu.LoadSeed(cfg.seed); err != nil {
			say("error: %v", err)
			return 1
		}
	}
	emu, err := kmsemu.New(seed)
	if err != nil {
		say("error: %v", err)
		return 1
	}
	emu.SetFaults(cfg.faults)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		say("error: listen: %v", err)
		return 1
	}
	url := "http://" + ln.Addr().String()
	say("listening on %s", url)
	if !isLoopback(cfg.addr) {
		say("warning: %s is not a loopback address: anyone who can reach it can use the emulated keys", cfg.addr)
	}
	for _, k := range emu.Keys() {
		line := k.ARN
		if k.State != "Enabled" {
			line += " (" + k.State + ")"
		}
		if len(k.Aliases) > 0 {
			line += " " + strings.Join(k.Aliases, " ")
		}
		say("key %s", line)
	}
	if f := cfg.faults; f != (kmsemu.Faults{}) {
		say("faults: latency %v, jitter %v, throttle rate %v, error rate %v", f.Latency, f.Jitter, f.ThrottleRate, f.ErrorRate)
	}
	say("hint: export AWS_ENDPOINT_URL_KMS=%s; call counts at %s/_emu/calls", url, url)

	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-served:
		say("error: serve: %v", err)
		return 1
	case <-ctx.Done():
	}
	say("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		say("error: shutdown: %v", err)
		return 1
	}
	say("stopped")
	return 0
}

// isLoopback reports whether a listen address is on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
