package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/encjob/encjob/crypto"
)

// TestOutputIntoDeviceOrPipe: -o naming a device (/dev/null's kind) or a
// named pipe writes the one output into it, as aws-encryption-cli does,
// and never replaces it (a commit by rename once replaced /dev/null by a
// regular file); -o naming a symlink writes through it, so the link stays
// a link.
func TestOutputIntoDeviceOrPipe(t *testing.T) {
	dir, files := setup(t)
	in := filepath.Join("in", "b", "c.bin")

	// A named pipe: what a reader gets is the message, and it decrypts.
	fifo := filepath.Join(dir, "pipe")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- b
	}()
	r := encjob(t, dir, nil, args("encrypt", "-i", in, "-o", "pipe", rawKey, "--metadata-output", "meta.jsonl")...)
	wantCode(t, r, 0)
	msg := <-got
	// The record names the pipe, as aws-encryption-cli's does, not "<stdout>".
	var rec struct{ Output string }
	if b, err := os.ReadFile(filepath.Join(dir, "meta.jsonl")); err != nil || json.Unmarshal(b, &rec) != nil || rec.Output != fifo {
		t.Errorf("metadata record output %q, want %q (%v): %s", rec.Output, fifo, err, b)
	}
	if h, err := crypto.ParseHeader(bytes.NewReader(msg)); err != nil || h == nil {
		t.Fatalf("the pipe carried no ESDK message (%d bytes): %v", len(msg), err)
	}
	mustKind(t, fifo, os.ModeNamedPipe)
	if err := os.WriteFile(filepath.Join(dir, "c.enc"), msg, 0o600); err != nil {
		t.Fatal(err)
	}

	// A character device, where the test may create one (root).
	null := filepath.Join(dir, "null")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
		r = encjob(t, dir, nil, args("decrypt", "-i", "c.enc", "-o", "null", rawKey, "--metadata-output", "-")...)
		wantCode(t, r, 0)
		mustKind(t, null, os.ModeDevice|os.ModeCharDevice)
		if !strings.Contains(r.stdout, `"mode":"decrypt"`) {
			t.Errorf("metadata on stdout missing beside a device output: %q", r.stdout)
		}
	} else {
		t.Logf("mknod: %v: the character device case needs root", err)
	}

	// A symlink to /proc/self/fd/1 (what /dev/stdout is) when stdout is a
	// regular file: written into that stream, after what is already there,
	// not by replacing the file (which would cut the shell's output off).
	if err := os.Symlink("/proc/self/fd/1", filepath.Join(dir, "mystdout")); err != nil {
		t.Fatal(err)
	}
	redirect := filepath.Join(dir, "redirect.out")
	rf := appendTo(t, redirect, "before\n")
	cmd := exec.Command(binPath, args("decrypt", "-i", "c.enc", "-o", "mystdout", rawKey, "-S")...)
	var stderr bytes.Buffer
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, cleanEnv(), rf, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("decrypt -o mystdout > file: %v\n%s", err, stderr.String())
	}
	rf.Write([]byte("after\n"))
	rf.Close()
	if b, _ := os.ReadFile(redirect); !bytes.Equal(b, append(append([]byte("before\n"), files["b/c.bin"]...), "after\n"...)) {
		t.Errorf("the redirect holds %d bytes, want before + plaintext + after", len(b))
	}

	// A symlink to a regular file: written through; the link stays.
	if err := os.WriteFile(filepath.Join(dir, "target.out"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.out", filepath.Join(dir, "link.out")); err != nil {
		t.Fatal(err)
	}
	r = encjob(t, dir, nil, args("decrypt", "-i", "c.enc", "-o", "link.out", rawKey, "-S")...)
	wantCode(t, r, 0)
	mustKind(t, filepath.Join(dir, "link.out"), os.ModeSymlink)
	if b, _ := os.ReadFile(filepath.Join(dir, "target.out")); !bytes.Equal(b, files["b/c.bin"]) {
		t.Errorf("target.out holds %d bytes, want the %d-byte plaintext", len(b), len(files["b/c.bin"]))
	}

	// In a tree job an output name holding a pipe is a conflict, planned
	// as one, and the pipe stays.
	if err := unix.Mkfifo(filepath.Join(dir, "enc", "a.txt.encrypted"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = encjob(t, dir, nil, args("encrypt", "-i", "in", "-r", "-o", "enc", rawKey, "-S")...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "named pipe (fifo), not a regular file") {
		t.Errorf("stderr does not name the conflict:\n%s", r.stderr)
	}
	mustKind(t, filepath.Join(dir, "enc", "a.txt.encrypted"), os.ModeNamedPipe)
}

func mustKind(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode().Type() != want {
		t.Fatalf("%s: %v (%v), want type %v kept", p, fi.Mode(), err, want)
	}
}

// TestReportEndsOnSignalWhileBlocked: encjob report reading a named pipe
// that has no writer blocks in open(2), where no context reaches; a
// SIGTERM must still end it (exit 130), not leave it hanging until a
// second signal.
func TestReportEndsOnSignalWhileBlocked(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "log.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	arg := fifo
	cmd := exec.Command(binPath, "report", arg)
	var stderr bytes.Buffer
	cmd.Env, cmd.Stderr = cleanEnv(), &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // into the blocking open (not a timing assertion)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("report %s still running 20 s after SIGTERM: %s", arg, stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("report %s: exit %d after SIGTERM, want 130: %s", arg, code, stderr.String())
	}
}
