package kmsblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// The tests run the unmodified aws-sdk-go-v2 KMS client against kmsemu.

const seedYAML = `
account: "111122223333"
region: us-east-1
keys:
  - id: 11111111-1111-4111-8111-111111111111
    aliases: [alias/a]
  - id: 22222222-2222-4222-8222-222222222222
    aliases: [alias/b]
`

const (
	aARN = "arn:aws:kms:us-east-1:111122223333:key/11111111-1111-4111-8111-111111111111"
	bARN = "arn:aws:kms:us-east-1:111122223333:key/22222222-2222-4222-8222-222222222222"
)

var creds = kmsemutest.Credentials

type env struct {
	emu *kmsemu.Emulator
	url string
	api kmsblob.API
}

// newEnv clears ambient AWS_* variables and starts the emulator.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := kmsemutest.Start(t, seedYAML)
	return &env{emu: srv.Emu, url: srv.URL, api: srv.Client("us-east-1")}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ec := map[string]string{"app": "billing", "env": "prod"}
	for _, n := range []int{1, 100, kmsblob.MaxPlaintext - 1, kmsblob.MaxPlaintext} {
		for _, key := range []string{aARN, "alias/a", "11111111-1111-4111-8111-111111111111"} {
			pt := random(n)
			blob, arn, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: key, Plaintext: pt, Context: ec, GrantTokens: []string{"tok"}})
			if err != nil {
				t.Fatalf("encrypt %d bytes under %s: %v", n, key, err)
			}
			if arn != aARN {
				t.Errorf("encrypt under %s: key %s, want %s", key, arn, aARN)
			}
			got, arn, err := kmsblob.Decrypt(ctx, e.api, kmsblob.DecryptInput{Blob: blob, Context: ec})
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			if !bytes.Equal(got, pt) || arn != aARN {
				t.Errorf("%d bytes under %s: round trip differs (key %s)", n, key, arn)
			}
		}
	}
}

func TestEncryptLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, _, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: aARN, Plaintext: random(kmsblob.MaxPlaintext + 1)})
	if !errors.Is(err, kmsblob.ErrPlaintextTooLarge) {
		t.Fatalf("4097 bytes: %v, want ErrPlaintextTooLarge", err)
	}
	if !strings.Contains(err.Error(), "4097") || !strings.Contains(err.Error(), "4096") {
		t.Errorf("error does not give the sizes: %v", err)
	}
	if _, _, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: aARN}); err == nil {
		t.Error("empty plaintext: no error")
	}
	if n := e.emu.CallCount("Encrypt"); n != 0 {
		t.Errorf("refused plaintexts reached KMS: %d Encrypt calls", n)
	}
	// At the limit KMS accepts it.
	if _, _, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: aARN, Plaintext: random(kmsblob.MaxPlaintext)}); err != nil {
		t.Fatalf("4096 bytes: %v", err)
	}
}

func TestDecryptErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	blob, _, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: aARN, Plaintext: []byte("x"), Context: map[string]string{"env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		in   kmsblob.DecryptInput
		code string
	}{
		{"wrong context", kmsblob.DecryptInput{Blob: blob, Context: map[string]string{"env": "dev"}}, "InvalidCiphertextException"},
		{"no context", kmsblob.DecryptInput{Blob: blob}, "InvalidCiphertextException"},
		{"other key", kmsblob.DecryptInput{Blob: blob, KeyID: bARN, Context: map[string]string{"env": "prod"}}, "IncorrectKeyException"},
	} {
		_, _, err := kmsblob.Decrypt(ctx, e.api, c.in)
		var ke *kmsblob.Error
		if !errors.As(err, &ke) || ke.Code != c.code || ke.Op != "Decrypt" || ke.Retryable() {
			t.Errorf("%s: %v (%+v), want %s", c.name, err, ke, c.code)
		}
	}
	if _, _, err := kmsblob.Decrypt(ctx, e.api, kmsblob.DecryptInput{Blob: random(kmsblob.MaxBlob + 1)}); err == nil {
		t.Error("oversized blob: no error")
	}
	e.emu.SetFaults(kmsemu.Faults{ThrottleRate: 1})
	_, _, err = kmsblob.Decrypt(ctx, e.api, kmsblob.DecryptInput{Blob: blob, Context: map[string]string{"env": "prod"}})
	e.emu.SetFaults(kmsemu.Faults{})
	var ke *kmsblob.Error
	if !errors.As(err, &ke) || !ke.Retryable() {
		t.Errorf("throttled: %v, want a retryable error", err)
	}
}

// ReEncrypt moves a blob to another key and context in one call: no
// Decrypt or Encrypt reaches KMS, so the plaintext never leaves it.
func TestReEncrypt(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pt := random(kmsblob.MaxPlaintext)
	src := map[string]string{"env": "dev"}
	dst := map[string]string{"env": "prod", "owner": "ops"}
	blob, _, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: aARN, Plaintext: pt, Context: src})
	if err != nil {
		t.Fatal(err)
	}
	e.emu.ResetCalls()
	out, err := kmsblob.ReEncrypt(ctx, e.api, kmsblob.ReEncryptInput{Blob: blob, SourceKeyID: aARN, SourceContext: src,
		DestinationKeyID: "alias/b", DestinationContext: dst, GrantTokens: []string{"t1", "t2"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.SourceKeyARN != aARN || out.KeyARN != bARN || bytes.Equal(out.Blob, blob) {
		t.Errorf("re-encrypt: source %s dest %s", out.SourceKeyARN, out.KeyARN)
	}
	calls := e.emu.Calls()
	if calls["ReEncrypt"] != 1 || calls["Decrypt"] != 0 || calls["Encrypt"] != 0 {
		t.Errorf("re-encrypt calls %v, want exactly one ReEncrypt", calls)
	}
	got, arn, err := kmsblob.Decrypt(ctx, e.api, kmsblob.DecryptInput{Blob: out.Blob, Context: dst})
	if err != nil || !bytes.Equal(got, pt) || arn != bARN {
		t.Fatalf("decrypting the re-encrypted blob: %v (key %s)", err, arn)
	}
	if _, _, err := kmsblob.Decrypt(ctx, e.api, kmsblob.DecryptInput{Blob: out.Blob, Context: src}); err == nil {
		t.Error("the new blob decrypts under the old context")
	}

	// The wrong source key or context is refused by KMS.
	_, err = kmsblob.ReEncrypt(ctx, e.api, kmsblob.ReEncryptInput{Blob: blob, SourceKeyID: bARN, SourceContext: src, DestinationKeyID: bARN})
	var ke *kmsblob.Error
	if !errors.As(err, &ke) || ke.Code != "IncorrectKeyException" || !strings.Contains(err.Error(), bARN) {
		t.Errorf("wrong source key: %v", err)
	}
	_, err = kmsblob.ReEncrypt(ctx, e.api, kmsblob.ReEncryptInput{Blob: blob, DestinationKeyID: bARN})
	if !errors.As(err, &ke) || ke.Code != "InvalidCiphertextException" {
		t.Errorf("missing source context: %v", err)
	}
	if _, err := kmsblob.ReEncrypt(ctx, e.api, kmsblob.ReEncryptInput{Blob: blob}); err == nil {
		t.Error("no destination key: no error")
	}
	if _, err := kmsblob.ReEncrypt(ctx, e.api, kmsblob.ReEncryptInput{Blob: blob, DestinationKeyID: bARN, GrantTokens: make([]string, 11)}); err == nil {
		t.Error("11 grant tokens: no error")
	}
}

func TestReadWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	blob, _, err := kmsblob.Encrypt(ctx, e.api, kmsblob.EncryptInput{KeyID: aARN, Plaintext: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []kmsblob.Encoding{kmsblob.Binary, kmsblob.Base64} {
		var buf bytes.Buffer
		if err := kmsblob.Write(&buf, blob, enc); err != nil {
			t.Fatal(err)
		}
		back, err := kmsblob.Read(&buf, enc)
		if err != nil || !bytes.Equal(back, blob) {
			t.Errorf("%s: round trip: %v", enc, err)
		}
	}
	// Wrapped base64 with surrounding whitespace, as tools write it.
	var b64 bytes.Buffer
	kmsblob.Write(&b64, blob, kmsblob.Base64)
	s := b64.String()
	wrapped := "  " + s[:10] + "\n" + s[10:20] + "\r\n" + s[20:]
	back, err := kmsblob.Read(strings.NewReader(wrapped), kmsblob.Base64)
	if err != nil || !bytes.Equal(back, blob) {
		t.Errorf("wrapped base64: %v", err)
	}
	pt, _, err := kmsblob.Decrypt(ctx, e.api, kmsblob.DecryptInput{Blob: back})
	if err != nil || string(pt) != "hello" {
		t.Errorf("decrypting the read blob: %v", err)
	}
	for name, c := range map[string]struct {
		in  string
		enc kmsblob.Encoding
	}{
		"empty":      {"", kmsblob.Binary},
		"too large":  {strings.Repeat("x", kmsblob.MaxBlob+1), kmsblob.Binary},
		"not base64": {"not base64!", kmsblob.Base64},
		"encoding":   {"x", "hex"},
	} {
		if _, err := kmsblob.Read(strings.NewReader(c.in), c.enc); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFromProvider(t *testing.T) {
	e := newEnv(t)
	api, err := kmsblob.FromProvider(context.Background(), &awskms.DefaultProvider{Endpoint: e.url, Credentials: creds}, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kmsblob.Encrypt(context.Background(), api, kmsblob.EncryptInput{KeyID: "alias/a", Plaintext: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

// liar is a KMS that answers with keys other than the requested ones, as
// local-kms does for ReEncrypt's SourceKeyId.
type liar struct{ key string }

func (l liar) Encrypt(context.Context, *kms.EncryptInput, ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	return &kms.EncryptOutput{CiphertextBlob: []byte("blob"), KeyId: &l.key}, nil
}

func (l liar) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return &kms.DecryptOutput{Plaintext: []byte("secret"), KeyId: &l.key}, nil
}

func (l liar) ReEncrypt(context.Context, *kms.ReEncryptInput, ...func(*kms.Options)) (*kms.ReEncryptOutput, error) {
	return &kms.ReEncryptOutput{CiphertextBlob: []byte("blob2"), KeyId: &l.key, SourceKeyId: &l.key}, nil
}

// TestAnswerKeyIsBinding: a requested key ARN must be the key KMS answers
// with; otherwise nothing is returned (no plaintext, no re-encrypted blob).
func TestAnswerKeyIsBinding(t *testing.T) {
	ctx := context.Background()
	api := liar{key: bARN}
	pt, _, err := kmsblob.Decrypt(ctx, api, kmsblob.DecryptInput{Blob: []byte("blob"), KeyID: aARN})
	if err == nil || pt != nil || !strings.Contains(err.Error(), "not the requested "+aARN) {
		t.Fatalf("Decrypt answered by another key: %q, %v", pt, err)
	}
	out, err := kmsblob.ReEncrypt(ctx, api, kmsblob.ReEncryptInput{Blob: []byte("blob"), SourceKeyID: aARN, DestinationKeyID: bARN})
	if err == nil || out != nil || !strings.Contains(err.Error(), "source key") {
		t.Fatalf("ReEncrypt from another source key: %+v, %v", out, err)
	}
	out, err = kmsblob.ReEncrypt(ctx, liar{key: aARN}, kmsblob.ReEncryptInput{Blob: []byte("blob"), SourceKeyID: aARN, DestinationKeyID: bARN})
	if err == nil || out != nil || !strings.Contains(err.Error(), "destination key") {
		t.Fatalf("ReEncrypt to another destination key: %+v, %v", out, err)
	}
	// Aliases and key ids cannot be compared with an ARN: KMS decides.
	if _, _, err := kmsblob.Decrypt(ctx, api, kmsblob.DecryptInput{Blob: []byte("blob"), KeyID: "alias/a"}); err != nil {
		t.Fatalf("Decrypt by alias: %v", err)
	}
	if _, err := kmsblob.ReEncrypt(ctx, api, kmsblob.ReEncryptInput{Blob: []byte("blob"), SourceKeyID: bARN, DestinationKeyID: bARN}); err != nil {
		t.Fatalf("honest ReEncrypt: %v", err)
	}
}
