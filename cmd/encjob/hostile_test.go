package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/sources"
)

// The hostile tree (issue 12, "Done when"): one tree that holds at once
// everything the edge classes are about, run through the real binary.
//
//	dir/key                 raw AES key (name test), used by the helpers that craft messages
//	dir/outside/            targets of the tree's symlinks; must never be written
//	dir/tree/               the in-place tree
//	  job.yaml              the in-place encrypt job (spec inside its own tree)
//	  plan.json             its saved plan (written by plan --out)
//	  meta.jsonl            its metadata log
//	  .encjob/protect.key   its key (a copy of dir/key)
//	  .encjob/gen.key       a key apply generates (generate: true)
//	  .encjob-tmp-notes.txt, x/.encjob-tmp-1-y   user files that look like temporaries
//	  pipe                  a fifo
//	  linkdir, linkfile     symlinks to a directory and a file outside
//	  "\x1b[31mred.txt", "cr\rname.txt", "nl\nname.txt", "bad\xff\xfe.txt"   hostile names
//	  bulk/               enough files for a SIGKILL to land mid-run
//	  crafted/            added after encryption: a message claiming 2 GiB frames, a header with 3000 EDKs
//	  out/                the decrypt job's output, inside the tree it decrypts
var hostileNames = []string{"\x1b[31mred.txt", "cr\rname.txt", "nl\nname.txt", "bad\xff\xfe.txt"}

// ownFiles are the in-place job's own files, relative to the tree.
var ownFiles = []string{"job.yaml", "plan.json", "meta.jsonl", ".encjob/protect.key", ".encjob/gen.key"}

const hostileJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: hostile}
spec:
  operation: encrypt
  sources: [{path: .%s}]
  output: {inPlace: true}
  keyGroups:
    dev:
      members:
      - {provider: raw-aes, keyFile: ./.encjob/protect.key, namespace: encjob, name: test}
      - {provider: raw-aes, keyFile: ./.encjob/gen.key, generate: true, namespace: encjob, name: spare}
  encrypt: {keyGroup: dev}
  metadata: {output: ./meta.jsonl}
`

// decryptJob lives in dir (outside the tree) and decrypts the tree to
// output with the tree's key; exclude lists anchored patterns.
func decryptJob(output string, exclude ...string) string {
	return fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: hostile-decrypt}
spec:
  operation: decrypt
  sources: [{path: ./tree, exclude: [%s]}]
  output: {path: %s}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./tree/.encjob/protect.key, namespace: encjob, name: test}
  decrypt: {keyGroup: dev}
  metadata: {output: ./tree/dj.jsonl}
  execution: {retries: 0}
`, strings.Join(quoteAll(exclude), ", "), output)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// rawControl returns the first control byte (C0 other than \n and \t,
// DEL, or a C1 control) in terminal-facing output, or -1.
func rawControl(s string) int {
	for i, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return i
		}
	}
	return -1
}

// doneInputs counts the "done" records per input in a metadata log,
// ignoring a torn last line (a SIGKILLed writer may leave one).
func doneInputs(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m["status"] == "done" {
			in, _ := m["input"].(string)
			n[in]++
		}
	}
	return n
}

// without returns a copy of snap without the entries under the prefixes.
func without(snap map[string]string, prefixes ...string) map[string]string {
	out := maps.Clone(snap)
	for k := range out {
		for _, p := range prefixes {
			if k == p || strings.HasPrefix(k, p+"/") {
				delete(out, k)
			}
		}
	}
	return out
}

func TestHostileTree(t *testing.T) {
	start := time.Now()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tree, outside := filepath.Join(dir, "tree"), filepath.Join(dir, "outside")
	key := make([]byte, 32)
	rand.Read(key)
	writeFile(t, filepath.Join(dir, "key"), key, 0o600)
	writeFile(t, filepath.Join(tree, ".encjob", "protect.key"), key, 0o600)
	writeFile(t, filepath.Join(outside, "secret.txt"), []byte("outside file\n"), 0o644)
	writeFile(t, filepath.Join(outside, "sub", "deep.txt"), []byte("outside dir\n"), 0o644)

	plain := map[string][]byte{} // the tree's user files and their contents
	add := func(name string, body []byte) {
		writeFile(t, filepath.Join(tree, name), body, 0o644)
		plain[name] = body
	}
	add(".encjob-tmp-notes.txt", []byte("user notes that merely look like a temporary\n"))
	add("x/.encjob-tmp-1-y", []byte("another lookalike\n"))
	for i, n := range hostileNames {
		add(n, []byte(fmt.Sprintf("hostile name %d\n", i)))
	}
	for i := range 150 {
		b := make([]byte, 30000+i*13)
		rand.Read(b)
		add(fmt.Sprintf("bulk/d%d/f%03d.bin", i%5, i), b)
	}
	if err := syscall.Mkfifo(filepath.Join(tree, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"linkdir": outside, "linkfile": filepath.Join(outside, "secret.txt")} {
		if err := os.Symlink(target, filepath.Join(tree, name)); err != nil {
			t.Fatal(err)
		}
	}
	outsideBefore := snapshot(t, outside)
	checkOutside := func(step string) {
		t.Helper()
		if after := snapshot(t, outside); !maps.Equal(outsideBefore, after) {
			t.Errorf("%s wrote outside the tree:\nbefore %v\nafter  %v", step, outsideBefore, after)
		}
	}
	noControl := func(step string, r result) {
		t.Helper()
		for stream, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
			if i := rawControl(s); i >= 0 {
				ctlReport(t, "%s: raw control byte %q in %s at %d: %q", step, s[i], stream, i, s[max(0, i-40):min(len(s), i+40)])
			}
		}
	}

	t.Run("in-place encrypt", func(t *testing.T) {
		// Without excludes the job would list its own key, spec and log:
		// refused before anything is touched (plan and apply alike).
		writeFile(t, filepath.Join(tree, "job.yaml"), []byte(fmt.Sprintf(hostileJob, "")), 0o644)
		before := snapshot(t, dir)
		for _, cmd := range [][]string{{"plan", "-f", "tree/job.yaml", "--out", "tree/plan.json"}, {"apply", "-f", "tree/job.yaml"}} {
			r := runGuarded(t, dir, cmd...)
			wantCode(t, r, 2)
			for _, want := range []string{"in-place source", "protect.key"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("%v: stderr does not say %q: %s", cmd, want, r.stderr)
				}
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Fatalf("%v: a refused in-place job changed files:\nbefore %v\nafter  %v", cmd, before, after)
			}
		}

		// Excluding them (as the refusal says) runs the job.
		excl := make([]string, len(ownFiles))
		for i, f := range ownFiles {
			excl[i] = fmt.Sprintf("%q", "/"+f)
		}
		spec := []byte(fmt.Sprintf(hostileJob, ", exclude: ["+strings.Join(excl, ", ")+"]"))
		writeFile(t, filepath.Join(tree, "job.yaml"), spec, 0o644)
		r := runGuarded(t, dir, "plan", "-f", "tree/job.yaml", "-v", "--out", "tree/plan.json")
		wantCode(t, r, 0)
		noControl("plan", r)
		for _, want := range []string{"pipe  (named pipe (fifo))", "linkdir  (symlink not followed)", "linkfile  (symlink not followed)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan does not show %q:\n%s", want, r.stdout)
			}
		}
		if _, err := os.Stat(filepath.Join(tree, ".encjob", "gen.key")); err == nil {
			t.Error("plan generated a key (only apply may)")
		}
		planBytes, err := os.ReadFile(filepath.Join(tree, "plan.json"))
		if err != nil {
			t.Fatal(err)
		}
		r = runGuarded(t, dir, "apply", "--auto-approve", "tree/plan.json")
		wantCode(t, r, 0)
		noControl("apply", r)
		checkOutside("in-place apply")

		gen, err := os.Stat(filepath.Join(tree, ".encjob", "gen.key"))
		if err != nil || gen.Mode().Perm() != 0o600 || gen.Size() != 32 {
			t.Fatalf("generated key inside the tree: %v %v", gen, err)
		}
		genBytes, _ := os.ReadFile(filepath.Join(tree, ".encjob", "gen.key"))
		log1, err := os.ReadFile(filepath.Join(tree, "meta.jsonl"))
		if err != nil || len(log1) == 0 || log1[0] != '{' {
			t.Fatalf("metadata log: %q %v", log1[:min(len(log1), 40)], err)
		}
		own := map[string][]byte{"job.yaml": spec, "plan.json": planBytes, ".encjob/protect.key": key, ".encjob/gen.key": genBytes}
		checkOwn := func(step string) {
			t.Helper()
			for f, want := range own {
				if got, err := os.ReadFile(filepath.Join(tree, f)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: encjob's own %s changed (%d bytes, was %d): %v", step, f, len(got), len(want), err)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(tree, "meta.jsonl")); !bytes.HasPrefix(got, log1) {
				t.Errorf("%s: the metadata log was replaced, not appended to", step)
			}
		}
		checkOwn("apply")
		for name, body := range plain {
			ct, err := os.ReadFile(filepath.Join(tree, name))
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			if _, err := crypto.ParseHeader(bytes.NewReader(ct)); err != nil || bytes.Contains(ct, body) {
				t.Errorf("%q was not encrypted in place: %v", name, err)
			}
		}
		if fi, err := os.Lstat(filepath.Join(tree, "pipe")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("the fifo was replaced: %v %v", fi, err)
		}
		for _, l := range []string{"linkdir", "linkfile"} {
			if fi, err := os.Lstat(filepath.Join(tree, l)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("%s is no longer a symlink: %v", l, err)
			}
		}

		// A rerun is a no-op: exit 0, no item touched.
		treeBefore := without(snapshot(t, tree), "meta.jsonl", sources.StateDir)
		r = runGuarded(t, dir, "apply", "--auto-approve", "-f", "tree/job.yaml", "-v")
		wantCode(t, r, 0)
		noControl("rerun", r)
		if after := without(snapshot(t, tree), "meta.jsonl", sources.StateDir); !maps.Equal(treeBefore, after) {
			t.Errorf("the rerun changed the tree")
		}
		if n := len(doneInputs(t, filepath.Join(tree, "meta.jsonl"))); n != len(plain) {
			t.Errorf("%d items encrypted over two runs, want %d (each once)", n, len(plain))
		}
		for in, c := range doneInputs(t, filepath.Join(tree, "meta.jsonl")) {
			if c != 1 {
				t.Errorf("%q encrypted %d times", in, c)
			}
		}
		checkOwn("rerun")
		checkOutside("rerun")
	})
	if t.Failed() {
		t.FailNow()
	}

	// Overlap by identity: decrypting a ciphertext of the tree onto
	// itself, under any spelling, is refused and changes nothing.
	t.Run("overlap refused", func(t *testing.T) {
		if err := os.Symlink("tree", filepath.Join(dir, "treelink")); err != nil {
			t.Fatal(err)
		}
		w := []string{"-w", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=test", "-S"}
		in := "tree/x/.encjob-tmp-1-y"
		before := snapshot(t, dir)
		for _, o := range []string{"./" + in, dir + "/" + in, dir + "//" + in, "tree/bulk/../x/.encjob-tmp-1-y", "treelink/x/.encjob-tmp-1-y"} {
			r := runGuarded(t, dir, args("decrypt", "-i", in, "-o", o, w)...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, "same file") && !strings.Contains(r.stderr, "cannot be the same") {
				t.Errorf("-o %s: stderr does not name the overlap: %s", o, r.stderr)
			}
		}
		for _, o := range []string{dir + "/tree", "./tree/", "treelink", "tree/bulk/.."} {
			r := runGuarded(t, dir, args("decrypt", "-r", "-i", "tree", "-o", o, w)...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, "same directory") && !strings.Contains(r.stderr, "cannot be the same") {
				t.Errorf("-r -o %s: stderr does not name the overlap: %s", o, r.stderr)
			}
		}
		if after := snapshot(t, dir); !maps.Equal(before, after) {
			t.Errorf("a refused overlap changed files")
		}
		os.Remove(filepath.Join(dir, "treelink"))
	})

	// The crafted ciphertexts join the tree now that it is encrypted.
	good := makeGoodMessage(t, dir)
	claim := claimingMessage(t, dir, crypto.MaxFrameLength)
	writeFile(t, filepath.Join(tree, "crafted", "claim.encrypted"), claim, 0o644)
	writeFile(t, filepath.Join(tree, "crafted", "edks.encrypted"), good.copiesOfEDK(3000), 0o644)
	t.Logf("crafted: %d-byte message claiming %d-byte frames; header with 3000 EDKs (%d bytes)", len(claim), crypto.MaxFrameLength, len(good.copiesOfEDK(3000)))
	otherJobs := []string{"/job.yaml", "/plan.json", "/meta.jsonl", "/.encjob/gen.key"}

	// A decrypt job whose output lies inside the tree it decrypts, killed
	// mid-run, then rerun: exit 0, every item decrypted exactly once.
	t.Run("decrypt SIGKILL resume", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "dj.yaml"), []byte(decryptJob("./tree/out", append(otherJobs, "/crafted/**")...)), 0o644)
		kills, maxDelay := 0, 200
	runs:
		for iter := 0; iter < 12 && kills < 4; iter++ {
			cmd := exec.Command(binPath, "apply", "-f", "dj.yaml", "--no-progress", "-q")
			cmd.Dir, cmd.Env = dir, cleanEnv()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			delay := time.Duration(10+mrand.IntN(maxDelay)) * time.Millisecond
			select {
			case <-done:
				t.Logf("run %d finished before the kill at %v", iter, delay)
				if kills > 0 {
					break runs // resumed to the end: nothing left to kill
				}
				// The whole job ran before any kill (a fast machine):
				// start over, with less time before the kill.
				os.RemoveAll(filepath.Join(tree, "out"))
				os.Remove(filepath.Join(tree, "dj.jsonl"))
				maxDelay = max(20, maxDelay/2)
			case <-time.After(delay):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				kills++
			}
		}
		r := runGuarded(t, dir, "apply", "-f", "dj.yaml", "-v")
		wantCode(t, r, 0)
		noControl("decrypt resume", r)
		r = runGuarded(t, dir, "apply", "-f", "dj.yaml")
		wantCode(t, r, 0)
		counts := doneInputs(t, filepath.Join(tree, "dj.jsonl"))
		for in, c := range counts {
			if c != 1 {
				t.Errorf("%q decrypted %d times", in, c)
			}
		}
		// An output committed just before a kill but not yet logged is
		// recognised as unchanged by the rerun (provenance), so it has no
		// "done" record: at most one per item, and every output is there.
		if len(counts) == 0 || len(counts) > len(plain) {
			t.Errorf("%d items logged as decrypted, want 1..%d", len(counts), len(plain))
		}
		for name, body := range plain {
			if got, err := os.ReadFile(filepath.Join(tree, "out", name+".decrypted")); err != nil || !bytes.Equal(got, body) {
				t.Errorf("%q: decrypted output wrong: %v", name, err)
			}
		}
		if kills == 0 {
			t.Fatal("no run was killed; the test proved nothing")
		}
		t.Logf("%d items, %d SIGKILLs; each decrypted once", len(plain), kills)
		checkOutside("decrypt resume")
	})

	// The whole tree, crafted files included, decrypted to a separate
	// directory: the crafted items fail alone with bounded errors, every
	// other item comes back byte for byte, memory stays small.
	t.Run("decrypt to a separate dir", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "dr.yaml"), []byte(decryptJob("./restored", append(otherJobs, "/out/**", "/dj.jsonl")...)), 0o644)
		os.Remove(filepath.Join(tree, "dj.jsonl")) // a fresh log for this job
		r, rss := runRusage(t, dir, "apply", "-f", "dr.yaml", "-v")
		wantCode(t, r, 1)
		noControl("decrypt with crafted files", r)
		t.Logf("peak RSS %d KiB", rss)
		if rss > 100<<10 {
			t.Errorf("peak RSS %d KiB (limit 100 MiB)", rss)
		}
		for _, want := range []string{"crafted/claim.encrypted", "truncated message", "crafted/edks.encrypted", "3000 encrypted data keys, more than the limit of"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
			}
		}
		for _, l := range strings.Split(r.stderr, "\n") {
			if len(l) > 2000 {
				t.Errorf("unbounded stderr line of %d bytes: %.200q…", len(l), l)
			}
		}
		// The 3000 EDKs are summarised, not listed: the crafted items'
		// lines are short.
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.Contains(l, "crafted/") && len(l) > 600 {
				t.Errorf("error line of %d bytes for a crafted item: %.300q…", len(l), l)
			}
		}
		for _, f := range []string{"crafted/claim", "crafted/edks"} {
			if _, err := os.Lstat(filepath.Join(dir, "restored", f)); err == nil {
				t.Errorf("output written for the failed item %s", f)
			}
		}
		for name, body := range plain {
			if got, err := os.ReadFile(filepath.Join(dir, "restored", name+".decrypted")); err != nil || !bytes.Equal(got, body) {
				t.Errorf("%q: not restored byte for byte: %v", name, err)
			}
		}
		for _, f := range []string{"protect.key", "gen.key"} {
			if _, err := os.Lstat(filepath.Join(dir, "restored", ".encjob", f+".decrypted")); err == nil {
				t.Errorf("the key %s was treated as an item", f)
			}
		}
		checkOutside("decrypt to a separate dir")
	})
	t.Logf("hostile tree: %v", time.Since(start).Round(time.Millisecond))
}

// ctlReport reports raw control bytes in terminal-facing output (issue
// 12.11): every human-readable line goes through one escaping function.
func ctlReport(t *testing.T, format string, a ...any) {
	t.Helper()
	t.Errorf(format, a...)
}
