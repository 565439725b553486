package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/spf13/pflag"

	"github.com/encjob/encjob/kmsemu"
)

// TestMain lets the tests run the real main() in a subprocess of the test
// binary, without building the command.
func TestMain(m *testing.M) {
	if os.Getenv("KMSEMU_RUN_MAIN") == "1" {
		os.Args = append([]string{"kmsemu"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    config
		wantErr string // substring naming the flag; "" = no error
	}{
		{"defaults", nil, config{addr: "127.0.0.1:4599"}, ""},
		{"all flags", []string{"--addr", "127.0.0.1:0", "--seed", "k.yaml", "--latency", "5ms", "--jitter", "2ms", "--throttle-rate", "0.3", "--error-rate", "0.05"},
			config{addr: "127.0.0.1:0", seed: "k.yaml", faults: kmsemu.Faults{Latency: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, ThrottleRate: 0.3, ErrorRate: 0.05}}, ""},
		{"rate above 1", []string{"--throttle-rate", "1.5"}, config{}, "--throttle-rate"},
		{"negative error rate", []string{"--error-rate=-0.1"}, config{}, "--error-rate"},
		{"negative latency", []string{"--latency", "-1s"}, config{}, "--latency"},
		{"bad duration", []string{"--jitter", "soon"}, config{}, "jitter"},
		{"bad addr", []string{"--addr", "4599"}, config{}, "--addr"},
		{"positional argument", []string{"keys.yaml"}, config{}, "keys.yaml"},
		{"unknown flag", []string{"--port", "1"}, config{}, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := parseArgs(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseArgs = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, _, err := parseArgs([]string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:4599": true, "[::1]:1": true, "localhost:1": true,
		":4599": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "example.com:1": false,
	} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%s) = %v", addr, !want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesSeedAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	addrs := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--seed", "../../kmsemu/testdata/keys.yaml"}, &stderr, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case code := <-done:
		t.Fatalf("run exited with %d: %s", code, stderr.String())
	}
	client := kms.New(kms.Options{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAKMSEMUTEST", "not-a-secret", ""),
		BaseEndpoint: aws.String("http://" + addr.String()),
		Retryer:      aws.NopRetryer{},
	})
	out, err := client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/encjob-global"), Plaintext: []byte("demo")})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"; aws.ToString(out.KeyId) != want {
		t.Fatalf("Encrypt used %s, want %s", aws.ToString(out.KeyId), want)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit status %d after shutdown: %s", code, stderr.String())
	}
	log := stderr.String()
	for _, want := range []string{
		"kmsemu: listening on http://" + addr.String(),
		"kmsemu: key arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab alias/encjob-demo",
		"kmsemu: key arn:aws:kms:ap-southeast-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab alias/encjob-global",
		"key/33334444-5555-6666-7777-888899990000 (Disabled) alias/encjob-disabled",
		"kmsemu: stopped",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"usage", []string{"--throttle-rate", "7"}, 2, "kmsemu: error: --throttle-rate"},
		{"missing seed", []string{"--seed", "testdata/none.yaml"}, 1, "testdata/none.yaml"},
		{"help", []string{"--help"}, 0, "usage: kmsemu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tc.args, &stderr, nil); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// TestSIGINT runs main in a subprocess and interrupts it.
func TestSIGINT(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--addr", "127.0.0.1:0", "--seed", "../../kmsemu/testdata/keys.yaml", "--latency", "1ms")
	cmd.Env = append(os.Environ(), "KMSEMU_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "kmsemu: hint:") {
			break // everything is printed and the server is about to serve
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	log.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGINT: %v\n%s", err, log.String())
	}
	for _, want := range []string{"kmsemu: listening on http://127.0.0.1:", "faults: latency 1ms", "kmsemu: shutting down", "kmsemu: stopped"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, log.String())
		}
	}
}
