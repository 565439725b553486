package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// writeECPair writes NAME.pem (PKCS#8) and NAME.pub.pem (SPKI) on P-384.
func writeECPair(t *testing.T, dir, name string) {
	t.Helper()
	k, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(k.PublicKey())
	for file, b := range map[string]*pem.Block{name + ".pem": {Type: "PRIVATE KEY", Bytes: der}, name + ".pub.pem": {Type: "PUBLIC KEY", Bytes: pub}} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func ecdhKey(scheme string, kv ...string) []string {
	return append([]string{"-w", "provider=raw-ecdh", "curve=ECC_NIST_P384", "scheme=" + scheme}, kv...)
}

func checkTree(t *testing.T, dir, out string, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(dir, out, name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s/%s not decrypted back byte-identical: %v", out, name, err)
		}
	}
}

// Raw ECDH through the binary: a mixed group (raw ECDH static + raw AES)
// encrypts; the recipient decrypts with discovery or its own static pair,
// the AES key alone still decrypts; an ephemeral sender's group cannot
// decrypt (exit 2, a setup error), neither can a public key given as the
// private key; another recipient fails the items (exit 1) saying why.
func TestE2ERawECDH(t *testing.T) {
	dir, files := setup(t)
	writeECPair(t, dir, "me")
	writeECPair(t, dir, "them")
	writeECPair(t, dir, "other")
	static := ecdhKey("RawPrivateKeyToStaticPublicKey", "private-key-file=me.pem", "recipient-public-key-file=them.pub.pem")
	r := encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc", "-r", static, rawKey, "-c", "tenant=acme", "-c", "目的=テスト",
		"--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "--metadata-output", "enc.jsonl")...)
	wantCode(t, r, 0)
	f, err := os.Open(filepath.Join(dir, "enc", "b", "c.bin.encrypted"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(f)
	f.Close()
	if err != nil || len(h.EncryptedDataKeys) != 2 || h.EncryptedDataKeys[0].ProviderID != "raw-ecdh" {
		t.Fatalf("header: %v", err)
	}
	if l := keygroup.EDKLabel(h.EncryptedDataKeys[0]); !strings.HasPrefix(l, "raw-ecdh/recipient:") {
		t.Errorf("label %q", l)
	}
	// The metadata log names the ECDH key pair and the AES key.
	for _, rec := range readMetadata(t, filepath.Join(dir, "enc.jsonl")) {
		ids, _ := json.Marshal(rec["key_ids"])
		if !strings.Contains(string(ids), "raw-ecdh/recipient:") || !strings.Contains(string(ids), "encjob/test") {
			t.Errorf("metadata record %v: key_ids %s", rec["input"], ids)
		}
	}
	for i, key := range [][]string{
		ecdhKey("PublicKeyDiscovery", "private-key-file=them.pem"),
		ecdhKey("RawPrivateKeyToStaticPublicKey", "private-key-file=them.pem", "recipient-public-key-file=me.pub.pem"),
		rawKey,
	} {
		out := "dec" + string(rune('0'+i))
		os.Mkdir(filepath.Join(dir, out), 0o755)
		r := encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", out, "-r", key, "--strip-suffix", "-S")...)
		wantCode(t, r, 0)
		checkTree(t, dir, out, files)
	}

	eph := ecdhKey("EphemeralPrivateKeyToStaticPublicKey", "recipient-public-key-file=them.pub.pem")
	os.Mkdir(filepath.Join(dir, "enc-eph"), 0o755)
	r = encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc-eph", "-r", eph, "-S")...)
	wantCode(t, r, 0)
	os.Mkdir(filepath.Join(dir, "dec-eph"), 0o755)
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc-eph", "-o", "dec-eph", "-r", eph, "--strip-suffix", "-S")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "can only encrypt") {
		t.Errorf("ephemeral decrypt: %s", r.stderr)
	}
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc-eph", "-o", "dec-eph", "-r", ecdhKey("PublicKeyDiscovery", "private-key-file=them.pem"), "--strip-suffix", "-S")...)
	wantCode(t, r, 0)
	checkTree(t, dir, "dec-eph", files)

	os.Mkdir(filepath.Join(dir, "dec-x"), 0o755)
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", "dec-x", "-r", ecdhKey("PublicKeyDiscovery", "private-key-file=them.pub.pem"), "--strip-suffix", "-S")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "holds only a public key") {
		t.Errorf("public key as private: %s", r.stderr)
	}
	os.Mkdir(filepath.Join(dir, "dec-other"), 0o755)
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", "dec-other", "-r", ecdhKey("PublicKeyDiscovery", "private-key-file=other.pem"), "--strip-suffix", "-S")...)
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "no encrypted data key of key group") || !strings.Contains(r.stderr, "raw-ecdh/recipient:") {
		t.Errorf("wrong recipient: %s", r.stderr)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "dec-other")); len(left) != 0 {
		t.Errorf("a failed decrypt left %d entries", len(left))
	}
	os.Mkdir(filepath.Join(dir, "enc-y"), 0o755)
	r = encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc-y", "-r", ecdhKey("PublicKeyDiscovery", "private-key-file=them.pem"), "-S")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "can only decrypt") {
		t.Errorf("discovery encrypt: %s", r.stderr)
	}
}

const ecdhJobYAML = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: ecdh}
spec:
  operation: encrypt
  sources: [{path: ./in}]
  output: {path: ./enc}
  keyGroups:
    ecdh:
      provider: raw-ecdh
      curve: ECC_NIST_P384
      scheme: RawPrivateKeyToStaticPublicKey
      privateKeyFile: ./me.pem
      recipientPublicKeyFile: ./them.pub.pem
  encrypt: {keyGroup: ecdh, context: {tenant: acme, purpose: x}}
`

// The spec form of issue 15.6: a raw-ecdh key group in a job file; a
// second plan finds everything unchanged (the header matches the group).
func TestE2ERawECDHSpec(t *testing.T) {
	dir, files := setup(t)
	writeECPair(t, dir, "me")
	writeECPair(t, dir, "them")
	os.WriteFile(filepath.Join(dir, "job.yaml"), []byte(ecdhJobYAML), 0o644)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "job.yaml", "--no-progress"), 0)
	r := encjob(t, dir, nil, "plan", "-f", "job.yaml", "--detailed-exitcode")
	wantCode(t, r, 0)
	os.Mkdir(filepath.Join(dir, "dec"), 0o755)
	r = encjob(t, dir, nil, args("decrypt", "-i", "enc", "-o", "dec", "-r", ecdhKey("PublicKeyDiscovery", "private-key-file=them.pem"), "--strip-suffix", "-S")...)
	wantCode(t, r, 0)
	checkTree(t, dir, "dec", files)
}

// AWS KMS RSA and ECDH key groups through the binary against kmsemu: RSA
// encrypts offline with the public key from GetPublicKey and decrypts
// through KMS; a KMS ECDH sender writes to a raw recipient, who decrypts
// with raw discovery, and the sender's own KMS group decrypts too; the
// signed default suite with the RSA group is a usage error (exit 2).
func TestE2EKMSAsymmetric(t *testing.T) {
	dir, files := setup(t)
	writeECPair(t, dir, "them")
	srv := kmsemutest.Start(t, `account: "111122223333"
region: us-east-1
keys:
  - id: 66666666-6666-4666-8666-666666666666
    keySpec: RSA_3072
  - id: 77777777-7777-4777-8777-777777777777
    keySpec: ECC_NIST_P384
    usage: KEY_AGREEMENT
`)
	rsaARN := "arn:aws:kms:us-east-1:111122223333:key/66666666-6666-4666-8666-666666666666"
	rsa := []string{"-w", "provider=aws-kms-rsa", "key=" + rsaARN, "encryption-algorithm=RSAES_OAEP_SHA_256"}
	r := encjobKMS(t, srv, dir, args("encrypt", "-i", "in", "-o", "enc", "-r", rsa, "-S")...)
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "only unsigned suites") {
		t.Errorf("signed default suite: %s", r.stderr)
	}
	r = encjobKMS(t, srv, dir, args("encrypt", "-i", "in", "-o", "enc", "-r", rsa, "--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "-S")...)
	wantCode(t, r, 0)
	if srv.Emu.CallCount("GetPublicKey") != 1 || srv.Emu.CallCount("Encrypt") != 0 {
		t.Errorf("RSA encrypt: %d GetPublicKey, %d Encrypt calls; want 1 and 0", srv.Emu.CallCount("GetPublicKey"), srv.Emu.CallCount("Encrypt"))
	}
	r = encjobKMS(t, srv, dir, args("decrypt", "-i", "enc", "-o", "dec", "-r", rsa, "--strip-suffix", "-S")...)
	wantCode(t, r, 0)
	checkTree(t, dir, "dec", files)

	eccARN := "arn:aws:kms:us-east-1:111122223333:key/77777777-7777-4777-8777-777777777777"
	kmsECDH := []string{"-w", "provider=aws-kms-ecdh", "key=" + eccARN, "curve=ECC_NIST_P384", "scheme=KmsPrivateKeyToStaticPublicKey", "recipient-public-key-file=them.pub.pem"}
	os.Mkdir(filepath.Join(dir, "enc2"), 0o755)
	r = encjobKMS(t, srv, dir, args("encrypt", "-i", "in", "-o", "enc2", "-r", kmsECDH, "-S")...)
	wantCode(t, r, 0)
	for i, key := range [][]string{ecdhKey("PublicKeyDiscovery", "private-key-file=them.pem"), kmsECDH} {
		out := "dec2-" + string(rune('a'+i))
		os.Mkdir(filepath.Join(dir, out), 0o755)
		r = encjobKMS(t, srv, dir, args("decrypt", "-i", "enc2", "-o", out, "-r", key, "--strip-suffix", "-S")...)
		wantCode(t, r, 0)
		checkTree(t, dir, out, files)
	}
}

const ecdhPolicyYAML = `apiVersion: encjob.dev/v1
kind: EncryptionPolicy
metadata: {name: p}
spec:
  sources: [{path: ./tree}]
  keyGroups:
    ecdh: {provider: raw-ecdh, curve: ECC_NIST_P384, scheme: RawPrivateKeyToStaticPublicKey, privateKeyFile: me.pem, recipientPublicKeyFile: them.pub.pem}
    old: {provider: raw-aes, keyFile: key, namespace: encjob, name: test}
  rules:
    - match: ["**"]
      keyGroup: ecdh
`

// Policy check knows raw ECDH: a message under the ECDH pair complies,
// one under the old AES key is a violation naming its key; apply moves it
// under the ECDH pair and a second check is clean.
func TestE2EPolicyRawECDH(t *testing.T) {
	dir, _ := setup(t)
	writeECPair(t, dir, "me")
	writeECPair(t, dir, "them")
	os.MkdirAll(filepath.Join(dir, "tree"), 0o755)
	for name, key := range map[string][]string{"a": ecdhKey("RawPrivateKeyToStaticPublicKey", "private-key-file=me.pem", "recipient-public-key-file=them.pub.pem"), "b": rawKey} {
		os.WriteFile(filepath.Join(dir, name+".txt"), []byte("secret "+name), 0o644)
		wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", name+".txt", "-o", "tree/"+name+".enc", key, "-S")...), 0)
	}
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(ecdhPolicyYAML), 0o644)
	r := encjob(t, dir, nil, "check", "-f", "policy.yaml", "--json")
	wantCode(t, r, 1)
	var rep struct {
		Items []struct {
			Input  string   `json:"input"`
			Status string   `json:"status"`
			KeyIDs []string `json:"key_ids"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, r.stdout)
	}
	status := map[string]string{}
	for _, it := range rep.Items {
		status[filepath.Base(it.Input)] = it.Status + " " + strings.Join(it.KeyIDs, ",")
	}
	if !strings.HasPrefix(status["b.enc"], "violation encjob/test") || strings.HasPrefix(status["a.enc"], "violation") || !strings.Contains(status["a.enc"], "raw-ecdh/recipient:") {
		t.Fatalf("check: %v\n%s", status, r.stdout)
	}
	wantCode(t, encjob(t, dir, nil, "apply", "--auto-approve", "-f", "policy.yaml"), 0)
	wantCode(t, encjob(t, dir, nil, "check", "-f", "policy.yaml"), 0)
}
