package interop_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/interop"
)

// encjobKeyring builds encjob's keyring for keys: the only key's keyring,
// or a key group with the first key as generator.
func encjobKeyring(keys []interop.Key) (crypto.Keyring, error) {
	rings := make([]crypto.Keyring, len(keys))
	for i, k := range keys {
		switch k.Type {
		case "raw-aes":
			r, err := keyring.NewRawAES(k.Namespace, k.Name, k.Material)
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			rings[i] = r
		case "raw-rsa":
			pad, err := keyring.ParsePadding(k.Padding)
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			var priv *rsa.PrivateKey
			if k.PrivateKeyPEM != "" {
				if priv, err = k.RSAPrivateKey(); err != nil {
					return nil, fmt.Errorf("keys[%d]: %w", i, err)
				}
			}
			pub, err := k.RSAPublicKey()
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			r, err := keyring.NewRawRSA(k.Namespace, k.Name, priv, pub, pad)
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			rings[i] = r
		default:
			r, err := asymmetricKeyring(k) // asym_test.go
			if err != nil {
				return nil, fmt.Errorf("keys[%d]: %w", i, err)
			}
			rings[i] = r
		}
	}
	if len(rings) == 1 {
		return rings[0], nil
	}
	return keyring.NewMulti(rings[0], rings[1:]...)
}

func encryptOptions(c testCase) (crypto.EncryptOptions, error) {
	kr, err := encjobKeyring(c.EncKeys)
	if err != nil {
		return crypto.EncryptOptions{}, err
	}
	s := crypto.SuiteByID(c.Suite)
	if s == nil {
		return crypto.EncryptOptions{}, fmt.Errorf("encjob has no suite %s", c.suiteHex())
	}
	o := crypto.EncryptOptions{
		CMM:              crypto.NewDefaultCMM(kr),
		Suite:            s,
		Context:          crypto.EncryptionContext(c.Context),
		FrameLength:      c.Frame,
		CommitmentPolicy: crypto.RequireEncryptRequireDecrypt,
	}
	if !s.Committing {
		o.CommitmentPolicy = crypto.ForbidEncryptAllowDecrypt
	}
	if c.Frame == 0 {
		o.NonFramed = true
		o.PlaintextLength = int64(c.Size)
		o.KnownLength = true
	}
	return o, nil
}

func decryptOptions(c testCase) (crypto.DecryptOptions, error) {
	kr, err := encjobKeyring(c.DecKeys)
	if err != nil {
		return crypto.DecryptOptions{}, err
	}
	return crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr), CommitmentPolicy: crypto.RequireEncryptAllowDecrypt}, nil
}

func headerInfo(h *crypto.Header) msgInfo {
	if h == nil || h.Suite == nil {
		return msgInfo{FrameLength: -1}
	}
	return msgInfo{Suite: h.Suite.ID, Context: h.Context, FrameLength: int(h.FrameLength)}
}

// encjobHeader parses a header with crypto.ParseHeader (no keys).
func encjobHeader(msg []byte) (interop.Result, error) {
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		return interop.Result{}, err
	}
	r := interop.Result{
		Suite:       h.Suite.Hex(),
		Version:     h.Version,
		MessageID:   h.MessageID,
		FrameLength: int(h.FrameLength),
		ContentType: h.ContentType,
		Context:     h.Context,
		CommitKey:   h.CommitKey,
	}
	for _, k := range h.EncryptedDataKeys {
		r.EDKs = append(r.EDKs, interop.EDK{ProviderID: k.ProviderID, ProviderInfo: k.ProviderInfo, Ciphertext: k.Ciphertext})
	}
	return r, nil
}

// encjobStreaming uses the streaming API, writing plaintext in 7000-byte
// pieces (not a divisor of any frame length used) and reading it back
// through a small buffer.
var encjobStreaming = impl{
	name:            "encjob",
	writesNonFramed: true,
	header:          encjobHeader,
	encrypt: func(ctx context.Context, c testCase, pt []byte) ([]byte, error) {
		o, err := encryptOptions(c)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		e, err := crypto.NewEncryptor(ctx, &buf, o)
		if err != nil {
			return nil, err
		}
		for len(pt) > 0 {
			n := min(len(pt), 7000)
			if _, err := e.Write(pt[:n]); err != nil {
				e.Abort()
				return nil, err
			}
			pt = pt[n:]
		}
		if err := e.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	},
	decrypt: func(ctx context.Context, c testCase, msg []byte) ([]byte, msgInfo, error) {
		o, err := decryptOptions(c)
		if err != nil {
			return nil, msgInfo{}, err
		}
		d, err := crypto.NewDecryptor(ctx, bytes.NewReader(msg), o)
		if err != nil {
			return nil, msgInfo{}, err
		}
		var out bytes.Buffer
		if _, err := io.CopyBuffer(&out, struct{ io.Reader }{d}, make([]byte, 1000)); err != nil {
			return nil, msgInfo{}, err
		}
		if !d.Verified() {
			return nil, msgInfo{}, fmt.Errorf("decryptor reached EOF but Verified() is false")
		}
		return out.Bytes(), headerInfo(d.Header()), nil
	},
}

// encjobOneShot uses crypto.Encrypt and crypto.Decrypt.
var encjobOneShot = impl{
	name:            "encjob-oneshot",
	writesNonFramed: true,
	encrypt: func(ctx context.Context, c testCase, pt []byte) ([]byte, error) {
		o, err := encryptOptions(c)
		if err != nil {
			return nil, err
		}
		return crypto.Encrypt(ctx, pt, o)
	},
	decrypt: func(ctx context.Context, c testCase, msg []byte) ([]byte, msgInfo, error) {
		o, err := decryptOptions(c)
		if err != nil {
			return nil, msgInfo{}, err
		}
		pt, h, err := crypto.Decrypt(ctx, msg, o)
		return pt, headerInfo(h), err
	},
}

// TestEncjobJS: encjob (streaming API) against the AWS Encryption SDK for
// JavaScript, both ways.
func TestEncjobJS(t *testing.T) {
	t.Parallel()
	crossJS(t, encjobStreaming)
}

// TestEncjobGoESDK: encjob (one-shot API) against the AWS Encryption SDK
// for Go, both ways.
func TestEncjobGoESDK(t *testing.T) {
	t.Parallel()
	crossInProcess(t, encjobOneShot, goESDK)
}

// TestJSPeerCLI runs peer.js in its one-message mode (the batch mode is
// what the other tests use): JS encrypts a file, encjob decrypts it, and
// JS decrypts encjob's re-encryption of it.
func TestJSPeerCLI(t *testing.T) {
	t.Parallel()
	js := jsPeer(t)
	dir := t.TempDir()
	c := testCase{Name: "cli", Suite: 0x0346, Frame: 512, Size: 2000, Context: contexts[3].ec,
		EncKeys: []interop.Key{keys(t).aes192}, DecKeys: []interop.Key{keys(t).aes192}}
	spec, err := json.Marshal(map[string][]interop.Key{"keys": c.EncKeys})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := json.Marshal(c.Context)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, ptFile, ctFile := filepath.Join(dir, "keys.json"), filepath.Join(dir, "pt"), filepath.Join(dir, "ct")
	for name, b := range map[string][]byte{keyFile: spec, ptFile: c.plaintext()} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(js.Node, append([]string{filepath.Join(js.Dir, "peer.js")}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("peer.js %s: %v: %s", args[0], err, out)
		}
	}
	run("encrypt", "--in", ptFile, "--out", ctFile, "--keys", keyFile, "--suite", c.suiteHex(),
		"--frame", strconv.Itoa(c.Frame), "--context", string(ec))
	msg, err := os.ReadFile(ctFile)
	if err != nil {
		t.Fatal(err)
	}
	pt, info, err := encjobStreaming.decrypt(context.Background(), c, msg)
	if err != nil {
		t.Fatalf("encjob decrypt of the js message: %v", err)
	}
	if err := check(c, pt, info); err != nil {
		t.Fatal(err)
	}
	msg, err = encjobStreaming.encrypt(context.Background(), c, pt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctFile, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back")
	run("decrypt", "--in", ctFile, "--out", back, "--keys", keyFile)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if err := comparePlaintext(got, c.plaintext()); err != nil {
		t.Fatalf("js decrypt of the encjob message: %v", err)
	}
}
