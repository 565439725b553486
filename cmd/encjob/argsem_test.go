package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// Issue 17.7: aws-encryption-cli's argument semantics through the binary,
// the cases that need a KMS (the others are scripts in testdata/script:
// limits, same_output, help_forms).

// edkCount is the number of encrypted data keys in a message's header.
func edkCount(t *testing.T, dir, path string) int {
	t.Helper()
	r := encjob(t, dir, nil, "inspect", path)
	wantCode(t, r, 0)
	var h struct {
		EDKs []json.RawMessage `json:"encrypted_data_keys"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("inspect %s: %v\n%s", path, err, r.stdout)
	}
	return len(h.EDKs)
}

// TestE2EWrappingGroupsAsCLI: a KMS key given in several -w groups is
// wrapped once per group and a key repeated inside one group once, as
// aws-encryption-cli builds one master key provider per group (which adds
// a key id once); --max-encrypted-data-keys counts those EDKs.
func TestE2EWrappingGroupsAsCLI(t *testing.T) {
	srv := kmsemutest.Start(t, "account: \"111122223333\"\nregion: us-east-1\nkeys:\n  - id: 11111111-1111-4111-8111-111111111111\n    aliases: [alias/app]\n")
	key := srv.KeyARN(t, "alias/app", "us-east-1")
	dir, _ := setup(t)
	for _, tc := range []struct {
		name  string
		wArgs []string
		edks  int
	}{
		{"one group, key repeated", []string{"-w", "key=" + key, "key=" + key}, 1},
		{"two groups", []string{"-w", "key=" + key, "-w", "key=" + key}, 2},
		{"three groups, one repeating", []string{"-w", "key=" + key, "-w", "key=" + key, "key=" + key, "-w", "key=" + key}, 3},
	} {
		out := filepath.Join("enc", strings.ReplaceAll(tc.name, " ", "_"))
		os.MkdirAll(filepath.Join(dir, out), 0o755)
		r := encjobKMS(t, srv, dir, args("encrypt", "-i", "in/a.txt", "-o", out, "-S", tc.wArgs)...)
		wantCode(t, r, 0)
		msg := filepath.Join(out, "a.txt.encrypted")
		if n := edkCount(t, dir, msg); n != tc.edks {
			t.Errorf("%s: %d EDKs, want %d", tc.name, n, tc.edks)
		}
		wantCode(t, encjobKMS(t, srv, dir, "decrypt", "-i", msg, "-o", "dec", "-w", "key="+key, "-S", "--max-encrypted-data-keys", "3"), 0)
	}
	// Two groups write two EDKs: a limit of 1 refuses the encryption.
	os.MkdirAll(filepath.Join(dir, "enc", "limit"), 0o755)
	r := encjobKMS(t, srv, dir, "encrypt", "-i", "in/a.txt", "-o", "enc/limit", "-S", "-w", "key="+key, "-w", "key="+key, "--max-encrypted-data-keys", "1")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "more than the limit of 1") {
		t.Errorf("stderr %q", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "enc", "limit", "a.txt.encrypted")); err == nil {
		t.Error("a refused encryption left an output")
	}
}

// TestE2EDiscoveryAccountAsCLI: a discovery-account that is not a
// 12-digit id does not reject the command: the message decrypts when any
// listed account matches (a note names the value that cannot match); when
// none could match, the command is refused before any work.
func TestE2EDiscoveryAccountAsCLI(t *testing.T) {
	srv := kmsemutest.Start(t, "account: \"111122223333\"\nregion: us-east-1\nkeys:\n  - id: 11111111-1111-4111-8111-111111111111\n    aliases: [alias/app]\n")
	key := srv.KeyARN(t, "alias/app", "us-east-1")
	dir, files := setup(t)
	wantCode(t, encjobKMS(t, srv, dir, "encrypt", "-i", "in/b/c.bin", "-o", "enc", "-S", "-w", "key="+key), 0)
	r := encjobKMS(t, srv, dir, "decrypt", "-i", "enc/c.bin.encrypted", "-o", "dec", "-S",
		"-w", "discovery=true", "discovery-account=not-an-id", "discovery-account=111122223333", "discovery-account=12345", "discovery-partition=aws")
	wantCode(t, r, 0)
	got, err := os.ReadFile(filepath.Join(dir, "dec", "c.bin.encrypted.decrypted"))
	if err != nil || string(got) != string(files["b/c.bin"]) {
		t.Fatalf("decrypted %d bytes (%v)", len(got), err)
	}
	for _, a := range []string{"not-an-id", "12345"} {
		if !strings.Contains(r.stderr, "discovery-account="+a+" is not a 12-digit AWS account id") {
			t.Errorf("no note for %s: %s", a, r.stderr)
		}
	}
	// A filter listing only other accounts decrypts nothing.
	r = encjobKMS(t, srv, dir, "decrypt", "-i", "enc/c.bin.encrypted", "-o", "dec", "-S",
		"-w", "discovery=true", "discovery-account=999988887777", "discovery-account=x", "discovery-partition=aws")
	wantCode(t, r, 1)
	r = encjobKMS(t, srv, dir, "decrypt", "-i", "enc/c.bin.encrypted", "-o", "dec", "-S",
		"-w", "discovery=true", "discovery-account=x", "discovery-partition=aws")
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "no discovery-account is a 12-digit AWS account id") {
		t.Errorf("stderr %q", r.stderr)
	}
}
