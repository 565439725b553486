package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// Issue 17.7: aws-encryption-cli's argument semantics through the binary.

// TestE2ENegativeLimitsRefused: a negative --max-encrypted-data-keys,
// --frame-length or --max-length is a usage error on every operation
// (it used to mean "not given", turning the data-key limit off), and
// --max-encrypted-data-keys takes the cli's range: 1 and more, 65536
// included.
func TestE2ENegativeLimitsRefused(t *testing.T) {
	dir, _ := setup(t)
	encArgs := args("encrypt", "-i", "in/a.txt", "-o", "enc", rawKey, "-S")
	decArgs := args("decrypt", "-i", "enc/a.txt.encrypted", "-o", "dec", rawKey, "-S")
	for _, tc := range []struct {
		base []string
		flag string
		val  string
		want string
	}{
		{encArgs, "--max-encrypted-data-keys", "-1", "must be 1 or more"},
		{decArgs, "--max-encrypted-data-keys", "-1", "must be 1 or more"},
		{encArgs, "--max-encrypted-data-keys", "0", "must be 1 or more"},
		{encArgs, "--frame-length", "-1", "must be 0 (non-framed) or more"},
		{decArgs, "--frame-length", "-1", "must be 0 (non-framed) or more"},
		{decArgs, "--max-length", "-1", "must be 1 or more"},
		{encArgs, "--max-length", "-1", "must be 1 or more"},
		{decArgs, "--max-length", "-7", "must be 1 or more"},
	} {
		for _, form := range [][]string{{tc.flag, tc.val}, {tc.flag + "=" + tc.val}} {
			r := encjob(t, dir, nil, append(append([]string(nil), tc.base...), form...)...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, tc.flag+": "+tc.val+": "+tc.want) {
				t.Errorf("%s %v: stderr %q, want %q", tc.base[0], form, r.stderr, tc.flag+": "+tc.val+": "+tc.want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "enc", "a.txt.encrypted")); err == nil {
		t.Fatal("a refused command line wrote an output")
	}
	wantCode(t, encjob(t, dir, nil, append(encArgs, "--max-encrypted-data-keys", "65536")...), 0)
	wantCode(t, encjob(t, dir, nil, append(decArgs, "--max-encrypted-data-keys", "65536")...), 0)
	if _, err := os.Stat(filepath.Join(dir, "dec", "a.txt.encrypted.decrypted")); err != nil {
		t.Fatal(err)
	}
}

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

// TestE2EOutputIsItsInput: an output that resolves to its own input file
// is skipped with "source and destination are the same" and the input is
// untouched, through every spelling (empty suffix into the input's
// directory, -o ., a symlinked directory, a symlink, a hard link); -o
// resolving to -i itself is refused as aws-encryption-cli refuses it.
func TestE2EOutputIsItsInput(t *testing.T) {
	dir, files := setup(t)
	want := files["b/c.bin"]
	os.Symlink("in", filepath.Join(dir, "inlink"))
	os.Symlink("in/b/c.bin", filepath.Join(dir, "clink"))
	if err := os.Link(filepath.Join(dir, "in", "b", "c.bin"), filepath.Join(dir, "chard")); err != nil {
		t.Fatal(err)
	}
	key := args("-w", "provider=raw-aes", "key-file="+filepath.Join(dir, "key"), "namespace=encjob", "name=test")
	for _, tc := range []struct {
		name, wd string
		argv     []string
	}{
		{"empty suffix into its directory", dir, args("encrypt", "-i", "in/b/c.bin", "-o", "in/b", "--suffix")},
		{"empty suffix, -o .", filepath.Join(dir, "in", "b"), args("encrypt", "-i", "c.bin", "-o", ".", "--suffix")},
		{"glob, empty suffix", dir, args("encrypt", "-i", "in/b/*.bin", "-o", "in/b", "--suffix")},
		{"symlinked directory", dir, args("encrypt", "-i", "in/b/c.bin", "-o", "inlink/b", "--suffix")},
		{"recursive, symlinked parent", dir, args("encrypt", "-i", "in/b", "-r", "-o", "inlink/b", "--suffix")},
		{"hard link as output file", dir, args("encrypt", "-i", "in/b/c.bin", "-o", "chard")},
		{"decrypt, hard link", dir, args("decrypt", "-i", "chard", "-o", "in/b/c.bin")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := encjob(t, tc.wd, nil, args(tc.argv, key, "-S")...)
			if tc.name == "recursive, symlinked parent" {
				// -o resolves to -i: refused as a whole, like the cli.
				wantCode(t, r, 2)
				if !strings.Contains(r.stderr, "destination and source cannot be the same") {
					t.Errorf("stderr %q", r.stderr)
				}
			} else {
				wantCode(t, r, 0)
				if !strings.Contains(r.stderr, "source and destination are the same") {
					t.Errorf("stderr %q", r.stderr)
				}
			}
			got, err := os.ReadFile(filepath.Join(dir, "in", "b", "c.bin"))
			if err != nil || string(got) != string(want) {
				t.Fatalf("the input changed (%d bytes, %v)", len(got), err)
			}
		})
	}
	for _, out := range []string{"clink", "./in/b/c.bin", filepath.Join(dir, "in/b/c.bin"), "inlink/b/c.bin"} {
		r := encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", out, key, "-S")...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, "destination and source cannot be the same") {
			t.Errorf("-o %s: stderr %q", out, r.stderr)
		}
	}
}

// TestE2EHelpForms: single-dash long forms are usage errors (pflag read
// "-help" as a request for help that printed nothing and exited 0), and
// "encjob -e --help" prints encrypt's help, not decrypt's.
func TestE2EHelpForms(t *testing.T) {
	dir := t.TempDir()
	for _, argv := range [][]string{
		{"-help"}, {"-version"}, {"encrypt", "-help"}, {"-e", "-help"}, {"decrypt", "-input", "x"},
		{"plan", "-help"}, {"apply", "-file", "x"}, {"encrypt", "-vh"}, {"plan", "--help=1"}, {"-e", "-recurs"},
	} {
		r := encjob(t, dir, nil, argv...)
		wantCode(t, r, 2)
		if !strings.Contains(r.stderr, "encjob: error: ") || r.stdout != "" {
			t.Errorf("%v: stdout %q stderr %q", argv, r.stdout, r.stderr)
		}
	}
	for argv, want := range map[string]string{
		"-e --help":                 "Usage: encjob encrypt ",
		"--encrypt -S -h":           "Usage: encjob encrypt ",
		"-d --help":                 "Usage: encjob decrypt ",
		"--decrypt-unsigned --help": "Usage: encjob decrypt ",
		"encrypt --help":            "Usage: encjob encrypt ",
		"-S --help":                 "Usage:\n  encjob validate",
	} {
		r := encjob(t, dir, nil, strings.Fields(argv)...)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, want) {
			t.Errorf("%s: stdout %.200q, want %q", argv, r.stdout, want)
		}
	}
}
