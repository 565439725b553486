// Package esdkvectors loads the shared AWS Encryption SDK test vectors
// (testdata/esdk-vectors, made by the official Python and JavaScript ESDKs;
// see its README.md) for the tests of several packages.
package esdkvectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Key is one entry of keys.json.
type Key struct {
	ID            string `json:"id"`
	Type          string `json:"type"` // raw-aes | raw-rsa
	Bits          int    `json:"bits"`
	MaterialB64   string `json:"material_b64"`
	PrivateKeyPEM string `json:"private_key_pem"`
	PublicKeyPEM  string `json:"public_key_pem"`
	Namespace     string `json:"key_namespace"`
	Name          string `json:"key_name"`
}

// KeyRef names a key a case uses, with the RSA padding (a property of the
// case, not of the key).
type KeyRef struct {
	KeyID     string `json:"key_id"`
	Namespace string `json:"key_namespace"`
	Name      string `json:"key_name"`
	Padding   string `json:"padding"`
}

// Header is the parsed header some success cases carry.
type Header struct {
	Version     int               `json:"version"`
	SuiteID     string            `json:"algorithm_suite_id"`
	MessageID   string            `json:"message_id_hex"`
	Context     map[string]string `json:"encryption_context"`
	ContentType int               `json:"content_type"`
	FrameLength uint32            `json:"frame_length"`
	EDKs        []struct {
		ProviderID   string `json:"provider_id"`
		ProviderInfo string `json:"provider_info_b64"`
		Ciphertext   string `json:"encrypted_data_key_b64"`
	} `json:"encrypted_data_keys"`
	CommitKey string `json:"commitment_key_b64"`
}

// Case is one entry of manifest.json.
type Case struct {
	ID                   string            `json:"id"`
	Category             string            `json:"category"`
	Expected             string            `json:"expected_result"` // success | failure
	Ciphertext           string            `json:"ciphertext"`
	Plaintext            string            `json:"plaintext"`
	SuiteID              string            `json:"algorithm_suite_id"`
	FrameLength          uint32            `json:"frame_length"`
	Context              map[string]string `json:"encryption_context"`
	EncryptKeys          []KeyRef          `json:"encrypt_keys"`
	DecryptKeys          []KeyRef          `json:"decrypt_keys"`
	CommitmentPolicy     string            `json:"commitment_policy"`
	MaxEncryptedDataKeys *int              `json:"max_encrypted_data_keys"`
	Mutation             struct {
		Kind  string `json:"kind"`
		Field string `json:"field"`
	} `json:"mutation"`
	Header *Header `json:"header"`
}

// Set is the whole vector set.
type Set struct {
	Dir   string
	Keys  map[string]Key
	Order []string // key ids in keys.json order
	Cases []Case
}

// Path returns a manifest path (ciphertext or plaintext) as a file path.
func (s *Set) Path(rel string) string { return filepath.Join(s.Dir, rel) }

// Dir is the vector directory in this repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "esdk-vectors")
}

// Load reads keys.json and manifest.json; the set is part of the
// repository, so anything missing fails the test.
func Load(t testing.TB) *Set {
	t.Helper()
	s := &Set{Dir: Dir(), Keys: map[string]Key{}}
	var kf struct {
		Keys []Key `json:"keys"`
	}
	readJSON(t, s.Path("keys.json"), &kf)
	for _, k := range kf.Keys {
		s.Keys[k.ID] = k
		s.Order = append(s.Order, k.ID)
	}
	var mf struct {
		Cases []Case `json:"cases"`
	}
	readJSON(t, s.Path("manifest.json"), &mf)
	s.Cases = mf.Cases
	if len(s.Cases) < 200 || len(s.Keys) == 0 {
		t.Fatalf("test vectors: %d cases and %d keys; the shared set has 272 cases", len(s.Cases), len(s.Keys))
	}
	return s
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("test vectors: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
