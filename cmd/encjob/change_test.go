package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var sigterm os.Signal = syscall.SIGTERM

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// changeJob is an encrypt job of in/ into out/ under the overwrite policy
// OVERWRITE.
const changeJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: change}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./out, overwrite: OVERWRITE}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: dev}
  encrypt: {keyGroup: dev, context: {tenant: acme}}
`

// restoreStyles put the content of backup (whose mtime is old) at dst the
// way restore tools do: with the backup's old mtime.
var restoreStyles = map[string]func(t *testing.T, dir, backup, dst string){
	"cp -p": func(t *testing.T, dir, backup, dst string) { sh(t, dir, "cp", "-p", backup, dst) },
	"rsync -t": func(t *testing.T, dir, backup, dst string) {
		if _, err := exec.LookPath("rsync"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("rsync not installed; run scripts/setup.d/30-rsync.sh")
			}
			t.Skip("rsync not installed; run scripts/setup.d/30-rsync.sh")
		}
		sh(t, dir, "rsync", "-t", backup, dst)
	},
	"tar x": func(t *testing.T, dir, backup, dst string) {
		sh(t, dir, "tar", "-C", filepath.Dir(backup), "-cf", filepath.Join(dir, "bak.tar"), filepath.Base(backup))
		sh(t, dir, "tar", "-C", filepath.Dir(dst), "-xf", filepath.Join(dir, "bak.tar"))
	},
	"touch -r": func(t *testing.T, dir, backup, dst string) {
		b, _ := os.ReadFile(backup)
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0) // the same inode, rewritten
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
		f.Close()
		sh(t, dir, "touch", "-r", backup, dst)
	},
	"os.Chtimes": func(t *testing.T, dir, backup, dst string) {
		b, _ := os.ReadFile(backup)
		fi, _ := os.Stat(backup)
		f, err := os.OpenFile(dst, os.O_WRONLY, 0) // in place, no truncation
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
		f.Close()
		os.Chtimes(dst, fi.ModTime(), fi.ModTime())
	},
}

func sh(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// decryptOne decrypts one message with the test key and returns the
// plaintext.
func decryptOne(t *testing.T, dir, msg string) []byte {
	t.Helper()
	r := encjob(t, dir, nil, args("decrypt", "-i", msg, "-o", "-", "-w", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=dev", "-S")...)
	wantCode(t, r, 0)
	return []byte(r.stdout)
}

// TestRestoredSourceIsReencrypted: a source restored with new content
// under an older mtime (than the output's, and than the version before)
// is encrypted again, by every restore style, in spec mode (if-newer and
// always) and in the aws-encryption-cli mode; overwrite: never reports it
// as a conflict instead of calling it unchanged; and an output nobody
// touched stays unchanged (if-newer, never) or is rewritten (always).
func TestRestoredSourceIsReencrypted(t *testing.T) {
	for style, restore := range restoreStyles {
		t.Run(style, func(t *testing.T) {
			dir := t.TempDir()
			key := make([]byte, 32)
			rand.Read(key)
			os.WriteFile(filepath.Join(dir, "key"), key, 0o600)
			os.MkdirAll(filepath.Join(dir, "in"), 0o755)
			os.MkdirAll(filepath.Join(dir, "bak"), 0o755)
			src, out := filepath.Join(dir, "in", "a.txt"), filepath.Join(dir, "out", "a.txt.encrypted")
			// Same size on purpose: only identity can tell the versions apart.
			v1, v2 := []byte("version one of the file"), []byte("version TWO of the file")
			os.WriteFile(src, v1, 0o644)
			backup := filepath.Join(dir, "bak", "a.txt")
			os.WriteFile(backup, v2, 0o644)
			old := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
			os.Chtimes(backup, old, old)

			for _, ow := range []string{"if-newer", "always", "never"} {
				os.WriteFile(filepath.Join(dir, ow+".yaml"), []byte(strings.Replace(changeJob, "OVERWRITE", ow, 1)), 0o644)
			}
			wantCode(t, encjob(t, dir, nil, "apply", "-f", "if-newer.yaml"), 0)
			if got := decryptOne(t, dir, out); !bytes.Equal(got, v1) {
				t.Fatalf("first run: %q", got)
			}
			// Nothing touched: unchanged under if-newer and never, a rewrite
			// under always.
			for ow, want := range map[string]string{"if-newer": "1 unchanged", "never": "1 unchanged", "always": "1 to encrypt"} {
				r := encjob(t, dir, nil, "plan", "-f", ow+".yaml")
				wantCode(t, r, 0)
				if !strings.Contains(r.stdout, want) {
					t.Errorf("untouched, overwrite: %s: want %q in\n%s", ow, want, r.stdout)
				}
			}

			time.Sleep(20 * time.Millisecond)
			restore(t, dir, backup, src)
			if b, _ := os.ReadFile(src); !bytes.Equal(b, v2) {
				t.Fatalf("restore did not restore: %q", b)
			}
			ofi, _ := os.Stat(out)
			if sfi, _ := os.Stat(src); !sfi.ModTime().Before(ofi.ModTime()) {
				t.Fatalf("restored source (%v) is not older than the output (%v): the test proves nothing", sfi.ModTime(), ofi.ModTime())
			}

			// never: not unchanged, not replaced - a conflict that says why.
			r := encjob(t, dir, nil, "apply", "-f", "never.yaml")
			wantCode(t, r, 1)
			if !strings.Contains(r.stderr+r.stdout, "another version of the source") {
				t.Errorf("never: the conflict does not say why:\n%s%s", r.stdout, r.stderr)
			}
			if got := decryptOne(t, dir, out); !bytes.Equal(got, v1) {
				t.Fatal("overwrite: never replaced the output")
			}
			// if-newer re-encrypts the restored content.
			r = encjob(t, dir, nil, "apply", "-f", "if-newer.yaml")
			wantCode(t, r, 0)
			if got := decryptOne(t, dir, out); !bytes.Equal(got, v2) {
				t.Fatalf("if-newer: the output holds %q, want the restored %q", got, v2)
			}
			r = encjob(t, dir, nil, "plan", "-f", "if-newer.yaml")
			if !strings.Contains(r.stdout, "1 unchanged") {
				t.Errorf("after re-encrypting: %s", r.stdout)
			}

			// Once more, restoring v1 from another old backup (another old
			// mtime, or rsync's quick check would skip the copy): always
			// and the aws-encryption-cli mode re-encrypt too.
			restoreAgain := func(content []byte, mtime time.Time) {
				os.WriteFile(backup, content, 0o644)
				os.Chtimes(backup, mtime, mtime)
				time.Sleep(20 * time.Millisecond)
				restore(t, dir, backup, src)
				if b, _ := os.ReadFile(src); !bytes.Equal(b, content) {
					t.Fatalf("restore did not restore: %q", b)
				}
			}
			restoreAgain(v1, old.Add(time.Hour))
			wantCode(t, encjob(t, dir, nil, "apply", "-f", "always.yaml"), 0)
			if got := decryptOne(t, dir, out); !bytes.Equal(got, v1) {
				t.Fatalf("always: %q", got)
			}
			restoreAgain(v2, old.Add(2*time.Hour))
			wantCode(t, encjob(t, dir, nil, args("encrypt", "-r", "-i", "in", "-o", "out", "-w", "provider=raw-aes", "key-file=key",
				"namespace=encjob", "name=dev", "-c", "tenant=acme", "-S")...), 0)
			if got := decryptOne(t, dir, out); !bytes.Equal(got, v2) {
				t.Fatalf("CLI mode: %q", got)
			}
		})
	}
}

// TestCLIOverwriteAsAWSEncryptionCLI: the aws-encryption-cli mode replaces
// an existing output even when it is current (aws-encryption-cli has no
// notion of "unchanged"); --no-overwrite never replaces one: a current
// output is unchanged (exit 0), any other existing one a conflict (exit 1).
func TestCLIOverwriteAsAWSEncryptionCLI(t *testing.T) {
	dir, files := setup(t)
	enc := args("encrypt", "-r", "-i", "in", "-o", "enc", rawKey, "-S", "-v")
	wantCode(t, encjob(t, dir, nil, enc...), 0)
	out := filepath.Join(dir, "enc", "b", "c.bin.encrypted")
	before, _ := os.ReadFile(out)
	r := encjob(t, dir, nil, enc...)
	wantCode(t, r, 0)
	after, _ := os.ReadFile(out)
	if bytes.Equal(before, after) {
		t.Fatal("rerun in the aws-encryption-cli mode did not rewrite the output")
	}
	r = encjob(t, dir, nil, append(enc, "--no-overwrite")...)
	wantCode(t, r, 0)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, after) {
		t.Fatal("--no-overwrite rewrote a current output")
	}
	// A changed source with --no-overwrite: a conflict, output kept.
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(filepath.Join(dir, "in", "b", "c.bin"), append(files["b/c.bin"], 'x'), 0o644)
	r = encjob(t, dir, nil, append(enc, "--no-overwrite")...)
	wantCode(t, r, 1)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, after) {
		t.Fatal("--no-overwrite replaced an output")
	}
}

// resumeJob runs OP on SRC into OUTPUT, with METADATA: key group old
// (key) decrypts, new (key2) encrypts.
const resumeJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: resume}
spec:
  operation: OP
  sources: [{path: ./SRC}]
  output: OUTPUT
  keyGroups:
    old: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: dev}
    new: {provider: raw-aes, keyFile: ./key2, namespace: encjob, name: new}
  execution: {concurrency: 4}
`

// TestResumeEveryOperation interrupts jobs of every operation (to a
// separate directory and in place, with and without a metadata log) with
// SIGKILL or SIGTERM once a random share of their outputs is committed,
// several times, then lets them finish: the last run exits 0, every
// output holds the original content, no output is written twice (once an
// output is committed its inode never changes again; with a log, no input
// has two "done" records), and a further run changes nothing. Without a
// metadata log only the destinations' provenance records tell what an
// earlier run completed.
func TestResumeEveryOperation(t *testing.T) {
	const n = 150
	for _, tc := range []struct {
		op      string
		inPlace bool
		log     bool
		sig     os.Signal
	}{
		{"decrypt", false, true, os.Kill},
		{"decrypt", false, false, os.Kill},
		{"decrypt", false, false, sigterm},
		{"decrypt", true, true, sigterm},
		{"decrypt", true, false, os.Kill},
		{"decrypt", true, true, os.Kill},
		{"encrypt", false, false, os.Kill},
		{"encrypt", true, false, sigterm},
		{"reencrypt", false, false, sigterm},
		{"reencrypt", true, false, os.Kill},
	} {
		where, log := "separate", "nolog"
		if tc.inPlace {
			where = "inplace"
		}
		if tc.log {
			log = "log"
		}
		t.Run(fmt.Sprintf("%s/%s/%s/%v", tc.op, where, log, tc.sig), func(t *testing.T) {
			// A scenario whose runs all finished between two polls (one
			// group commit can publish many outputs at once) proves
			// little: it is run again, up to three times.
			for attempt := 1; ; attempt++ {
				progress := resumeScenario(t, n, tc.op, tc.inPlace, tc.log, tc.sig)
				midway := false
				for i, c := range progress {
					midway = midway || c > 0 && c < n && (i == 0 || c > progress[i-1])
				}
				if midway {
					t.Logf("%d items; outputs committed after each interrupted run: %v; all intact and written once", n, progress)
					return
				}
				if attempt == 3 {
					t.Fatalf("no interrupted run had committed some but not all outputs in %d attempts (last: %v): the test proved little", attempt, progress)
				}
				t.Logf("attempt %d: no run interrupted midway (%v); again", attempt, progress)
			}
		})
	}
}

// resumeScenario is one TestResumeEveryOperation scenario; it returns how
// many outputs were committed after each interrupted run.
func resumeScenario(t *testing.T, n int, op string, inPlace, log bool, sig os.Signal) []int {
	dir := t.TempDir()
	for _, k := range []string{"key", "key2"} {
		b := make([]byte, 32)
		rand.Read(b)
		os.WriteFile(filepath.Join(dir, k), b, 0o600)
	}
	files := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("d%d/f%03d.bin", i%5, i)
		b := make([]byte, 20000+i*53)
		rand.Read(b)
		p := filepath.Join(dir, "plain", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
		files[name] = b
	}
	// src/ holds the job's sources: <name> to encrypt, else the
	// message <name>.enc.
	srcExt := ".enc"
	if op == "encrypt" {
		sh(t, dir, "cp", "-a", "plain", "src")
		srcExt = ""
	} else {
		os.Mkdir(filepath.Join(dir, "src"), 0o755)
		wantCode(t, encjob(t, dir, nil, args("encrypt", "-r", "-i", "plain", "-o", "src", "-w", "provider=raw-aes", "key-file=key",
			"namespace=encjob", "name=dev", "-c", "tenant=acme", "-S", "--suffix", ".enc")...), 0)
	}
	// Outputs are <name><ext>: messages <name>.enc, plaintext
	// <name>, except in place where the name stays.
	output, outDir, ext := "{path: ./out, suffix: .enc}", filepath.Join(dir, "out"), ".enc"
	switch {
	case inPlace:
		output, outDir, ext = "{inPlace: true}", filepath.Join(dir, "src"), srcExt
	case op == "decrypt":
		output, ext = "{path: ./out, stripSuffix: .enc}", ""
	case op == "reencrypt":
		output = "{path: ./out}" // the name stays
	}
	job := strings.NewReplacer("OP", op, "SRC", "src", "OUTPUT", output).Replace(resumeJob)
	switch op {
	case "encrypt":
		job += "  encrypt: {keyGroup: new, context: {tenant: acme}}\n"
	case "decrypt":
		job += "  decrypt: {keyGroup: old, requireContext: {tenant: acme}}\n"
	default:
		job += "  decrypt: {keyGroup: old}\n  encrypt: {keyGroup: new}\n"
	}
	if log {
		job += "  metadata: {output: ./meta.jsonl}\n"
	}
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644)

	// committed: the output is under its final name (in place: the
	// path is no longer the source's inode). By stat only, so it
	// can be polled. inodes: the inode each committed output had
	// when first seen; it must never change again.
	initial := map[string]uint64{}
	for name := range files {
		initial[name] = inodeOf(t, filepath.Join(dir, "src", name+srcExt))
	}
	inodes := map[string]uint64{}
	committed := func() map[string]uint64 {
		m := map[string]uint64{}
		for name := range files {
			fi, err := os.Stat(filepath.Join(outDir, name+ext))
			if err != nil {
				continue
			}
			if ino := fi.Sys().(*syscall.Stat_t).Ino; !inPlace || ino != initial[name] {
				m[name] = ino
			}
		}
		return m
	}
	observe := func(run int) {
		now := committed()
		for name, was := range inodes {
			if ino, ok := now[name]; !ok || ino != was {
				t.Fatalf("run %d: %s was committed (inode %d) and is now missing or written again (inode %d)", run, name, was, ino)
			}
		}
		for name, ino := range now {
			inodes[name] = ino
		}
	}
	kills, progress := 0, []int{}
	for iter := 0; iter < 5; iter++ {
		cmd := exec.Command(binPath, "apply", "--auto-approve", "-f", "job.yaml", "--no-progress", "-q")
		cmd.Dir, cmd.Env = dir, cleanEnv()
		var se bytes.Buffer
		cmd.Stderr = &se
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Signal once a random share of what is left is committed,
		// so runs are interrupted midway, not only while starting. A
		// SIGTERMed run still commits what it had staged for a group
		// commit (which can be most of what was left), so it is sent
		// at the first new commit.
		before := len(committed())
		target := before + 1 + mrand.IntN(max(1, (n-before)*2/3))
		if sig == sigterm {
			target = before + 1
		}
		for waiting := true; waiting; {
			select {
			case err := <-done:
				t.Logf("iteration %d: finished before the signal (%v)", iter, err)
				waiting = false
				continue
			case <-time.After(5 * time.Millisecond):
			}
			if len(committed()) < target {
				continue
			}
			waiting = false
			cmd.Process.Signal(sig)
			err := <-done
			kills++
			// SIGTERM: interrupted (130), finished just before (0),
			// or signalled before the handler was installed.
			if code := cmd.ProcessState.ExitCode(); sig == sigterm && code != 130 && code != 0 && code != -1 {
				t.Fatalf("SIGTERM: exit %d (%v)\n%s", code, err, se.String())
			}
		}
		observe(iter)
		progress = append(progress, len(inodes))
	}
	r := encjob(t, dir, nil, "apply", "--auto-approve", "-f", "job.yaml", "--no-progress")
	wantCode(t, r, 0)
	observe(98)
	if len(inodes) != n {
		t.Fatalf("after the final run %d of %d outputs are committed", len(inodes), n)
	}
	r = encjob(t, dir, nil, "apply", "-f", "job.yaml", "--no-progress")
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr+r.stdout, fmt.Sprintf("%d unchanged", n)) {
		t.Errorf("a completed job is not all unchanged:\n%s%s", r.stdout, r.stderr)
	}
	observe(99)

	// Every output holds the original content.
	plainDir := outDir
	if op != "decrypt" {
		plainDir = filepath.Join(dir, "check")
		os.Mkdir(plainDir, 0o755)
		k, name := "key2", "new"
		wantCode(t, encjob(t, dir, nil, args("decrypt", "-r", "-i", outDir, "-o", "check", "-w", "provider=raw-aes", "key-file="+k,
			"namespace=encjob", "name="+name, "-S", "--suffix", "")...), 0)
	}
	for name, want := range files {
		p := filepath.Join(plainDir, name+ext)
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: lost or corrupted (%d bytes, %v)", name, len(got), err)
		}
	}
	if log {
		doneCount := map[string]int{}
		for _, rec := range readMetadata(t, filepath.Join(dir, "meta.jsonl")) {
			if rec["status"] == "done" {
				doneCount[rec["input"].(string)]++
			}
		}
		for in, c := range doneCount {
			if c > 1 {
				t.Errorf("%s done %d times", in, c)
			}
		}
	}
	if kills == 0 {
		return nil
	}
	return progress
}
