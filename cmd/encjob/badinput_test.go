package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/sources"
)

var updateBadInputs = flag.Bool("update", false, "rewrite docs/bad-inputs.md from TestBadInputs")

const badInputsDoc = "../../docs/bad-inputs.md"

// badCase is one bad input run through the real binary.
type badCase struct {
	name string // what the bad input is (the table's first column)
	// prepare writes the bad input into dir (which already holds the
	// setup() tree, key, and bad/ with a good message bad/good.encrypted)
	// and returns the command line.
	prepare func(t *testing.T, dir string, m *goodMessage) []string
	code    int
	// want are substrings the chosen stderr line must hold: the item (or
	// flag) and the cause.
	want []string
	// allowNew are path prefixes (relative to dir) where a run may create
	// files; everywhere else the tree must be unchanged.
	allowNew []string
	// stdoutEmpty: nothing may reach stdout (decryption to -o -).
	stdoutEmpty bool
}

// goodMessage is a valid message and where its parts are.
type goodMessage struct {
	msg         []byte
	headerLen   int // header including its authentication tag
	aadStart    int // first byte of the serialized encryption context
	edkCountOff int // offset of the EDK count
	edkEnd      int // first byte after the last EDK
	footerStart int // offset of the signature length
}

const frameLen = 1024

// plaintext of the good message: 5000 bytes -> 4 full frames + final.
var badPlain = bytes.Repeat([]byte("encjob bad-input plaintext "), 186)[:5000]

func makeGoodMessage(t *testing.T, dir string) *goodMessage {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "plain.bin"), badPlain, 0o644)
	r := encjob(t, dir, nil, args("encrypt", "-i", "plain.bin", "-o", "good.encrypted", rawKey, "-S", "-c", "tenant=acme", "--frame-length", strconv.Itoa(frameLen))...)
	wantCode(t, r, 0)
	msg, err := os.ReadFile(filepath.Join(dir, "good.encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "plain.bin"))
	os.Remove(filepath.Join(dir, "good.encrypted"))
	return layout(t, msg)
}

// layout finds the parts of a version 2 message.
func layout(t *testing.T, msg []byte) *goodMessage {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("parsing the good message: %v", err)
	}
	if msg[0] != 2 {
		t.Fatalf("want a version 2 message, got %d", msg[0])
	}
	m := &goodMessage{msg: msg, headerLen: h.Len(), aadStart: 37}
	aadLen := int(binary.BigEndian.Uint16(msg[35:]))
	m.edkCountOff = 37 + aadLen
	n := int(binary.BigEndian.Uint16(msg[m.edkCountOff:]))
	off := m.edkCountOff + 2
	for range n {
		for range 3 { // provider id, provider info, ciphertext
			off += 2 + int(binary.BigEndian.Uint16(msg[off:]))
		}
	}
	m.edkEnd = off
	for sigLen := 90; sigLen <= 110; sigLen++ {
		if p := len(msg) - sigLen - 2; int(binary.BigEndian.Uint16(msg[p:])) == sigLen {
			m.footerStart = p
		}
	}
	if m.footerStart == 0 {
		t.Fatal("no footer found in the good message")
	}
	return m
}

func (m *goodMessage) with(off int, xor byte) []byte {
	b := bytes.Clone(m.msg)
	b[off] ^= xor
	return b
}

// manyEDKs returns the header up to the EDK count, a count of 65535, and
// (when full) 65534 fake EDKs followed by the real one and the rest of the
// message.
func (m *goodMessage) manyEDKs(full bool) []byte {
	var b bytes.Buffer
	b.Write(m.msg[:m.edkCountOff])
	binary.Write(&b, binary.BigEndian, uint16(65535))
	if !full {
		return b.Bytes()
	}
	fake := []byte{0, 4, 'f', 'a', 'k', 'e', 0, 1, 'x', 0, 1, 'y'}
	for range 65534 {
		b.Write(fake)
	}
	b.Write(m.msg[m.edkCountOff+2:])
	return b.Bytes()
}

// copiesOfEDK returns the message with its one EDK repeated n times: a
// header whose every EDK names the job's own key.
func (m *goodMessage) copiesOfEDK(n int) []byte {
	var b bytes.Buffer
	b.Write(m.msg[:m.edkCountOff])
	binary.Write(&b, binary.BigEndian, uint16(n))
	for range n {
		b.Write(m.msg[m.edkCountOff+2 : m.edkEnd])
	}
	b.Write(m.msg[m.edkEnd:])
	return b.Bytes()
}

// decryptBad writes data to bad/NAME and returns the decrypt command line.
func decryptBad(name string, data func(m *goodMessage) []byte, extra ...string) func(*testing.T, string, *goodMessage) []string {
	return func(t *testing.T, dir string, m *goodMessage) []string {
		if err := os.WriteFile(filepath.Join(dir, "bad", name), data(m), 0o644); err != nil {
			t.Fatal(err)
		}
		return args("decrypt", "-i", "bad/"+name, "-o", "dec", rawKey, "-S", extra)
	}
}

func cliOnly(a ...any) func(*testing.T, string, *goodMessage) []string {
	return func(*testing.T, string, *goodMessage) []string { return args(a...) }
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}

const badSpecHead = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: bad}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}
`

func specCase(file, body string) func(*testing.T, string, *goodMessage) []string {
	return func(t *testing.T, dir string, _ *goodMessage) []string {
		writeFile(t, filepath.Join(dir, file), []byte(body), 0o644)
		return []string{"apply", "-f", file}
	}
}

var notESDK = []byte("hello, this is a plain text file and not an ESDK message\n")

func badCases() []badCase {
	otherKey := func(t *testing.T, dir string) {
		k := make([]byte, 32)
		rand.Read(k)
		writeFile(t, filepath.Join(dir, "other.key"), k, 0o600)
	}
	return append([]badCase{
		// Truncated messages.
		{name: "truncated: 1 byte", prepare: decryptBad("cut-1", func(m *goodMessage) []byte { return m.msg[:1] }), code: 1, want: []string{"bad/cut-1", "truncated header"}},
		{name: "truncated: inside the encryption context", prepare: decryptBad("cut-40", func(m *goodMessage) []byte { return m.msg[:40] }), code: 1, want: []string{"bad/cut-40", "truncated header"}},
		{name: "truncated: header without its authentication tag", prepare: decryptBad("cut-header-tag", func(m *goodMessage) []byte { return m.msg[:m.headerLen-1] }), code: 1, want: []string{"bad/cut-header-tag", "truncated"}},
		{name: "truncated: header only, no body", prepare: decryptBad("cut-body", func(m *goodMessage) []byte { return m.msg[:m.headerLen] }), code: 1, want: []string{"bad/cut-body", "truncated"}},
		{name: "truncated: inside frame 2", prepare: decryptBad("cut-frame", func(m *goodMessage) []byte { return m.msg[:m.headerLen+1056+500] }), code: 1, want: []string{"bad/cut-frame", "truncated"}},
		{name: "truncated: footer (signature) missing", prepare: decryptBad("cut-footer", func(m *goodMessage) []byte { return m.msg[:m.footerStart] }), code: 1, want: []string{"bad/cut-footer", "truncated"}},
		{name: "truncated: last byte of the signature", prepare: decryptBad("cut-last", func(m *goodMessage) []byte { return m.msg[:len(m.msg)-1] }), code: 1, want: []string{"bad/cut-last", "truncated"}},
		{name: "trailing bytes after the signature", prepare: decryptBad("trailing", func(m *goodMessage) []byte { return append(bytes.Clone(m.msg), "extra"...) }), code: 1, want: []string{"bad/trailing", "trailing"}},
		// Tampered messages.
		{name: "tampered: version byte", prepare: decryptBad("t-version", func(m *goodMessage) []byte { return m.with(0, 0x01) }), code: 1, want: []string{"bad/t-version", "version"}},
		{name: "tampered: algorithm suite id", prepare: decryptBad("t-suite", func(m *goodMessage) []byte { return m.with(2, 0xff) }), code: 1, want: []string{"bad/t-suite", "suite"}},
		{name: "tampered: message id", prepare: decryptBad("t-msgid", func(m *goodMessage) []byte { return m.with(10, 0x01) }), code: 1, want: []string{"bad/t-msgid", "authentication failed"}},
		{name: "tampered: encryption context value", prepare: decryptBad("t-context", func(m *goodMessage) []byte {
			return m.with(bytes.Index(m.msg, []byte("acme")), 0x01)
		}), code: 1, want: []string{"bad/t-context", "no key could decrypt"}},
		{name: "tampered: encrypted data key", prepare: decryptBad("t-edk", func(m *goodMessage) []byte { return m.with(m.edkEnd-1, 0x01) }), code: 1, want: []string{"bad/t-edk", "no key could decrypt"}},
		{name: "tampered: header authentication tag", prepare: decryptBad("t-headertag", func(m *goodMessage) []byte { return m.with(m.headerLen-1, 0x01) }), code: 1, want: []string{"bad/t-headertag", "authentication failed"}},
		{name: "tampered: first frame ciphertext", prepare: decryptBad("t-frame", func(m *goodMessage) []byte { return m.with(m.headerLen+4+12+10, 0x01) }), code: 1, want: []string{"bad/t-frame", "authentication failed"}},
		{name: "tampered: final frame tag", prepare: decryptBad("t-finaltag", func(m *goodMessage) []byte { return m.with(m.footerStart-1, 0x01) }), code: 1, want: []string{"bad/t-finaltag", "authentication failed"}},
		{name: "tampered: signature", prepare: decryptBad("t-sig", func(m *goodMessage) []byte { return m.with(len(m.msg)-1, 0x01) }), code: 1, want: []string{"bad/t-sig", "signature"}},
		{name: "tampered: signature length one more than present", prepare: decryptBad("t-siglen", func(m *goodMessage) []byte {
			b := bytes.Clone(m.msg)
			binary.BigEndian.PutUint16(b[m.footerStart:], uint16(len(b)-m.footerStart-2+1))
			return b
		}), code: 1, want: []string{"bad/t-siglen", "truncated"}},
		// Keys.
		{name: "wrong key (same namespace and name)", prepare: func(t *testing.T, dir string, m *goodMessage) []string {
			otherKey(t, dir)
			writeFile(t, filepath.Join(dir, "bad", "good.encrypted"), m.msg, 0o644)
			return args("decrypt", "-i", "bad/good.encrypted", "-o", "dec", "-w", "provider=raw-aes", "key-file=other.key", "namespace=encjob", "name=test", "-S")
		}, code: 1, want: []string{"bad/good.encrypted", "no key could decrypt"}},
		{name: "wrong key name", prepare: func(t *testing.T, dir string, m *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "bad", "good.encrypted"), m.msg, 0o644)
			return args("decrypt", "-i", "bad/good.encrypted", "-o", "dec", "-w", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=other", "-S")
		}, code: 1, want: []string{"bad/good.encrypted", "no encrypted data key of key group"}},
		{name: "missing key file", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", "-w", "provider=raw-aes", "key-file=missing.key", "namespace=encjob", "name=test", "-S"), code: 2, want: []string{"missing.key", "no such file"}},
		{name: "key file of the wrong size", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "short.key"), []byte("0123456789"), 0o600)
			return args("encrypt", "-i", "in/b/c.bin", "-o", "enc", "-w", "provider=raw-aes", "key-file=short.key", "namespace=encjob", "name=test", "-S")
		}, code: 2, want: []string{"short.key", "16, 24 or 32 bytes"}},
		{name: "world-readable key file (warning; still works)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			os.Chmod(filepath.Join(dir, "key"), 0o644)
			return args("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S")
		}, code: 0, want: []string{"key", "chmod 600"}, allowNew: []string{"enc/"}},
		// Invalid values on the command line.
		{name: "negative --frame-length", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--frame-length", "-5"), code: 2, want: []string{"--frame-length"}},
		{name: "unknown --algorithm", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--algorithm", "ROT13"), code: 2, want: []string{"--algorithm", "ROT13"}},
		{name: "unknown --commitment-policy", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--commitment-policy", "maybe"), code: 2, want: []string{"--commitment-policy", "maybe"}},
		{name: "--max-encrypted-data-keys 0", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--max-encrypted-data-keys", "0"), code: 2, want: []string{"--max-encrypted-data-keys"}},
		{name: "unknown wrapping key provider", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", "-w", "provider=raw-des", "key-file=key", "-S"), code: 2, want: []string{"-w/--wrapping-keys", "raw-des"}},
		{name: "context pair without a key", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "-c", "=v"), code: 2, want: []string{"-c/--encryption-context", "=v"}},
		{name: "--caching capacity=0", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "--caching", "capacity=0", "max_age=10"), code: 2, want: []string{"--caching", "capacity"}},
		// Invalid values in a spec.
		{name: "spec: negative frameLength", prepare: specCase("frame.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev, frameLength: -1}\n"), code: 2, want: []string{"frame.yaml", "spec.encrypt.frameLength"}},
		{name: "spec: unknown provider", prepare: specCase("provider.yaml", strings.Replace(badSpecHead, "raw-aes", "raw-des", 1)+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev}\n"), code: 2, want: []string{"provider.yaml", "spec.keyGroups.dev.provider"}},
		{name: "spec: negative concurrency", prepare: specCase("conc.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev}\n  execution: {concurrency: -3}\n"), code: 2, want: []string{"conc.yaml", "spec.execution.concurrency"}},
		{name: "spec: unknown overwrite mode", prepare: specCase("over.yaml", badSpecHead+"  output: {path: ./enc, overwrite: sometimes}\n  encrypt: {keyGroup: dev}\n"), code: 2, want: []string{"over.yaml", "spec.output.overwrite"}},
		{name: "spec: S3 part size below 5 MiB", prepare: specCase("part.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev}\n  s3: {partSize: 1KiB}\n"), code: 2, want: []string{"part.yaml", "spec.s3.partSize"}},
		{name: "spec: unknown field", prepare: specCase("field.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev, frameLenght: 4096}\n"), code: 2, want: []string{"field.yaml", "frameLenght"}},
		// Huge encrypted-data-key counts.
		{name: "header claims 65535 EDKs (default limit)", prepare: decryptBad("edk-claim-default", func(m *goodMessage) []byte { return m.manyEDKs(false) }), code: 1, want: []string{"bad/edk-claim-default", "65535", "limit of 10"}},
		{name: "header claims 65535 EDKs, input ends after the count (--max-encrypted-data-keys 65535)", prepare: decryptBad("edk-claim", func(m *goodMessage) []byte { return m.manyEDKs(false) }, "--max-encrypted-data-keys", "65535"), code: 1, want: []string{"bad/edk-claim", "truncated"}},
		{name: "header claims 65535 EDKs, with --max-encrypted-data-keys 10", prepare: decryptBad("edk-claim-max", func(m *goodMessage) []byte { return m.manyEDKs(false) }, "--max-encrypted-data-keys", "10"), code: 1, want: []string{"bad/edk-claim-max", "more than the limit of 10"}},
		{name: "65535 EDKs present (real one last, --max-encrypted-data-keys 65535)", prepare: decryptBad("edk-65535", func(m *goodMessage) []byte { return m.manyEDKs(true) }, "--max-encrypted-data-keys", "65535"), code: 1, want: []string{"bad/edk-65535", "authentication failed"}},
		{name: "65535 EDKs present, with --max-encrypted-data-keys 10", prepare: decryptBad("edk-65535-max", func(m *goodMessage) []byte { return m.manyEDKs(true) }, "--max-encrypted-data-keys", "10"), code: 1, want: []string{"bad/edk-65535-max", "65535", "limit of 10"}},
		{name: "1000 EDKs all naming the job's key (default limit 10: no unwrap tried)", prepare: decryptBad("edk-1000-own", func(m *goodMessage) []byte { return m.copiesOfEDK(1000) }), code: 1, want: []string{"bad/edk-1000-own", "1000", "limit of 10"}},
		// Decryption to stdout releases nothing before the whole message verified.
		{name: "-o - --buffer, 20 MiB message (beyond the 16 MiB memory stage) with a bad signature", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "bad", "big-badsig"), bigMessage(t, dir, 20<<20, true), 0o644)
			return args("decrypt", "-i", "bad/big-badsig", "-o", "-", "--buffer", rawKey, "-S")
		}, code: 1, want: []string{"bad/big-badsig", "signature does not verify"}, stdoutEmpty: true},
		{name: "-o -, 1 MiB message with a bad signature", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "bad", "badsig"), bigMessage(t, dir, 1<<20, true), 0o644)
			return args("decrypt", "-i", "bad/badsig", "-o", "-", rawKey, "-S")
		}, code: 1, want: []string{"bad/badsig", "signature does not verify"}, stdoutEmpty: true},
		// Bounded reads of keys, argument files and specs.
		{name: "key file is a fifo (refused without waiting for a writer)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			if err := syscall.Mkfifo(filepath.Join(dir, "key.fifo"), 0o600); err != nil {
				t.Fatal(err)
			}
			return args("encrypt", "-i", "in/b/c.bin", "-o", "enc", "-w", "provider=raw-aes", "key-file=key.fifo", "namespace=encjob", "name=test", "-S")
		}, code: 2, want: []string{"key.fifo", "fifo, not a regular file"}},
		{name: "key file is /dev/zero", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", "-w", "provider=raw-aes", "key-file=/dev/zero", "namespace=encjob", "name=test", "-S"), code: 2, want: []string{"/dev/zero", "character device"}},
		{name: "argument file larger than 1 MiB", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "big.args"), bytes.Repeat([]byte("-v\n"), 400000), 0o644)
			return []string{"encrypt", "@big.args"}
		}, code: 2, want: []string{"big.args", "larger than 1048576 bytes"}},
		{name: "argument files that expand to more than 4 MiB (each one names the next twice)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			many := bytes.Repeat([]byte("-v "), 240000)
			writeFile(t, filepath.Join(dir, "a.args"), append(bytes.Clone(many), "@b.args @b.args\n"...), 0o644)
			writeFile(t, filepath.Join(dir, "b.args"), append(bytes.Clone(many), "@c.args @c.args\n"...), 0o644)
			writeFile(t, filepath.Join(dir, "c.args"), many, 0o644)
			return []string{"encrypt", "@a.args"}
		}, code: 2, want: []string{"@b.args", "more than 4194304 bytes"}},
		{name: "spec: a 1 MiB value aliased 100 times", prepare: specCase("laughs.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev, context: {big: &a "+strings.Repeat("x", 1<<20)+"}}\n  execution: {concurrency: 1}\n  metadata: {output: ./m.jsonl}\n  reencrypt: {remove: ["+strings.TrimSuffix(strings.Repeat("*a, ", 100), ", ")+"]}\n"), code: 2, want: []string{"laughs.yaml", "expands to more than"}},
		{name: "spec: a source glob that matches nothing", prepare: specCase("noglob.yaml", strings.Replace(badSpecHead, "path: ./in}", "path: ./in/*.nope}", 1)+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev}\n"), code: 2, want: []string{"in/*.nope", "matches nothing"}},
		{name: "a glob -i that matches nothing", prepare: cliOnly("encrypt", "-i", "in/*.nope", "-o", "enc", rawKey, "-S"), code: 2, want: []string{"in/*.nope", "no such file, directory or matching path"}},
		{name: "spec: invalid UTF-8 in a value", prepare: specCase("utf8.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev, context: {k: \"\xff\xfe\"}}\n"), code: 2, want: []string{"utf8.yaml:10:", "UTF-8", "0xff"}},
		{name: "spec: a terminal escape in a value", prepare: specCase("esc.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: dev, context: {k: \"\x1b]0;owned\x07\"}}\n"), code: 2, want: []string{"esc.yaml:10:", "control characters", "0x1b"}},
		{name: "spec: an alias to an anchor that does not exist", prepare: specCase("alias.yaml", badSpecHead+"  output: {path: ./enc}\n  encrypt: {keyGroup: *nope}\n"), code: 2, want: []string{"alias.yaml:10:23:", "unknown anchor 'nope'"}},
		{name: "spec: a syntax error on the first line", prepare: specCase("first.yaml", "apiVersion: @v1\n"), code: 2, want: []string{"first.yaml:1:", "cannot start any token"}},
		{name: "spec: nesting deeper than 10,000", prepare: specCase("deep.yaml", badSpecHead+"  output: "+strings.Repeat("[", 10001)+"\n"), code: 2, want: []string{"deep.yaml:9:", "max depth"}},
		{name: "spec: a file larger than 16 MiB", prepare: specCase("huge.yaml", badSpecHead+strings.Repeat("# padding\n", 17<<20/10)), code: 2, want: []string{"huge.yaml:", "larger than 16777216 bytes"}},
		// The metadata log.
		{name: "metadata log cannot be written (/dev/full): the output is committed and the item done", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "--metadata-output", "/dev/full"), code: 1, want: []string{"metadata log", "records not written", "no space left on device"}, allowNew: []string{"enc/"}},
		{name: "report of /dev/zero (an endless line)", prepare: cliOnly("report", "/dev/zero"), code: 2, want: []string{"/dev/zero", "not a metadata log"}},
		// Invalid UTF-8 in contexts.
		{name: "invalid UTF-8 in -c (encrypt)", prepare: cliOnly("encrypt", "-i", "in/b/c.bin", "-o", "enc", rawKey, "-S", "-c", "k=\xff\xfe"), code: 1, want: []string{"in/b/c.bin", "UTF-8"}},
		{name: "invalid UTF-8 in -c (decrypt)", prepare: func(t *testing.T, dir string, m *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "bad", "good.encrypted"), m.msg, 0o644)
			return args("decrypt", "-i", "bad/good.encrypted", "-o", "dec", rawKey, "-S", "-c", "tenant=\xff")
		}, code: 1, want: []string{"bad/good.encrypted"}},
		{name: "invalid UTF-8 in a message's encryption context", prepare: decryptBad("utf8", func(m *goodMessage) []byte {
			return m.with(bytes.Index(m.msg, []byte("tenant")), 0xff^'t')
		}), code: 1, want: []string{"bad/utf8", "UTF-8"}},
		// Odd files in an input tree.
		{name: "symlink loops in a tree (-r)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			symlinkTree(t, dir)
			return args("encrypt", "-i", "tree", "-o", "enc", "-r", rawKey, "-S")
		}, code: 0, want: []string{"tree/", "symlink not followed"}, allowNew: []string{"enc/"}},
		{name: "symlink loops in a tree (followSymlinks: true)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			symlinkTree(t, dir)
			writeFile(t, filepath.Join(dir, "follow.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: follow}
spec:
  operation: encrypt
  sources: [{path: ./tree, followSymlinks: true}]
  output: {path: ./enc}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}
  encrypt: {keyGroup: dev}
`), 0o644)
			return []string{"apply", "-f", "follow.yaml"}
		}, code: 1, want: []string{"tree/", "too many levels of symbolic links"}, allowNew: []string{"enc/"}},
		{name: "a symlink loop given as -i", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			symlinkTree(t, dir)
			return args("encrypt", "-i", "tree/loop", "-o", "enc", rawKey, "-S")
		}, code: 2, want: []string{"-i/--input", "too many levels of symbolic links"}},
		{name: "fifo in a tree (skipped, not opened)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			fifoTree(t, dir, false)
			return args("encrypt", "-i", "odd", "-o", "enc", "-r", rawKey, "-S")
		}, code: 0, want: []string{"odd/pipe", "fifo"}, allowNew: []string{"enc/"}},
		{name: "fifo given as -i", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			fifoTree(t, dir, false)
			return args("encrypt", "-i", "odd/pipe", "-o", "enc", rawKey, "-S")
		}, code: 0, want: []string{"odd/pipe", "fifo"}},
		{name: "/dev/null and /dev/zero in a tree (followSymlinks: true)", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			fifoTree(t, dir, true)
			writeFile(t, filepath.Join(dir, "dev.yaml"), []byte(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: dev}
spec:
  operation: encrypt
  sources: [{path: ./odd, followSymlinks: true}]
  output: {path: ./enc}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: test}
  encrypt: {keyGroup: dev}
`), 0o644)
			return []string{"apply", "-f", "dev.yaml"}
		}, code: 0, want: []string{"odd/", "character device"}, allowNew: []string{"enc/"}},
		{name: "/dev/zero given as -i", prepare: cliOnly("encrypt", "-i", "/dev/zero", "-o", "enc", rawKey, "-S"), code: 0, want: []string{"/dev/zero", "character device"}},
		// Not ESDK messages.
		{name: "plain text file given to decrypt", prepare: decryptBad("notes.txt", func(*goodMessage) []byte { return notESDK }), code: 1, want: []string{"bad/notes.txt", "not a readable ESDK message"}},
		{name: "PNG file given to decrypt", prepare: decryptBad("image.png", func(*goodMessage) []byte { return []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") }), code: 1, want: []string{"bad/image.png", "not a readable ESDK message"}},
		{name: "version 1 byte followed by garbage", prepare: decryptBad("v1-garbage", func(*goodMessage) []byte { return append([]byte{1, 0x80}, notESDK...) }), code: 1, want: []string{"bad/v1-garbage", "not a readable ESDK message"}},
		{name: "base64 message given to decrypt without --decode", prepare: decryptBad("b64.txt", func(m *goodMessage) []byte { return []byte(base64.StdEncoding.EncodeToString(m.msg)) }), code: 1, want: []string{"bad/b64.txt", "--decode"}},
		{name: "--decode given a file that is not base64", prepare: decryptBad("raw-decode", func(m *goodMessage) []byte { return m.msg }, "--decode"), code: 1, want: []string{"bad/raw-decode"}},
		// Empty files.
		{name: "empty file given to encrypt (fine)", prepare: cliOnly("encrypt", "-i", "in/a.txt", "-o", "enc", rawKey, "-S", "-v"), code: 0, want: []string{"in/a.txt"}, allowNew: []string{"enc/"}},
		{name: "empty file given to decrypt", prepare: decryptBad("empty", func(*goodMessage) []byte { return nil }), code: 1, want: []string{"bad/empty", "empty input"}},
		// Inputs and outputs.
		{name: "input does not exist", prepare: cliOnly("encrypt", "-i", "nope.bin", "-o", "enc", rawKey, "-S"), code: 2, want: []string{"-i/--input", "nope.bin"}},
		{name: "directory given without -r", prepare: cliOnly("encrypt", "-i", "in", "-o", "enc", rawKey, "-S"), code: 2, want: []string{"-i/--input", "in is a directory"}},
		{name: "--max-length smaller than a frame", prepare: decryptBad("maxlen", func(m *goodMessage) []byte { return m.msg }, "--max-length", "100"), code: 1, want: []string{"bad/maxlen", "100"}},
	}, guardBadCases()...) // overlaps, encjob's own files, edited plans (guard_e2e_test.go)
}

// symlinkTree makes tree/ with a regular file and symlink loops.
func symlinkTree(t *testing.T, dir string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "tree", "ok.txt"), []byte("ok\n"), 0o644)
	for name, target := range map[string]string{"loop": "loop", "a": "b", "b": "a", "sub/up": ".."} {
		p := filepath.Join(dir, "tree", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

// fifoTree makes odd/ with a regular file, a fifo and (devices) symlinks
// to /dev/null and /dev/zero.
func fifoTree(t *testing.T, dir string, devices bool) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "odd", "ok.txt"), []byte("ok\n"), 0o644)
	if err := syscall.Mkfifo(filepath.Join(dir, "odd", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"null", "zero"} {
		if !devices {
			break
		}
		if err := os.Symlink("/dev/"+d, filepath.Join(dir, "odd", d)); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot records every entry under dir: type, mode and content digest.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		out[rel] = desc
		return nil
	})
	return out
}

// runGuarded runs the binary like encjob() but kills it after a minute, so
// a run that blocks (on a fifo, say) fails the test instead of hanging it.
// The limit guards against hangs; it is not a timing assertion.
func runGuarded(t *testing.T, dir string, a ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, a...)
	cmd.Dir, cmd.Env = dir, cleanEnv()
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("encjob %q did not finish within a minute (blocked?); stderr: %s", a, se.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running encjob: %v", err)
	}
	return result{so.String(), se.String(), code}
}

var bareEOF = regexp.MustCompile(`(^|: )(unexpected )?EOF$`)

// firstLine is what encjob says about the bad input: the first stderr
// line that is not the run summary.
func firstLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "encjob: done:") {
			continue
		}
		return l
	}
	return ""
}

type badRow struct {
	name, command, line string
	code                int
}

// TestBadInputs runs every bad input through the binary: the exit code is
// the documented one, stderr names the item and the cause (no stack, no
// bare EOF), nothing but the allowed outputs appears, and the inputs are
// unchanged. docs/bad-inputs.md is this test's table (-update rewrites it).
func TestBadInputs(t *testing.T) {
	specErrorAt := regexp.MustCompile(`^encjob: error: [\w.-]+\.yaml:\d+:\d+: `)
	goodDir, _ := setup(t)
	good := makeGoodMessage(t, goodDir)
	var rows []badRow
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := setup(t)
			os.Mkdir(filepath.Join(dir, "bad"), 0o755)
			key, err := os.ReadFile(filepath.Join(goodDir, "key")) // the good message's key
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "key"), key, 0o600)
			a := tc.prepare(t, dir, good)
			before := snapshot(t, dir)
			r := runGuarded(t, dir, a...)
			wantCode(t, r, tc.code)
			if tc.stdoutEmpty && r.stdout != "" {
				t.Errorf("%d bytes reached stdout, want none", len(r.stdout))
			}
			line := strings.ReplaceAll(firstLine(r.stderr), dir+string(filepath.Separator), "")
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("first stderr line lacks %q:\n%s\nfull stderr:\n%s", w, line, r.stderr)
				}
			}
			if strings.HasPrefix(tc.name, "spec:") && !specErrorAt.MatchString(line) {
				t.Errorf("a spec error without file:line:col: %s", line)
			}
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.Contains(l, "goroutine ") || strings.Contains(l, "panic:") || strings.Contains(l, "runtime error") || bareEOF.MatchString(strings.TrimSpace(l)) {
					t.Errorf("stderr line is a crash or a bare EOF: %q", l)
				}
			}
			if tc.code != 0 && !strings.Contains(r.stderr, "encjob: error:") {
				t.Errorf("failing run without an 'encjob: error:' line:\n%s", r.stderr)
			}
			after := snapshot(t, dir)
			for p, d := range before {
				if after[p] != d {
					t.Errorf("%s changed: %s -> %q", p, d, after[p])
				}
			}
			for p := range after {
				if _, ok := before[p]; ok {
					continue
				}
				allowed := false
				for _, pre := range tc.allowNew {
					allowed = allowed || strings.HasPrefix(p+"/", pre)
				}
				if !allowed {
					t.Errorf("the run left %s behind", p)
				}
				if inState := strings.Contains("/"+p+"/", "/"+sources.StateDir+"/"); !inState &&
					(strings.Contains(filepath.Base(p), ".encjob-tmp") || strings.HasPrefix(filepath.Base(p), ".")) {
					t.Errorf("temporary file left: %s", p)
				}
			}
			rows = append(rows, badRow{tc.name, commandLine(a), line, r.code})
		})
	}
	if t.Failed() {
		return
	}
	doc := renderBadInputs(rows)
	if *updateBadInputs {
		if err := os.WriteFile(badInputsDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(badInputsDoc)
	if err != nil || string(have) != doc {
		haveLines := strings.Split(string(have), "\n")
		for i, l := range strings.Split(doc, "\n") {
			if i >= len(haveLines) || haveLines[i] != l {
				t.Errorf("first difference, line %d:\nfile: %s\nnow:  %s", i+1, at(haveLines, i), l)
				break
			}
		}
		t.Fatalf("docs/bad-inputs.md is out of date (%v); run: go test ./cmd/encjob -run TestBadInputs -update", err)
	}
}

func commandLine(a []string) string {
	var out []string
	for _, s := range a {
		if s == "" || strings.ContainsAny(s, " \t\"'$|\\") || !isPrintable(s) {
			s = strconv.Quote(s)
		}
		out = append(out, s)
	}
	return "encjob " + strings.Join(out, " ")
}

func isPrintable(s string) bool {
	return strconv.Quote(s) == `"`+s+`"`
}

func renderBadInputs(rows []badRow) string {
	var b strings.Builder
	b.WriteString(`# Bad inputs and what encjob says

Generated by TestBadInputs in cmd/encjob/badinput_test.go
(` + "`go test ./cmd/encjob -run TestBadInputs -update`" + `); do not edit by hand.

Every row runs the real binary in a fresh directory holding a raw AES key
(` + "`key`" + `), a tree ` + "`in/`" + ` and, for decryption cases, the bad input
under ` + "`bad/`" + `. For each the test asserts the exit code, that the line below
names the item (or flag) and the cause, that no Go stack trace or bare
"EOF" is printed, that no output or temporary file is left behind (the
success rows may write their outputs only), and that every input is
unchanged. "First line" is the first line on stderr other than the run
summary. Exit codes: 0 success (a skipped fifo or device is not an error),
1 an item failed, 2 usage or spec error (docs/cli.md).

| Bad input | Command | First line | Exit |
|---|---|---|---|
`)
	cell := func(s string) string {
		s = escapeInvalidUTF8(strings.ReplaceAll(s, "|", `\|`))
		return "`" + strings.ReplaceAll(s, "`", "'") + "`"
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %d |\n", strings.ReplaceAll(r.name, "|", `\|`), cell(r.command), cell(r.line), r.code)
	}
	return b.String()
}

// escapeInvalidUTF8 writes bytes that are not UTF-8 as \xNN.
func escapeInvalidUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, `\x%02x`, s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end of file)"
}
