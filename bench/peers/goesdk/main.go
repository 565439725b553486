// Command goesdk is the benchmark peer for the official AWS Encryption SDK
// for Go: one process that loops over the files of a directory tree and
// encrypts (or decrypts) each one the way that SDK requires, whole in
// memory, with one client and one raw AES keyring built once.
//
//	goesdk -op encrypt|decrypt -key FILE -in DIR -out DIR [-suite 0x0578] [-limit N]
//
// It prints one JSON line: {"items":N,"bytes":B,"seconds":S,"vmhwm_kib":K}
// (bytes are plaintext bytes; seconds cover the loop only).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "goesdk:", err)
		os.Exit(1)
	}
}

func run() error {
	op := flag.String("op", "encrypt", "encrypt or decrypt")
	keyFile := flag.String("key", "", "raw AES-256 key file (32 bytes)")
	in := flag.String("in", "", "input directory (or file)")
	out := flag.String("out", "", "output directory")
	suite := flag.String("suite", "0x0578", "algorithm suite id")
	limit := flag.Int("limit", 0, "process at most this many files (0: all)")
	flag.Parse()
	ctx := context.Background()
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("reading key: %w", err)
	}
	m, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		return fmt.Errorf("material providers client: %w", err)
	}
	kr, err := m.CreateRawAesKeyring(ctx, mpltypes.CreateRawAesKeyringInput{
		KeyName: "bench", KeyNamespace: "encjob", WrappingAlg: mpltypes.AesWrappingAlgAlgAes256GcmIv12Tag16, WrappingKey: key})
	if err != nil {
		return fmt.Errorf("raw aes keyring: %w", err)
	}
	policy := mpltypes.ESDKCommitmentPolicyRequireEncryptRequireDecrypt
	client, err := esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{CommitmentPolicy: &policy})
	if err != nil {
		return fmt.Errorf("esdk client: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(*suite, "0x"), 16, 16)
	if err != nil {
		return fmt.Errorf("suite %q: %w", *suite, err)
	}
	suiteID := mpltypes.ESDKAlgorithmSuiteId(fmt.Sprintf("0x%04X", n))
	files, err := list(*in, *limit)
	if err != nil {
		return err
	}
	var items, plain int64
	start := time.Now()
	for _, rel := range files {
		src := filepath.Join(*in, rel)
		if rel == "." {
			src = *in
			rel = filepath.Base(*in)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		var res []byte
		if *op == "encrypt" {
			plain += int64(len(b))
			o, err := client.Encrypt(ctx, esdktypes.EncryptInput{Plaintext: b, Keyring: kr,
				EncryptionContext: map[string]string{"tenant": "acme"}, AlgorithmSuiteId: &suiteID})
			if err != nil {
				return fmt.Errorf("%s: encrypt: %w", src, err)
			}
			res = o.Ciphertext
		} else {
			o, err := client.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: b, Keyring: kr})
			if err != nil {
				return fmt.Errorf("%s: decrypt: %w", src, err)
			}
			res = o.Plaintext
			plain += int64(len(res))
		}
		dst := filepath.Join(*out, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, res, 0o644); err != nil {
			return err
		}
		items++
	}
	secs := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"items": items, "bytes": plain, "seconds": secs, "vmhwm_kib": vmhwm()})
}

// list returns the regular files under root (sorted, relative), or "." when
// root is a file.
func list(root string, limit int) ([]string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{"."}, nil
	}
	var out []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// vmhwm reads the peak resident set size (KiB) from /proc/self/status.
func vmhwm() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
