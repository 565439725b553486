package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
	"github.com/encjob/encjob/spec"
)

const (
	account = "111122223333"
	eastARN = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-4111-8111-111111111111"
	westARN = "arn:aws:kms:eu-west-1:111122223333:key/22222222-2222-4222-8222-222222222222"
)

const seedYAML = `
account: "111122223333"
region: us-east-1
keys:
  - id: 11111111-1111-4111-8111-111111111111
    aliases: [alias/east]
  - id: 22222222-2222-4222-8222-222222222222
    region: eu-west-1
    aliases: [alias/west]
`

var creds = kmsemutest.Credentials

// kmsEnv is a KMS emulator on loopback.
type kmsEnv struct {
	emu *kmsemu.Emulator
	url string
}

// newKMS clears ambient AWS_* variables and starts the emulator.
func newKMS(t *testing.T) *kmsEnv {
	t.Helper()
	srv := kmsemutest.Start(t, seedYAML)
	return &kmsEnv{emu: srv.Emu, url: srv.URL}
}

func (e *kmsEnv) config(keys ...string) awskms.Config {
	return awskms.Config{Keys: keys, Region: "us-east-1", Endpoint: e.url, Credentials: creds}
}

func (e *kmsEnv) keyring(t *testing.T, keys ...string) crypto.Keyring {
	t.Helper()
	k, err := awskms.New(context.Background(), e.config(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// total is the number of KMS calls of every operation.
func (e *kmsEnv) total() int64 {
	var n int64
	for _, c := range e.emu.Calls() {
		n += c
	}
	return n
}

// aesKey makes a raw AES key file and returns its path and keyring.
func aesKey(t *testing.T, dir, name string) (string, crypto.Keyring) {
	t.Helper()
	p := filepath.Join(dir, name+".key")
	if err := keyring.GenerateAESKeyFile(p, 256); err != nil {
		t.Fatal(err)
	}
	key, _, err := keyring.LoadAESKeyFile(p, "raw")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.NewRawAES("encjob", name, key)
	if err != nil {
		t.Fatal(err)
	}
	return p, kr
}

func write(t *testing.T, root, name string, data []byte) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// seal encrypts pt under kr with suite id and context pairs ("k=v").
func seal(t *testing.T, kr crypto.Keyring, suite uint16, pt []byte, pairs ...string) []byte {
	t.Helper()
	ec := crypto.EncryptionContext{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		ec[k] = v
	}
	msg, err := crypto.Encrypt(context.Background(), pt, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(kr),
		Suite: crypto.SuiteByID(suite), Context: ec})
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	return msg
}

// open decrypts the file at p with kr.
func open(t *testing.T, kr crypto.Keyring, p string) ([]byte, *crypto.Header) {
	t.Helper()
	msg, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pt, h, err := crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr)})
	if err != nil {
		t.Fatalf("decrypt %s: %v", p, err)
	}
	return pt, h
}

func loadPolicy(t *testing.T, yaml string, env map[string]string) *spec.Policy {
	t.Helper()
	docs, err := spec.Parse("policy.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	if docs[0].Policy == nil {
		t.Fatalf("not a policy: %s", docs[0].Kind)
	}
	return docs[0].Policy
}

func equalSets(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// decrypt decrypts a message with kr.
func decrypt(kr crypto.Keyring, msg []byte) ([]byte, *crypto.Header, error) {
	return crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr)})
}
