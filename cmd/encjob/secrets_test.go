package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/kmsemu"
)

// secretScanner collects every byte encjob printed or logged and the
// secrets that must never appear in it.
type secretScanner struct {
	secrets map[string][]byte // label -> bytes that must not appear
	out     []struct{ where, text string }
}

// addKey registers key material in every encoding a log could carry it.
func (s *secretScanner) addKey(label string, k []byte) {
	s.secrets[label+" (raw)"] = k
	s.secrets[label+" (hex)"] = []byte(hex.EncodeToString(k))
	s.secrets[label+" (HEX)"] = []byte(strings.ToUpper(hex.EncodeToString(k)))
	s.secrets[label+" (base64)"] = []byte(base64.RawStdEncoding.EncodeToString(k))
	s.secrets[label+" (base64url)"] = []byte(base64.RawURLEncoding.EncodeToString(k))
}

func (s *secretScanner) add(where, text string) {
	s.out = append(s.out, struct{ where, text string }{where, text})
}

func (s *secretScanner) check(t *testing.T) {
	t.Helper()
	total := 0
	for _, o := range s.out {
		total += len(o.text)
		for label, sec := range s.secrets {
			if bytes.Contains([]byte(o.text), sec) {
				t.Errorf("%s contains %s", o.where, label)
			}
		}
	}
	if total == 0 {
		t.Fatal("nothing was captured")
	}
	t.Logf("scanned %d bytes of output from %d streams for %d secrets", total, len(s.out), len(s.secrets))
}

// runEnv runs the binary with extra environment entries and records its
// stdout and stderr in s.
func (s *secretScanner) run(t *testing.T, dir string, extraEnv []string, wantOK bool, a ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, a...)
	cmd.Dir, cmd.Env = dir, append(cleanEnv(), extraEnv...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if wantOK != (code == 0) {
		t.Fatalf("encjob %q: exit %d\nstderr: %s", a, code, se.String())
	}
	s.add(strings.Join(a, " ")+" stdout", so.String())
	s.add(strings.Join(a, " ")+" stderr", se.String())
	return result{so.String(), se.String(), code}
}

// TestSecretsNeverPrinted runs encrypt, decrypt and reencrypt with raw
// AES, raw RSA and aws-kms (the emulator, over the wire) keys, at -vv with
// metadata logs, including failing runs (wrong key, tampered message, a
// KMS key that does not exist), and scans every stdout, stderr and metadata byte for the
// key material, the AWS secret key and the plaintexts.
func TestSecretsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	s := &secretScanner{secrets: map[string][]byte{}}

	aesKey := make([]byte, 32)
	rand.Read(aesKey)
	writeFile(t, filepath.Join(dir, "aes.key"), aesKey, 0o600)
	s.addKey("raw AES key", aesKey)
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	writeFile(t, filepath.Join(dir, "other.key"), otherKey, 0o600)
	s.addKey("other AES key", otherKey)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	writeFile(t, filepath.Join(dir, "rsa.pem"), pemBytes, 0o600)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	writeFile(t, filepath.Join(dir, "rsa-pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	s.addKey("RSA private key DER", der)
	s.addKey("RSA private exponent", rsaKey.D.Bytes())
	s.addKey("RSA prime", rsaKey.Primes[0].Bytes())
	for i, line := range strings.Split(string(pemBytes), "\n") {
		if len(line) == 64 && i > 3 {
			s.secrets["RSA PEM line"] = []byte(line)
			break
		}
	}

	// Plaintexts with distinctive markers, one per file.
	marker := func(n int) []byte {
		m := make([]byte, 12)
		rand.Read(m)
		return []byte("PLAINTEXT-MARKER-" + hex.EncodeToString(m))
	}
	for i, size := range []int{0, 100, 5000, 70000} {
		m := marker(i)
		s.secrets["plaintext marker "+string(m)] = m
		body := bytes.Repeat(append(m, '\n'), size/len(m)+1)
		if size == 0 {
			body = m // a file that is only the marker
		}
		writeFile(t, filepath.Join(dir, "in", "sub", string(rune('a'+i))+".txt"), body, 0o644)
	}
	for _, d := range []string{"enc-aes", "enc-rsa", "enc-kms", "dec", "re", "bad"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}

	// The KMS emulator, reached by the binary over HTTP.
	sd, err := kmsemu.ParseSeed([]byte("account: \"111122223333\"\nregion: us-east-1\nkeys:\n  - id: 1234abcd-12ab-34cd-56ef-1234567890ab\n  - id: 22223333-4444-5555-6666-777788889999\n"))
	if err != nil {
		t.Fatal(err)
	}
	emu, err := kmsemu.New(sd)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	kmsKey, _ := emu.KeyARN("1234abcd-12ab-34cd-56ef-1234567890ab", "us-east-1")
	kmsKey2, _ := emu.KeyARN("22223333-4444-5555-6666-777788889999", "us-east-1")
	awsSecret := "sEcReT" + hex.EncodeToString(otherKey[:12])
	s.secrets["AWS secret access key"] = []byte(awsSecret)
	kmsEnv := []string{"AWS_ENDPOINT_URL_KMS=" + srv.URL, "AWS_ACCESS_KEY_ID=AKIDSECRETSTEST", "AWS_SECRET_ACCESS_KEY=" + awsSecret,
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true"}

	aes := []string{"-w", "provider=raw-aes", "key-file=aes.key", "namespace=ns", "name=aes"}
	other := []string{"-w", "provider=raw-aes", "key-file=other.key", "namespace=ns", "name=aes"}
	rsaW := []string{"-w", "provider=raw-rsa", "key-file=rsa-pub.pem", "namespace=ns", "name=rsa", "padding=oaep-sha256"}
	kmsW := []string{"-w", "key=" + kmsKey}
	meta := func(name string) []string { return []string{"--metadata-output", name} }

	// Successful runs.
	s.run(t, dir, nil, true, args("encrypt", "-i", "in", "-o", "enc-aes", "-r", aes, "-c", "tenant=acme", "-vv", meta("m-enc-aes.jsonl"))...)
	s.run(t, dir, nil, true, args("encrypt", "-i", "in", "-o", "enc-rsa", "-r", rsaW, "-vv", meta("m-enc-rsa.jsonl"))...)
	s.run(t, dir, kmsEnv, true, args("encrypt", "-i", "in", "-o", "enc-kms", "-r", kmsW, "-vv", meta("m-enc-kms.jsonl"))...)
	s.run(t, dir, nil, true, args("decrypt", "-i", "enc-aes", "-o", "dec", "-r", aes, "-c", "tenant=acme", "-vv", meta("m-dec-aes.jsonl"))...)
	s.run(t, dir, kmsEnv, true, args("reencrypt", "-i", "enc-kms", "-o", "re", "-r", "--source-wrapping-keys", "key="+kmsKey, "-w", "key="+kmsKey2, "-vv", meta("m-re.jsonl"))...)
	s.run(t, dir, nil, true, args("reencrypt", "--auto-approve", "-i", "enc-rsa", "-o", "enc-rsa", "-r", "--source-wrapping-keys", "provider=raw-rsa", "key-file=rsa.pem", "namespace=ns", "name=rsa", "padding=oaep-sha256", aes, "--verify", "-vv", meta("m-re-rsa.jsonl"))...)
	s.run(t, dir, nil, true, "inspect", "enc-aes/sub/b.txt.encrypted")
	// Failing runs.
	s.run(t, dir, nil, false, args("decrypt", "-i", "enc-aes", "-o", "dec", "-r", other, "-vv", meta("m-wrong-key.jsonl"))...)
	msg, err := os.ReadFile(filepath.Join(dir, "enc-aes", "sub", "d.txt.encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int{len(msg) / 2, len(msg) - 1, 100} {
		b := bytes.Clone(msg)
		b[off] ^= 0x40
		writeFile(t, filepath.Join(dir, "bad", string(rune('a'+i))+".encrypted"), b, 0o644)
	}
	s.run(t, dir, nil, false, args("decrypt", "-i", "bad", "-o", "dec", "-r", aes, "--suffix", ".x", "-vv", meta("m-tampered.jsonl"))...)
	s.run(t, dir, kmsEnv, false, args("decrypt", "-i", "enc-kms", "-o", "dec", "-r", "-w", "key="+kmsKey2, "-vv", meta("m-kms-wrong.jsonl"))...)
	missing := strings.Replace(kmsKey, "1234abcd", "00000000", 1)
	// A missing key is a setup error found before any item: no log.
	if r := s.run(t, dir, kmsEnv, false, args("encrypt", "-i", "in", "-o", "enc-kms", "-r", "-w", "key="+missing, "-vv", "--suffix", ".y", meta("m-kms-missing.jsonl"))...); r.code != 2 {
		t.Fatalf("missing KMS key: exit %d, want 2", r.code)
	}

	logs, _ := filepath.Glob(filepath.Join(dir, "m-*.jsonl"))
	if len(logs) != 9 {
		t.Fatalf("%d metadata logs, want 9", len(logs))
	}
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		s.add(filepath.Base(p), string(b))
	}
	s.check(t)
}

// captureKeyring is a raw AES keyring that remembers the data keys it
// wraps and unwraps, so a test can look for them in errors.
type captureKeyring struct {
	crypto.Keyring
	keys *[][]byte
}

func (c captureKeyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	err := c.Keyring.OnEncrypt(ctx, m)
	if m.DataKey != nil {
		*c.keys = append(*c.keys, bytes.Clone(m.DataKey))
	}
	return err
}

func (c captureKeyring) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	err := c.Keyring.OnDecrypt(ctx, m, edks)
	if m.DataKey != nil {
		*c.keys = append(*c.keys, bytes.Clone(m.DataKey))
	}
	return err
}

// TestDataKeysNotInErrors encrypts in-process with a keyring that captures
// the data key, then decrypts damaged copies of the message and checks the
// errors carry neither the data key nor the plaintext.
func TestDataKeysNotInErrors(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	raw, err := keyring.NewRawAES("ns", "aes", key)
	if err != nil {
		t.Fatal(err)
	}
	var dataKeys [][]byte
	kr := captureKeyring{raw, &dataKeys}
	plain := bytes.Repeat([]byte("PLAINTEXT-MARKER-datakey "), 400)
	ctx := context.Background()
	msg, err := crypto.Encrypt(ctx, plain, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(kr), FrameLength: 512, PlaintextLength: -1,
		Context: crypto.EncryptionContext{"tenant": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dataKeys) != 1 {
		t.Fatalf("captured %d data keys", len(dataKeys))
	}
	s := &secretScanner{secrets: map[string][]byte{}}
	s.addKey("data key", dataKeys[0])
	s.addKey("wrapping key", key)
	s.secrets["plaintext"] = []byte("PLAINTEXT-MARKER-datakey")
	failures := 0
	for off := 0; off < len(msg); off += 97 {
		b := bytes.Clone(msg)
		b[off] ^= 0x01
		out, _, err := crypto.Decrypt(ctx, b, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr)})
		if err == nil {
			t.Fatalf("tampered byte %d accepted", off)
		}
		if out != nil {
			t.Fatalf("tampered byte %d: plaintext returned with error %v", off, err)
		}
		failures++
		s.add("decrypt error (byte "+string(rune('0'+off%10))+")", err.Error())
	}
	for _, cut := range []int{1, 50, len(msg) / 2, len(msg) - 1} {
		_, _, err := crypto.Decrypt(ctx, msg[:cut], crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr)})
		if err == nil {
			t.Fatalf("message cut at %d accepted", cut)
		}
		s.add("truncated decrypt error", err.Error())
	}
	// The data keys unwrapped while failing are the same key: still secret.
	for _, k := range dataKeys[1:] {
		if !bytes.Equal(k, dataKeys[0]) {
			t.Fatal("a different data key was unwrapped from a tampered message")
		}
	}
	s.check(t)
	t.Logf("%d damaged messages rejected; no error names the data key or the plaintext", failures)
}
