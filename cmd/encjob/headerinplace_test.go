package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestE2ERewrapHeaderInPlace: encjob reencrypt --rewrap in place with
// --rewrap-header-in-place overwrites each file's header in place (the
// same inode, the metadata record says header_rewritten_in_place, the
// message id and every body byte kept, sizes around frame boundaries),
// and the result decrypts under the new key only; a file with a second
// hard link is rewritten as a new file instead (the other name keeps the
// old message); no journal is left; the flag without in place is a usage
// error naming it.
func TestE2ERewrapHeaderInPlace(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"old.key", "new.key"} {
		b := bytes.Repeat([]byte{7}, 32)
		if k == "new.key" {
			b[0] ^= 1
		}
		os.WriteFile(filepath.Join(dir, k), b, 0o600)
	}
	plain := filepath.Join(dir, "plain")
	os.MkdirAll(plain, 0o755)
	sizes := map[string]int{"empty": 0, "one": 1, "f4095": 4095, "f4096": 4096, "f4097": 4097, "big": 300000, "linked": 5000}
	for n, size := range sizes {
		os.WriteFile(filepath.Join(plain, n), bytes.Repeat([]byte(n[:1]), size), 0o644)
	}
	old := []string{"provider=raw-aes", "key-file=old.key", "namespace=encjob", "name=old"}
	nw := []string{"provider=raw-aes", "key-file=new.key", "namespace=encjob", "name=new"}
	tree := filepath.Join(dir, "tree")
	os.Mkdir(tree, 0o755)
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-r", "-i", "plain", "-o", "tree", "-w", old, "--algorithm", "0x0478", "-S")...), 0)
	os.RemoveAll(filepath.Join(tree, ".encjob-state"))
	if err := os.Link(filepath.Join(tree, "linked.encrypted"), filepath.Join(dir, "outside-link")); err != nil {
		t.Fatal(err)
	}
	outside, _ := os.ReadFile(filepath.Join(dir, "outside-link"))
	inode := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	inodes := map[string]uint64{}
	for n := range sizes {
		inodes[n] = inode(filepath.Join(tree, n+".encrypted"))
	}
	before := treeBodies(t, tree)

	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	r := encjob(t, dir, nil, args("reencrypt", "-r", "-i", "tree", "-o", "out", "--source-wrapping-keys", old, "-w", nw,
		"--rewrap", "--rewrap-allow-header-nonce-reuse", "--rewrap-header-in-place")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "--rewrap-header-in-place") {
		t.Fatalf("not in place: %s", r.stderr)
	}

	wantCode(t, encjob(t, dir, nil, args("reencrypt", "-r", "-i", "tree", "-o", "tree", "--source-wrapping-keys", old, "-w", nw,
		"--rewrap", "--rewrap-allow-header-nonce-reuse", "--rewrap-header-in-place", "--auto-approve", "--metadata-output", "m.jsonl")...), 0)
	recs := readMetadata(t, filepath.Join(dir, "m.jsonl"))
	inPlace := map[string]bool{}
	for _, rec := range recs {
		if rec["action"] != "rewrap" || rec["status"] != "done" {
			t.Fatalf("record %v", rec)
		}
		inPlace[strings.TrimSuffix(filepath.Base(rec["output"].(string)), ".encrypted")] = rec["header_rewritten_in_place"] == true
	}
	for n := range sizes {
		same := inode(filepath.Join(tree, n+".encrypted")) == inodes[n]
		if want := n != "linked"; same != want || inPlace[n] != want {
			t.Errorf("%s: same inode %v, header_rewritten_in_place %v, want %v", n, same, inPlace[n], want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "outside-link")); !bytes.Equal(b, outside) {
		t.Fatal("the other hard link's content changed")
	}
	after := treeBodies(t, tree)
	for n, b := range before {
		if !bytes.Equal(after[n], b) {
			t.Fatalf("%s: message id or body changed", n)
		}
	}
	if names, _ := os.ReadDir(filepath.Join(tree, ".encjob-state", "rewrites")); len(names) != 0 {
		t.Fatalf("journals left: %v", names)
	}
	os.Mkdir(filepath.Join(dir, "dec"), 0o755)
	wantCode(t, encjob(t, dir, nil, args("decrypt", "-r", "-i", "tree", "-o", "dec", "-w", nw, "-S")...), 0)
	for n := range sizes {
		got, err := os.ReadFile(filepath.Join(dir, "dec", n+".encrypted.decrypted"))
		want, _ := os.ReadFile(filepath.Join(plain, n))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: decrypted under the new key: %v", n, err)
		}
	}
	r = encjob(t, dir, nil, args("decrypt", "-i", "tree/big.encrypted", "-o", "dec-old", "-w", old, "-S")...)
	wantCode(t, r, 1)
}

// TestResumeRewrapHeaderInPlaceAfterSIGKILL is TestResumeRewrapAfterSIGKILL
// with --rewrap-header-in-place: runs killed at random points (between
// or inside the journaled header writes) and resumed leave every item
// under the new key with its content, message id and body intact, each
// rewrapped once; the headers were rewritten in place.
func TestResumeRewrapHeaderInPlaceAfterSIGKILL(t *testing.T) {
	resumeAfterSIGKILL(t, true, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "--rewrap-header-in-place")
}
