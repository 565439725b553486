package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// encjobKMS runs the binary against the emulator: the KMS endpoint and
// static credentials come from the environment, as for real AWS.
func encjobKMS(t *testing.T, srv *kmsemutest.Server, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "AWS_ENDPOINT_URL_KMS="+srv.URL, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running encjob: %v", err)
	}
	return result{so.String(), se.String(), code}
}

// TestE2EDecryptCaching: 200 messages encrypted under one cached data key
// decrypt with one KMS Decrypt under --caching (aws-encryption-cli caches
// decryption materials too), and with 200 without it; max_age bounds the
// reuse as on encrypt.
func TestE2EDecryptCaching(t *testing.T) {
	srv := kmsemutest.Start(t, "account: \"111122223333\"\nregion: us-east-1\nkeys:\n  - id: 11111111-1111-4111-8111-111111111111\n    aliases: [alias/app]\n")
	key := srv.KeyARN(t, "alias/app", "us-east-1")
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range 200 {
		name := fmt.Sprintf("f%03d", i)
		files[name] = []byte(fmt.Sprintf("message %d", i))
		p := filepath.Join(dir, "in", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"enc", "dec1", "dec2", "dec3"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	wantCode(t, encjobKMS(t, srv, dir, "-e", "-i", "in", "-r", "-o", "enc", "-w", "key="+key, "-S",
		"--caching", "capacity=10", "max_age=300", "max_messages_encrypted=1000"), 0)
	if n := srv.Emu.CallCount("GenerateDataKey"); n != 1 {
		t.Fatalf("encrypt: %d GenerateDataKey calls, want 1 (one cached data key)", n)
	}
	for _, tc := range []struct {
		out     string
		caching []string
		want    int64
	}{
		{"dec1", []string{"--caching", "capacity=10", "max_age=300"}, 1},
		{"dec2", nil, 200},
		// max_messages_encrypted bounds encryption only, as in the ESDKs.
		{"dec3", []string{"--caching", "capacity=1", "max_age=300", "max_messages_encrypted=1"}, 1},
	} {
		srv.Emu.ResetCalls()
		a := append([]string{"-d", "-i", "enc", "-r", "-o", tc.out, "-w", "key=" + key, "-S", "--concurrency", "4"}, tc.caching...)
		r := encjobKMS(t, srv, dir, a...)
		wantCode(t, r, 0)
		if n := srv.Emu.CallCount("Decrypt"); n != tc.want {
			t.Errorf("decrypt %v: %d KMS Decrypt calls, want %d\nstderr: %s", tc.caching, n, tc.want, r.stderr)
		}
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(dir, tc.out, name+".encrypted.decrypted"))
			if err != nil {
				got, err = os.ReadFile(filepath.Join(dir, tc.out, name+".encrypted"))
			}
			if err != nil || !bytes.Equal(got, want) {
				entries, _ := os.ReadDir(filepath.Join(dir, tc.out))
				t.Fatalf("%s/%s: %v (%d entries)", tc.out, name, err, len(entries))
			}
		}
	}
}
