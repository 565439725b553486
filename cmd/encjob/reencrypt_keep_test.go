package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
)

// TestE2EReencryptKeepsSuiteAndFrameLength: re-encryption changes keys and
// context, not the format: the source's suite and frame length stay unless
// flags say otherwise; a suite the commitment policy forbids for encryption
// is replaced by the policy's default, and the metadata line says so.
func TestE2EReencryptKeepsSuiteAndFrameLength(t *testing.T) {
	dir, files := setup(t)
	os.WriteFile(filepath.Join(dir, "key2"), bytes.Repeat([]byte{7}, 32), 0o600)
	newKey := []string{"-w", "provider=raw-aes", "key-file=key2", "namespace=encjob", "name=new"}
	src := rawKey
	header := func(p string) *crypto.Header {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := crypto.ParseHeader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		name      string
		encFlags  []string
		reFlags   []string
		wantSuite uint16
		wantFrame uint32
		wantNote  string
	}{
		{"kept", []string{"--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "--frame-length", "1024"}, nil, 0x0478, 1024, ""},
		{"told", []string{"--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "--frame-length", "1024"},
			[]string{"--algorithm", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", "--frame-length", "2048"}, 0x0578, 2048, ""},
		{"upgraded", []string{"--commitment-policy", "forbid-encrypt-allow-decrypt", "--algorithm", "AES_256_GCM_IV12_TAG16_HKDF_SHA256", "--frame-length", "512"},
			[]string{"--commitment-policy", "require-encrypt-allow-decrypt"}, 0x0578, 512, "not allowed for encryption under commitment policy require-encrypt-allow-decrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, re := filepath.Join(dir, "enc-"+tc.name), filepath.Join(dir, "re-"+tc.name)
			os.Mkdir(enc, 0o755)
			os.Mkdir(re, 0o755)
			wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/b/c.bin", "-o", enc, src, "-S", tc.encFlags)...), 0)
			meta := filepath.Join(dir, "meta-"+tc.name+".jsonl")
			wantCode(t, encjob(t, dir, nil, args("reencrypt", "-i", filepath.Join(enc, "c.bin.encrypted"), "-o", re,
				"--source-wrapping-keys", src[1:], newKey, "--metadata-output", meta, tc.reFlags)...), 0)
			outs := listOutputs(re)
			if len(outs) != 1 {
				t.Fatalf("outputs %v", outs)
			}
			h := header(outs[0])
			if h.Suite.ID != tc.wantSuite || h.FrameLength != tc.wantFrame {
				t.Errorf("re-encrypted as %s/%d, want 0x%04x/%d", h.Suite.Hex(), h.FrameLength, tc.wantSuite, tc.wantFrame)
			}
			if string(h.EncryptedDataKeys[0].ProviderInfo[:3]) != "new" {
				t.Errorf("not under the new key: %q", h.EncryptedDataKeys[0].ProviderInfo)
			}
			rec := readMetadata(t, meta)[0]
			reason, _ := rec["reason"].(string)
			if (tc.wantNote == "") != (reason == "") || !strings.Contains(reason, tc.wantNote) {
				t.Errorf("metadata reason %q, want %q", reason, tc.wantNote)
			}
			dec := filepath.Join(dir, "dec-"+tc.name)
			os.Mkdir(dec, 0o755)
			wantCode(t, encjob(t, dir, nil, args("decrypt", "-i", outs[0], "-o", dec, newKey, "-S", "--commitment-policy", "require-encrypt-allow-decrypt")...), 0)
			got := listOutputs(dec)
			if len(got) != 1 {
				t.Fatalf("decrypted %v", got)
			}
			if b, _ := os.ReadFile(got[0]); !bytes.Equal(b, files["b/c.bin"]) {
				t.Error("content changed")
			}
		})
	}
}

// listOutputs lists a directory's files other than encjob's state directory.
func listOutputs(dir string) []string {
	var out []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != ".encjob-state" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
