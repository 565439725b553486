package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// treeBodies returns the message id and body bytes (everything between
// header and footer) of every message under root, by relative path.
func treeBodies(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || strings.Contains(p, ".encjob-") {
			return nil
		}
		msg, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := crypto.ParseHeader(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b := msg[h.Len():]
		off := 0
		for binary.BigEndian.Uint32(b[off:]) != 0xFFFFFFFF {
			off += 4 + 12 + int(h.FrameLength) + 16
		}
		off += 8 + 12 + 4 + int(binary.BigEndian.Uint32(b[off+20:])) + 16
		rel, _ := filepath.Rel(root, p)
		out[rel] = append(bytes.Clone(h.MessageID), b[:off]...)
		return nil
	})
	return out
}

// TestResumeRewrapAfterSIGKILL: encjob reencrypt --rewrap in place,
// killed with SIGKILL at random points and resumed: every item ends up
// under the new key with its content, message id and body bytes intact,
// none is rewrapped twice, no temporary file remains.
func TestResumeRewrapAfterSIGKILL(t *testing.T) { resumeAfterSIGKILL(t, true) }

// TestResumeRewrapInStorageAfterSIGKILL is TestResumeRewrapAfterSIGKILL
// for an unsigned suite (0x0478, with the opt-in): every body is copied
// by copy_file_range, killed runs leave nothing half-written.
func TestResumeRewrapInStorageAfterSIGKILL(t *testing.T) {
	resumeAfterSIGKILL(t, true, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY")
}

// TestE2ERewrapPlanAndFlags: a spec with reencrypt.mode rewrap plans v2
// messages "to re-encrypt (~)" saying why; with allowHeaderNonceReuse it
// plans "to rewrap (^)", applies, and then plans unchanged; the CLI
// refuses --rewrap with --algorithm or --frame-length, and
// --rewrap-allow-header-nonce-reuse without --rewrap, naming the flag
// (exit 2).
func TestE2ERewrapPlanAndFlags(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"old.key", "new.key"} {
		b := bytes.Repeat([]byte{byte(len(k))}, 32)
		if k == "new.key" {
			b[0] ^= 1
		}
		os.WriteFile(filepath.Join(dir, k), b, 0o600)
	}
	os.MkdirAll(filepath.Join(dir, "plain"), 0o755)
	for _, n := range []string{"a", "b", "c"} {
		os.WriteFile(filepath.Join(dir, "plain", n), bytes.Repeat([]byte(n), 5000), 0o644)
	}
	old := []string{"provider=raw-aes", "key-file=old.key", "namespace=encjob", "name=old"}
	os.Mkdir(filepath.Join(dir, "tree"), 0o755)
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-r", "-i", "plain", "-o", "tree", "-w", old, "-S")...), 0)
	before := treeBodies(t, filepath.Join(dir, "tree"))
	job := `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: rewrap}
spec:
  operation: reencrypt
  sources: [{path: ./tree}]
  output: {inPlace: true, verify: true}
  keyGroups:
    old: {provider: raw-aes, keyFile: ./old.key, namespace: encjob, name: old}
    new: {provider: raw-aes, keyFile: ./new.key, namespace: encjob, name: new}
  decrypt: {keyGroup: old}
  encrypt: {keyGroup: new}
  reencrypt: {mode: rewrap, add: {rotated: "2026"}}
`
	// Without the opt-in, these v2 messages (0x0578) are re-encrypted
	// in full, and the plan says why.
	os.WriteFile(filepath.Join(dir, "guarded.yaml"), []byte(job), 0o644)
	r := encjob(t, dir, nil, "plan", "-f", "guarded.yaml", "-v")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "3 to re-encrypt (~)") || !strings.Contains(r.stdout, "header nonce") || !strings.Contains(r.stdout, "allowHeaderNonceReuse") {
		t.Fatalf("plan output without the opt-in: %s", r.stdout)
	}
	job = strings.Replace(job, "reencrypt: {mode: rewrap,", "reencrypt: {mode: rewrap, allowHeaderNonceReuse: true,", 1)
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(job), 0o644)
	r = encjob(t, dir, nil, "plan", "-f", "job.yaml", "-v")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "3 to rewrap (^)") || !strings.Contains(r.stdout, "^ ") {
		t.Fatalf("plan output: %s", r.stdout)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "--auto-approve", "-f", "job.yaml", "--metadata-output", "m.jsonl"), 0)
	recs := readMetadata(t, filepath.Join(dir, "m.jsonl"))
	if len(recs) != 3 {
		t.Fatalf("%d metadata records", len(recs))
	}
	for _, rec := range recs {
		if rec["action"] != "rewrap" || rec["status"] != "done" {
			t.Fatalf("metadata record %v", rec)
		}
	}
	after := treeBodies(t, filepath.Join(dir, "tree"))
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Fatalf("%s: message id or body changed", name)
		}
	}
	r = encjob(t, dir, nil, "plan", "-f", "job.yaml")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "3 unchanged (=)") {
		t.Fatalf("second plan: %s", r.stdout)
	}
	nw := []string{"provider=raw-aes", "key-file=new.key", "namespace=encjob", "name=new"}
	for _, bad := range [][]string{{"--algorithm", "0x0478"}, {"--frame-length", "0"}} {
		r := encjob(t, dir, nil, args("reencrypt", "-r", "-i", "tree", "-o", "tree", "--source-wrapping-keys", nw, "-w", old, "--rewrap", bad)...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, bad[0]) || !strings.Contains(r.stderr, "rewrap") {
			t.Fatalf("%s with --rewrap: %s", bad[0], r.stderr)
		}
	}
	r = encjob(t, dir, nil, args("reencrypt", "-r", "-i", "tree", "-o", "tree", "--source-wrapping-keys", nw, "-w", old, "--rewrap-allow-header-nonce-reuse")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "--rewrap-allow-header-nonce-reuse") || !strings.Contains(r.stderr, "rewrap") {
		t.Fatalf("--rewrap-allow-header-nonce-reuse without --rewrap: %s", r.stderr)
	}
	// And back with the CLI: the old key decrypts again, the body is
	// still the same.
	wantCode(t, encjob(t, dir, nil, args("reencrypt", "--auto-approve", "-r", "-i", "tree", "-o", "tree", "--source-wrapping-keys", nw, "-w", old, "--rewrap", "--rewrap-allow-header-nonce-reuse", "-S")...), 0)
	if again := treeBodies(t, filepath.Join(dir, "tree")); len(again) != 3 {
		t.Fatal("tree changed shape")
	} else {
		for name, b := range before {
			if !bytes.Equal(again[name], b) {
				t.Fatalf("%s: body changed by the second rewrap", name)
			}
		}
	}
	os.Mkdir(filepath.Join(dir, "check"), 0o755)
	wantCode(t, encjob(t, dir, nil, args("decrypt", "-r", "-i", "tree", "-o", "check", "-w", old, "-S", "--strip-suffix")...), 0)
	for _, n := range []string{"a", "b", "c"} {
		if got, _ := os.ReadFile(filepath.Join(dir, "check", n)); !bytes.Equal(got, bytes.Repeat([]byte(n), 5000)) {
			t.Fatalf("%s: content changed", n)
		}
	}
}
