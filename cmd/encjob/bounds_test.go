package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
)

// claimingMessage returns a message under dir/key whose authenticated
// header claims frames of frameLen bytes, followed by the start of one
// regular frame and nothing else: a few hundred bytes that claim
// gigabytes.
func claimingMessage(t *testing.T, dir string, frameLen int) []byte {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.NewRawAES("encjob", "test", key)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := crypto.Encrypt(context.Background(), nil, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(kr),
		Suite: crypto.SuiteByID(0x0478), FrameLength: frameLen, CommitmentPolicy: crypto.RequireEncryptRequireDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	msg := append([]byte(nil), ct[:h.Len()]...)
	msg = binary.BigEndian.AppendUint32(msg, 1) // sequence number 1, not final
	return append(msg, make([]byte, 12+20)...)  // IV and 20 bytes of the 2 GiB
}

// rssWrapSrc is a tiny program that runs its arguments and writes the
// child's ru_maxrss (KiB) to $RSSWRAP_OUT. It exists because os/exec starts
// children with CLONE_VM: Linux then counts the parent's peak RSS (this test
// process, ~100 MiB late in a full run) into the child's ru_maxrss at exec.
// Started from this small process instead, the figure is the binary's own.
const rssWrapSrc = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	c := exec.Command(os.Args[1], os.Args[2:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(125)
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	if err := os.WriteFile(os.Getenv("RSSWRAP_OUT"), []byte(fmt.Sprint(ru.Maxrss)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(125)
	}
	os.Exit(code)
}
`

var (
	rssWrapOnce sync.Once
	rssWrapPath string
	rssWrapErr  error
)

func rssWrap(t *testing.T) string {
	t.Helper()
	rssWrapOnce.Do(func() {
		dir := filepath.Join(filepath.Dir(binPath), "rsswrap")
		if rssWrapErr = os.MkdirAll(dir, 0o755); rssWrapErr != nil {
			return
		}
		src := filepath.Join(dir, "main.go")
		if rssWrapErr = os.WriteFile(src, []byte(rssWrapSrc), 0o644); rssWrapErr != nil {
			return
		}
		rssWrapPath = filepath.Join(dir, "rsswrap")
		cmd := exec.Command("go", "build", "-o", rssWrapPath, src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GO111MODULE=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			rssWrapErr = fmt.Errorf("building rsswrap: %v\n%s", err, out)
		}
	})
	if rssWrapErr != nil {
		t.Fatal(rssWrapErr)
	}
	return rssWrapPath
}

// runRusage runs the binary and returns its result and peak RSS in KiB
// (getrusage's ru_maxrss of the binary, measured by rsswrap).
func runRusage(t *testing.T, dir string, a ...string) (result, int64) {
	t.Helper()
	wrap := rssWrap(t)
	out := filepath.Join(t.TempDir(), "maxrss")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrap, append([]string{binPath}, a...)...)
	cmd.Dir, cmd.Env = dir, append(cleanEnv(), "RSSWRAP_OUT="+out)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("encjob %q did not finish within 2 minutes; stderr: %s", a, se.String())
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running encjob: %v", err)
	}
	if cmd.ProcessState.ExitCode() == 125 {
		t.Fatalf("rsswrap failed: %s", se.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no peak RSS recorded: %v; stderr: %s", err, se.String())
	}
	rss, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		t.Fatalf("peak RSS %q: %v", b, err)
	}
	return result{so.String(), se.String(), cmd.ProcessState.ExitCode()}, rss
}

// TestClaimedFrameLengthRSS is issue 12.12 through the real binary: 16
// files of about 240 bytes, each claiming 2 GiB frames, decrypted with 16
// items in parallel. Before the fix this took 10.5 GB of RSS (every item
// allocated its claimed frame); memory must now follow the bytes read.
func TestClaimedFrameLengthRSS(t *testing.T) {
	dir, _ := setup(t)
	msg := claimingMessage(t, dir, crypto.MaxFrameLength)
	os.Mkdir(filepath.Join(dir, "claims"), 0o755)
	for i := range 16 {
		if err := os.WriteFile(filepath.Join(dir, "claims", fmt.Sprintf("f%02d.encrypted", i)), msg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: claims}
spec:
  operation: decrypt
  sources: [{path: ./claims}]
  output: {path: ./dec}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}
  decrypt: {keyGroup: dev}
  execution: {concurrency: 16, retries: 0}
`), 0o644)
	r, rss := runRusage(t, dir, "apply", "-f", "job.yaml")
	wantCode(t, r, 1)
	if n := strings.Count(r.stderr, "truncated message"); n != 16 {
		t.Errorf("%d of 16 items failed as truncated; stderr:\n%s", n, r.stderr)
	}
	t.Logf("16 files of %d bytes claiming %d-byte frames: peak RSS %d KiB", len(msg), crypto.MaxFrameLength, rss)
	if rss > 100<<10 {
		t.Fatalf("peak RSS %d KiB for 16 files of %d bytes (limit 100 MiB)", rss, len(msg))
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "dec")); len(entries) != 0 {
		t.Errorf("outputs left behind: %v", entries)
	}
}

// bigMessage encrypts n pseudo-random bytes under dir/key with a signed
// suite; badSig flips the last byte of the signature.
func bigMessage(t *testing.T, dir string, n int, badSig bool) []byte {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.NewRawAES("encjob", "test", key)
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	ct, err := crypto.Encrypt(context.Background(), pt, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(kr),
		Suite: crypto.SuiteByID(0x0578), FrameLength: 65536, CommitmentPolicy: crypto.RequireEncryptRequireDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	if badSig {
		ct[len(ct)-1] ^= 1
	}
	return ct
}

// TestBufferReleasesNothingUnverified is issue 12.9: decrypting to stdout
// (with --buffer, and without) writes nothing before the whole message,
// signature included, verified, also when the message is larger than the
// memory stage and spills to a temporary file, which leaves nothing in
// $TMPDIR. A good message of the same size comes out whole.
func TestBufferReleasesNothingUnverified(t *testing.T) {
	dir, _ := setup(t)
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	size := 20 << 20 // > sources.StdoutMemory
	os.WriteFile(filepath.Join(dir, "bad.encrypted"), bigMessage(t, dir, size, true), 0o644)
	os.WriteFile(filepath.Join(dir, "good.encrypted"), bigMessage(t, dir, size, false), 0o644)
	run := func(in string, extra ...string) result {
		cmd := exec.Command(binPath, args("decrypt", "-i", in, "-o", "-", rawKey, "-S", extra)...)
		cmd.Dir, cmd.Env = dir, append(cleanEnv(), "TMPDIR="+tmp)
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return result{so.String(), se.String(), cmd.ProcessState.ExitCode()}
	}
	for _, extra := range [][]string{{"--buffer"}, nil} {
		r := run("bad.encrypted", extra...)
		wantCode(t, r, 1)
		if len(r.stdout) != 0 {
			t.Errorf("%v: %d bytes of an unverified message reached stdout", extra, len(r.stdout))
		}
		if !strings.Contains(r.stderr, "signature does not verify") {
			t.Errorf("%v: stderr does not name the signature: %s", extra, r.stderr)
		}
		r = run("good.encrypted", extra...)
		wantCode(t, r, 0)
		if len(r.stdout) != size {
			t.Errorf("%v: good message: %d bytes on stdout, want %d", extra, len(r.stdout), size)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("staging files left in $TMPDIR: %v", left)
	}
}
