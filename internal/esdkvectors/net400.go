package esdkvectors

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Net400Folders are the three ESDK-.NET 4.0.x vector sets in
// testdata/esdk-vectors-net400 (see its README.md), with what a
// decryptor must do: Invalid ones fail unless the .NET 4.0.0 retry is
// allowed; the others decrypt with it forbidden.
var Net400Folders = []struct {
	Name    string
	Invalid bool
	Cases   int // as the README counts them
}{
	{"valid-Net-4.0.0", false, 5},
	{"invalid-Net-4.0.0", true, 28},
	{"v4-Net-4.0.1", false, 132},
}

// Net400Key is one key of a version 3 keys manifest.
type Net400Key struct {
	Type     string `json:"type"` // symmetric | private | public | aws-kms
	KeyID    string `json:"key-id"`
	Material string `json:"material"`
	Encoding string `json:"encoding"` // base64 | pem
	Decrypt  bool   `json:"decrypt"`
}

// Net400MasterKey is one entry of a test's master-keys.
type Net400MasterKey struct {
	Type        string `json:"type"` // aws-kms | raw
	Key         string `json:"key"`  // a keys.json id
	ProviderID  string `json:"provider-id"`
	Algorithm   string `json:"encryption-algorithm"` // aes | rsa
	Padding     string `json:"padding-algorithm"`
	PaddingHash string `json:"padding-hash"`
}

// Net400Case is one test of an awses-decrypt manifest, version 4.
type Net400Case struct {
	ID         string
	Ciphertext string            `json:"ciphertext"` // file://…, relative to the folder
	MasterKeys []Net400MasterKey `json:"master-keys"`
	CMM        string            `json:"cmm"` // Default | RequiredEncryptionContext
	Context    map[string]string `json:"encryption-context"`
	Result     struct {
		Output struct {
			Plaintext string `json:"plaintext"`
		} `json:"output"`
	} `json:"result"`
}

// Net400Set is one folder: its keys and its tests, sorted by id.
type Net400Set struct {
	Dir   string
	Keys  map[string]Net400Key
	Cases []Net400Case
}

// Path turns a manifest URI (file://x) into a file path.
func (s *Net400Set) Path(uri string) string {
	return filepath.Join(s.Dir, filepath.FromSlash(strings.TrimPrefix(uri, "file://")))
}

// Net400Dir is the directory of the .NET 4.0.x vectors in this repository.
func Net400Dir() string { return filepath.Join(Dir(), "..", "esdk-vectors-net400") }

// LoadNet400 reads one folder; the vectors are part of the repository, so
// anything missing, or a count other than the README's, fails the test.
func LoadNet400(t testing.TB, folder string, want int) *Net400Set {
	t.Helper()
	s := &Net400Set{Dir: filepath.Join(Net400Dir(), folder)}
	var kf struct {
		Keys map[string]Net400Key `json:"keys"`
	}
	readJSON(t, filepath.Join(s.Dir, "keys.json"), &kf)
	s.Keys = kf.Keys
	var mf struct {
		Manifest struct {
			Type    string `json:"type"`
			Version int    `json:"version"`
		} `json:"manifest"`
		Tests map[string]Net400Case `json:"tests"`
	}
	readJSON(t, filepath.Join(s.Dir, "manifest.json"), &mf)
	if mf.Manifest.Type != "awses-decrypt" || mf.Manifest.Version != 4 {
		t.Fatalf("%s: manifest %s version %d, want awses-decrypt version 4", folder, mf.Manifest.Type, mf.Manifest.Version)
	}
	for id, c := range mf.Tests {
		c.ID = id
		s.Cases = append(s.Cases, c)
	}
	sort.Slice(s.Cases, func(i, j int) bool { return s.Cases[i].ID < s.Cases[j].ID })
	if len(s.Cases) != want || len(s.Keys) == 0 {
		t.Fatalf("%s: %d tests and %d keys, the README lists %d tests", folder, len(s.Cases), len(s.Keys), want)
	}
	return s
}
