package kmsconformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/caching"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/kmsblob"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// A conformance case runs against every target. It asserts what AWS KMS
// does (per the KMS API reference); where a server is known to answer
// differently, the case says so in deviations and the assertion for that
// server is relaxed to what encjob relies on, with the deviation logged.
type conformanceCase struct {
	name string
	run  func(t *testing.T, c *caseEnv)
}

type caseEnv struct {
	*Target
	ctx context.Context
}

// deviates reports (and logs) a documented difference of this target from
// AWS KMS.
func (c *caseEnv) deviates(t *testing.T, what string) bool {
	t.Helper()
	reason, ok := knownDeviations[c.Name][what]
	if ok {
		t.Logf("%s deviates from AWS KMS (%s): %s", c.Name, what, reason)
	}
	return ok
}

// knownDeviations lists where a server (not encjob) answers differently
// from AWS KMS. encjob depends on none of them: where a server accepts what
// AWS refuses, encjob checks the answer itself (see the kmsblob checks).
var knownDeviations = map[string]map[string]string{
	"local-kms": {
		"Decrypt KeyId": "Decrypt with a KeyId other than the ciphertext's key tries that key and answers " +
			"InvalidCiphertextException; AWS answers IncorrectKeyException",
		"ReEncrypt SourceKeyId": "ReEncrypt ignores SourceKeyId and re-encrypts a ciphertext of another key; " +
			"AWS answers IncorrectKeyException (kmsblob now checks the answer's SourceKeyId itself)",
		"GrantTokens": "accepts more than 10 grant tokens; AWS answers ValidationException (at most 10 items; " +
			"kmsblob and the awskms keyring check the count before calling)",
	},
}

var conformanceCases = []conformanceCase{
	{"keyring/strict-group", testStrictGroup},
	{"keyring/identifier-forms", testIdentifierForms},
	{"keyring/discovery", testDiscovery},
	{"keyring/wrong-context", testKeyringWrongContext},
	{"keyring/disabled-key", testDisabledKey},
	{"keyring/unknown-alias", testUnknownAlias},
	{"keyring/pending-deletion", testPendingDeletion},
	{"api/request-limits", testRequestLimits},
	{"blob/round-trip", testBlobRoundTrip},
	{"blob/limits", testBlobLimits},
	{"blob/wrong-context", testBlobWrongContext},
	{"blob/incorrect-key", testBlobIncorrectKey},
	{"blob/reencrypt", testBlobReEncrypt},
	{"reencrypt/messages-between-keys", testReencryptMessages},
	{"caching/encrypt", testCachingEncrypt},
	{"caching/decrypt", testCachingDecrypt},
}

// TestConformance runs every case against every target.
func TestConformance(t *testing.T) {
	for _, tg := range Targets(t) {
		t.Run(tg.Name, func(t *testing.T) {
			for _, tc := range conformanceCases {
				t.Run(tc.name, func(t *testing.T) {
					tg.ResetCalls()
					tc.run(t, &caseEnv{Target: tg, ctx: context.Background()})
				})
			}
		})
	}
}

// --- helpers

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// apiCode is the KMS error code of err ("" when none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func (c *caseEnv) keyring(t *testing.T, cfg awskms.Config) *awskms.Keyring {
	t.Helper()
	cfg.Clients = c.Provider()
	k, err := awskms.New(c.ctx, cfg)
	if err != nil {
		t.Fatalf("keyring %v: %v", cfg.Keys, err)
	}
	return k
}

func (c *caseEnv) strict(t *testing.T, keys ...string) *awskms.Keyring {
	t.Helper()
	return c.keyring(t, awskms.Config{Keys: keys, Region: Region})
}

var msgContext = crypto.EncryptionContext{"tenant": "acme", "purpose": "conformance"}

func encryptMsg(t *testing.T, ctx context.Context, cmm crypto.MaterialsManager, pt []byte) []byte {
	t.Helper()
	msg, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: cmm, Context: msgContext})
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	return msg
}

func decryptMsg(ctx context.Context, cmm crypto.MaterialsManager, msg []byte) ([]byte, error) {
	pt, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: cmm})
	return pt, err
}

// wantCalls checks the target's call counts for ops (others are not
// checked) and resets them.
func (c *caseEnv) wantCalls(t *testing.T, what string, want map[string]int64) {
	t.Helper()
	for op, n := range want {
		if got := c.Calls(op); got != n {
			t.Errorf("%s: %d %s calls, want %d", what, got, op, n)
		}
	}
	if r := c.Retries(); len(r) > 0 {
		t.Logf("%s: the SDK retried %v (not counted as calls)", what, r)
	}
	c.ResetCalls()
}

// --- keyring cases

// testStrictGroup: a two-key group (alias + ARN) makes one GenerateDataKey
// and one Encrypt per message, records the key ARNs KMS returned, and each
// key alone decrypts with one Decrypt call.
func testStrictGroup(t *testing.T, c *caseEnv) {
	a, b := c.NewKey(t, 1), c.NewKey(t, 0)
	c.ResetCalls()
	k := c.strict(t, a.Aliases[0], b.ARN)
	c.wantCalls(t, "resolve", map[string]int64{"DescribeKey": 1}) // the alias only; an ARN needs no call
	pt := random(3000)
	msg := encryptMsg(t, c.ctx, crypto.NewDefaultCMM(k), pt)
	c.wantCalls(t, "encrypt", map[string]int64{"GenerateDataKey": 1, "Encrypt": 1, "Decrypt": 0})
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.EncryptedDataKeys) != 2 {
		t.Fatalf("%d EDKs, want 2", len(h.EncryptedDataKeys))
	}
	for i, want := range []string{a.ARN, b.ARN} {
		edk := h.EncryptedDataKeys[i]
		if edk.ProviderID != "aws-kms" || string(edk.ProviderInfo) != want {
			t.Errorf("EDK %d: %s %s, want aws-kms %s", i, edk.ProviderID, edk.ProviderInfo, want)
		}
	}
	for _, key := range []Key{a, b} {
		got, dh, err := crypto.Decrypt(c.ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(c.strict(t, key.ARN))})
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("decrypt with %s alone: %v", key.ARN, err)
		}
		if dh.DecryptedWith != key.ARN {
			t.Errorf("decrypted with %q, want %s", dh.DecryptedWith, key.ARN)
		}
		c.wantCalls(t, "decrypt with "+key.ARN, map[string]int64{"Decrypt": 1})
	}
	// A keyring of an unrelated key makes no call at all.
	other := c.NewKey(t, 0)
	c.ResetCalls()
	if _, err := decryptMsg(c.ctx, crypto.NewDefaultCMM(c.strict(t, other.ARN)), msg); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("decrypt with an unrelated key: %v, want ErrNoMatchingKey", err)
	}
	c.wantCalls(t, "unrelated key", map[string]int64{"Decrypt": 0})
}

// testIdentifierForms: alias name, alias ARN, key id and key ARN all
// resolve to the key ARN, and a keyring of any of them decrypts.
func testIdentifierForms(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 2)
	msg := encryptMsg(t, c.ctx, crypto.NewDefaultCMM(c.strict(t, a.Aliases[1])), []byte("forms"))
	for _, id := range []string{a.Aliases[0], a.AliasARN(0), a.Aliases[1], a.ID, a.ARN} {
		k := c.strict(t, id)
		if r := k.Resolved(); len(r) != 1 || r[0].ARN != a.ARN {
			t.Errorf("%s resolved to %v, want %s", id, r, a.ARN)
		}
		if got, err := decryptMsg(c.ctx, crypto.NewDefaultCMM(k), msg); err != nil || string(got) != "forms" {
			t.Errorf("decrypt with %s: %v", id, err)
		}
	}
}

// testDiscovery: a discovery keyring decrypts with the key the message
// names; a filter of the key's account allows it, a filter of another
// account refuses it before any KMS call.
func testDiscovery(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	pt := random(100)
	msg := encryptMsg(t, c.ctx, crypto.NewDefaultCMM(c.strict(t, a.ARN)), pt)
	c.ResetCalls()
	for _, f := range []*awskms.DiscoveryFilter{nil, {Accounts: []string{"999988887777", a.Account()}, Partition: "aws"}} {
		k := c.keyring(t, awskms.Config{Discovery: true, DiscoveryFilter: f, Region: Region})
		got, err := decryptMsg(c.ctx, crypto.NewDefaultCMM(k), msg)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("discovery (filter %+v): %v", f, err)
		}
		c.wantCalls(t, fmt.Sprintf("discovery filter %+v", f), map[string]int64{"Decrypt": 1})
	}
	for _, f := range []*awskms.DiscoveryFilter{{Accounts: []string{"999988887777"}, Partition: "aws"}, {Accounts: []string{a.Account()}, Partition: "aws-cn"}} {
		k := c.keyring(t, awskms.Config{Discovery: true, DiscoveryFilter: f, Region: Region})
		if _, err := decryptMsg(c.ctx, crypto.NewDefaultCMM(k), msg); !errors.Is(err, crypto.ErrNoMatchingKey) {
			t.Fatalf("filter %+v: %v, want ErrNoMatchingKey", f, err)
		}
		c.wantCalls(t, fmt.Sprintf("filter %+v", f), map[string]int64{"Decrypt": 0})
	}
}

// testKeyringWrongContext: KMS binds the encryption context to the data
// key: another context is InvalidCiphertextException.
func testKeyringWrongContext(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	k := c.strict(t, a.ARN)
	suite := crypto.SuiteByID(0x0478)
	m := &crypto.EncryptionMaterials{Suite: suite, Context: msgContext}
	if err := k.OnEncrypt(c.ctx, m); err != nil {
		t.Fatal(err)
	}
	for _, ec := range []crypto.EncryptionContext{{"tenant": "other", "purpose": "conformance"}, nil} {
		dm := &crypto.DecryptionMaterials{Suite: suite, Context: ec}
		err := k.OnDecrypt(c.ctx, dm, m.EncryptedDataKeys)
		var ke *awskms.KeyError
		if !errors.As(err, &ke) || ke.Kind != awskms.KindInvalidCiphertext || dm.DataKey != nil {
			t.Fatalf("context %v: %v, want InvalidCiphertextException", ec, err)
		}
	}
	dm := &crypto.DecryptionMaterials{Suite: suite, Context: msgContext.Clone()}
	if err := k.OnDecrypt(c.ctx, dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, m.DataKey) {
		t.Fatalf("right context: %v", err)
	}
}

// testDisabledKey: a disabled key neither encrypts nor decrypts
// (DisabledException), and the error names the key.
func testDisabledKey(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	k := c.strict(t, a.ARN)
	msg := encryptMsg(t, c.ctx, crypto.NewDefaultCMM(k), []byte("x"))
	c.DisableKey(t, a)
	_, err := crypto.Encrypt(c.ctx, []byte("x"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(k)})
	var ke *awskms.KeyError
	if !errors.As(err, &ke) || ke.Kind != awskms.KindDisabled || ke.Key != a.ARN {
		t.Fatalf("encrypt under a disabled key: %v, want DisabledException for %s", err, a.ARN)
	}
	_, err = decryptMsg(c.ctx, crypto.NewDefaultCMM(k), msg)
	if !errors.As(err, &ke) || ke.Kind != awskms.KindDisabled {
		t.Fatalf("decrypt with a disabled key: %v, want DisabledException", err)
	}
}

// testUnknownAlias: an alias that names no key fails keyring construction
// with NotFoundException.
func testUnknownAlias(t *testing.T, c *caseEnv) {
	_, err := awskms.New(c.ctx, awskms.Config{Keys: []string{"alias/encjob-no-such-alias"}, Region: Region, Clients: c.Provider()})
	var ke *awskms.KeyError
	if !errors.As(err, &ke) || ke.Kind != awskms.KindNotFound || ke.Op != "DescribeKey" {
		t.Fatalf("unknown alias: %v, want NotFoundException from DescribeKey", err)
	}
}

// testPendingDeletion: a key scheduled for deletion is
// KMSInvalidStateException for both directions.
func testPendingDeletion(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	k := c.strict(t, a.ARN)
	msg := encryptMsg(t, c.ctx, crypto.NewDefaultCMM(k), []byte("x"))
	if _, err := c.Client().ScheduleKeyDeletion(c.ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(a.ID), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	var ke *awskms.KeyError
	if _, err := crypto.Encrypt(c.ctx, []byte("x"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(k)}); !errors.As(err, &ke) || ke.Kind != awskms.KindInvalidState {
		t.Fatalf("encrypt: %v, want KMSInvalidStateException", err)
	}
	if _, err := decryptMsg(c.ctx, crypto.NewDefaultCMM(k), msg); !errors.As(err, &ke) || ke.Kind != awskms.KindInvalidState {
		t.Fatalf("decrypt: %v, want KMSInvalidStateException", err)
	}
}

// testRequestLimits: the request-member limits encjob mirrors on its side
// (kmsblob.MaxGrantTokens, GenerateDataKey's NumberOfBytes 1..1024) are the
// server's too.
func testRequestLimits(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	api := c.Client()
	tokens := make([]string, kmsblob.MaxGrantTokens+1)
	for i := range tokens {
		tokens[i] = fmt.Sprint("token", i)
	}
	_, err := api.Encrypt(c.ctx, &kms.EncryptInput{KeyId: aws.String(a.ARN), Plaintext: []byte("x"), GrantTokens: tokens})
	if apiCode(err) != "ValidationException" && !c.deviates(t, "GrantTokens") {
		t.Errorf("Encrypt with %d grant tokens: %v, want ValidationException", len(tokens), err)
	}
	if _, err := awskms.New(c.ctx, awskms.Config{Keys: []string{a.ARN}, GrantTokens: tokens, Clients: c.Provider()}); err == nil {
		t.Errorf("awskms.New with %d grant tokens succeeded", len(tokens))
	}
	for _, n := range []int32{0, 1025} {
		_, err := api.GenerateDataKey(c.ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(a.ARN), NumberOfBytes: aws.Int32(n)})
		if apiCode(err) != "ValidationException" {
			t.Errorf("GenerateDataKey of %d bytes: %v, want ValidationException", n, err)
		}
	}
	out, err := api.GenerateDataKey(c.ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(a.ARN), NumberOfBytes: aws.Int32(1024)})
	if err != nil || len(out.Plaintext) != 1024 {
		t.Errorf("GenerateDataKey of 1024 bytes: %v", err)
	}
}

// --- KMS blob cases

var blobContext = map[string]string{"app": "billing", "env": "prod"}

func testBlobRoundTrip(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 1)
	api := c.Client()
	for _, n := range []int{1, 100, kmsblob.MaxPlaintext} {
		for _, id := range []string{a.ARN, a.Aliases[0], a.AliasARN(0), a.ID} {
			pt := random(n)
			blob, arn, err := kmsblob.Encrypt(c.ctx, api, kmsblob.EncryptInput{KeyID: id, Plaintext: pt, Context: blobContext})
			if err != nil || arn != a.ARN {
				t.Fatalf("encrypt %d bytes under %s: key %s, %v", n, id, arn, err)
			}
			if len(blob) > kmsblob.MaxBlob {
				t.Fatalf("blob of %d bytes", len(blob))
			}
			// Without a KeyId (a symmetric blob names its key) and with it.
			for _, keyID := range []string{"", id} {
				got, arn, err := kmsblob.Decrypt(c.ctx, api, kmsblob.DecryptInput{Blob: blob, KeyID: keyID, Context: blobContext})
				if err != nil || !bytes.Equal(got, pt) || arn != a.ARN {
					t.Fatalf("decrypt (KeyId %q): key %s, %v", keyID, arn, err)
				}
			}
		}
	}
	c.wantCalls(t, "round trips", map[string]int64{"Encrypt": 12, "Decrypt": 24})
}

// testBlobLimits: the server itself refuses more than 4096 bytes of
// plaintext and empty plaintext with ValidationException (kmsblob checks
// first; these requests bypass it).
func testBlobLimits(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	api := c.Client()
	for _, n := range []int{kmsblob.MaxPlaintext + 1, 0} {
		_, err := api.Encrypt(c.ctx, &kms.EncryptInput{KeyId: aws.String(a.ARN), Plaintext: make([]byte, n)})
		if apiCode(err) != "ValidationException" {
			t.Errorf("Encrypt %d bytes: %v, want ValidationException", n, err)
		}
	}
	_, err := api.Decrypt(c.ctx, &kms.DecryptInput{CiphertextBlob: make([]byte, kmsblob.MaxBlob+1)})
	if apiCode(err) != "ValidationException" {
		t.Errorf("Decrypt of a %d-byte blob: %v, want ValidationException", kmsblob.MaxBlob+1, err)
	}
	// kmsblob refuses both before calling KMS.
	c.ResetCalls()
	if _, _, err := kmsblob.Encrypt(c.ctx, api, kmsblob.EncryptInput{KeyID: a.ARN, Plaintext: make([]byte, kmsblob.MaxPlaintext+1)}); !errors.Is(err, kmsblob.ErrPlaintextTooLarge) {
		t.Errorf("kmsblob.Encrypt 4097 bytes: %v", err)
	}
	c.wantCalls(t, "refused locally", map[string]int64{"Encrypt": 0})
}

func testBlobWrongContext(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	api := c.Client()
	blob, _, err := kmsblob.Encrypt(c.ctx, api, kmsblob.EncryptInput{KeyID: a.ARN, Plaintext: []byte("secret"), Context: blobContext})
	if err != nil {
		t.Fatal(err)
	}
	for _, ec := range []map[string]string{nil, {"app": "billing"}, {"app": "billing", "env": "dev"}} {
		_, _, err := kmsblob.Decrypt(c.ctx, api, kmsblob.DecryptInput{Blob: blob, Context: ec})
		var be *kmsblob.Error
		if !errors.As(err, &be) || be.Code != "InvalidCiphertextException" || be.Retryable() {
			t.Errorf("context %v: %v, want InvalidCiphertextException", ec, err)
		}
	}
	// A corrupted blob is InvalidCiphertextException too.
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	if _, _, err := kmsblob.Decrypt(c.ctx, api, kmsblob.DecryptInput{Blob: bad, Context: blobContext}); apiCode(err) != "InvalidCiphertextException" {
		t.Errorf("corrupted blob: %v, want InvalidCiphertextException", err)
	}
}

// testBlobIncorrectKey: a KeyId (Decrypt) or SourceKeyId (ReEncrypt) other
// than the blob's key is IncorrectKeyException at the server, and kmsblob
// refuses it whatever the server does: no plaintext, no re-encrypted blob.
func testBlobIncorrectKey(t *testing.T, c *caseEnv) {
	a, b := c.NewKey(t, 0), c.NewKey(t, 0)
	api := c.Client()
	blob, _, err := kmsblob.Encrypt(c.ctx, api, kmsblob.EncryptInput{KeyID: a.ARN, Plaintext: []byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Decrypt(c.ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(b.ARN)})
	if code := apiCode(err); code != "IncorrectKeyException" && !(err != nil && c.deviates(t, "Decrypt KeyId")) {
		t.Errorf("Decrypt with the KeyId of another key: %v, want IncorrectKeyException", err)
	}
	_, err = api.ReEncrypt(c.ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceKeyId: aws.String(b.ARN), DestinationKeyId: aws.String(a.ARN)})
	if code := apiCode(err); code != "IncorrectKeyException" && !c.deviates(t, "ReEncrypt SourceKeyId") {
		t.Errorf("ReEncrypt with the SourceKeyId of another key: %v, want IncorrectKeyException", err)
	}
	if pt, _, err := kmsblob.Decrypt(c.ctx, api, kmsblob.DecryptInput{Blob: blob, KeyID: b.ARN}); err == nil || pt != nil {
		t.Errorf("kmsblob.Decrypt with another key: %v", err)
	}
	if out, err := kmsblob.ReEncrypt(c.ctx, api, kmsblob.ReEncryptInput{Blob: blob, SourceKeyID: b.ARN, DestinationKeyID: a.ARN}); err == nil || out != nil {
		t.Errorf("kmsblob.ReEncrypt from another source key: %v", err)
	}
}

// testBlobReEncrypt moves a blob between two keys and contexts in one call.
func testBlobReEncrypt(t *testing.T, c *caseEnv) {
	a, b := c.NewKey(t, 0), c.NewKey(t, 1)
	api := c.Client()
	pt := random(kmsblob.MaxPlaintext)
	blob, _, err := kmsblob.Encrypt(c.ctx, api, kmsblob.EncryptInput{KeyID: a.ARN, Plaintext: pt, Context: blobContext})
	if err != nil {
		t.Fatal(err)
	}
	newEC := map[string]string{"app": "billing", "rotated": "yes"}
	c.ResetCalls()
	for _, src := range []string{"", a.ARN} {
		out, err := kmsblob.ReEncrypt(c.ctx, api, kmsblob.ReEncryptInput{Blob: blob, SourceKeyID: src, SourceContext: blobContext,
			DestinationKeyID: b.Aliases[0], DestinationContext: newEC})
		if err != nil {
			t.Fatalf("ReEncrypt (source %q): %v", src, err)
		}
		if out.SourceKeyARN != a.ARN || out.KeyARN != b.ARN {
			t.Errorf("ReEncrypt: source %s, destination %s; want %s, %s", out.SourceKeyARN, out.KeyARN, a.ARN, b.ARN)
		}
		got, arn, err := kmsblob.Decrypt(c.ctx, api, kmsblob.DecryptInput{Blob: out.Blob, Context: newEC})
		if err != nil || !bytes.Equal(got, pt) || arn != b.ARN {
			t.Fatalf("decrypt the re-encrypted blob: key %s, %v", arn, err)
		}
		if _, _, err := kmsblob.Decrypt(c.ctx, api, kmsblob.DecryptInput{Blob: out.Blob, Context: blobContext}); apiCode(err) != "InvalidCiphertextException" {
			t.Errorf("re-encrypted blob under the old context: %v, want InvalidCiphertextException", err)
		}
	}
	// ReEncrypt is one call: the plaintext never left KMS.
	c.wantCalls(t, "re-encrypt", map[string]int64{"ReEncrypt": 2, "Encrypt": 0, "Decrypt": 4})
	// The wrong source context fails.
	_, err = kmsblob.ReEncrypt(c.ctx, api, kmsblob.ReEncryptInput{Blob: blob, DestinationKeyID: b.ARN})
	if apiCode(err) != "InvalidCiphertextException" {
		t.Errorf("ReEncrypt without the source context: %v, want InvalidCiphertextException", err)
	}
}

// --- re-encryption of ESDK messages through the planner and executor

func testReencryptMessages(t *testing.T, c *caseEnv) {
	a, b := c.NewKey(t, 1), c.NewKey(t, 0)
	dir := t.TempDir()
	in, enc, dec := filepath.Join(dir, "in"), filepath.Join(dir, "enc"), filepath.Join(dir, "dec")
	files := map[string][]byte{"a": random(5000), "b/c": {}, "b/d": random(70000)}
	for name, data := range files {
		p := filepath.Join(in, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.apply(t, "encrypt", in, enc, a.Aliases[0], a.ARN, "", 3)
	c.ResetCalls()
	c.apply(t, "reencrypt", enc, "", b.ARN, a.ARN, "  reencrypt: {add: {migrated: \"yes\"}}\n", 3)
	c.wantCalls(t, "reencrypt", map[string]int64{"Decrypt": 3, "GenerateDataKey": 3})
	for name := range files {
		msg, err := os.ReadFile(filepath.Join(enc, name+".encrypted"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := crypto.ParseHeader(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if len(h.EncryptedDataKeys) != 1 || string(h.EncryptedDataKeys[0].ProviderInfo) != b.ARN || h.Context["migrated"] != "yes" {
			t.Fatalf("%s: EDK %q context %v, want only %s and migrated=yes", name, h.EncryptedDataKeys[0].ProviderInfo, h.Context, b.ARN)
		}
		// The old key no longer opens it.
		if _, err := decryptMsg(c.ctx, crypto.NewDefaultCMM(c.strict(t, a.ARN)), msg); !errors.Is(err, crypto.ErrNoMatchingKey) {
			t.Fatalf("%s under the old key: %v", name, err)
		}
	}
	c.apply(t, "decrypt", enc, dec, b.ARN, b.ARN, "", 3)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dec, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v (equal %v)", name, err, bytes.Equal(got, want))
		}
	}
}

// apply plans and applies one job against the target and requires n items
// done.
func (c *caseEnv) apply(t *testing.T, op, in, out, encKey, decKey, extra string, n int) {
	t.Helper()
	output := fmt.Sprintf("{path: %q}", out)
	if out == "" {
		output = "{inPlace: true}"
	}
	y := fmt.Sprintf(`apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: conformance}
spec:
  operation: %s
  sources: [{path: %q}]
  output: %s
  keyGroups:
    enc: {provider: aws-kms, keys: [%q]}
    dec: {provider: aws-kms, keys: [%q]}
%s`, op, in, output, encKey, decKey, extra)
	switch op {
	case "encrypt":
		y += "  encrypt: {keyGroup: enc, context: {tenant: acme}}\n"
	case "reencrypt":
		y += "  encrypt: {keyGroup: enc}\n"
	}
	if op != "encrypt" {
		y += "  decrypt: {keyGroup: dec, requireContext: {tenant: acme}}\n"
	}
	docs, err := spec.Parse("job.yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	opts := planner.Options{KMS: c.KMSConfig()}
	opts.KMS.Clients = c.Provider()
	rt, err := planner.Prepare(c.ctx, docs[0].Job, opts)
	if err != nil {
		t.Fatalf("%s: prepare: %v", op, err)
	}
	p, err := planner.Build(c.ctx, rt, planner.BuildOptions{Name: "conformance"})
	if err != nil {
		t.Fatalf("%s: plan: %v", op, err)
	}
	sum, err := executor.Apply(c.ctx, rt, p, executor.Options{})
	if err != nil {
		t.Fatalf("%s: apply: %v", op, err)
	}
	// Only the operation's own action counts: encjob's state directory
	// in a tree it wrote is listed as a skip.
	action := map[string]planner.Action{"encrypt": planner.Encrypt, "decrypt": planner.Decrypt, "reencrypt": planner.Reencrypt}[op]
	if !sum.OK() || sum.Done[action] != n {
		t.Fatalf("%s: %d done (%v), failures %v; want %d", op, sum.Done[action], sum.Done, sum.Failed, n)
	}
}

// --- caching

// testCachingEncrypt: 50 messages with at most 10 per data key make 5
// GenerateDataKey calls.
func testCachingEncrypt(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	cmm, err := caching.New(crypto.NewDefaultCMM(c.strict(t, a.ARN)), caching.Options{Capacity: 10, MaxAge: time.Minute, MaxMessagesEncrypted: 10})
	if err != nil {
		t.Fatal(err)
	}
	c.ResetCalls()
	for range 50 {
		encryptMsg(t, c.ctx, cmm, []byte("small"))
	}
	c.wantCalls(t, "50 cached encryptions", map[string]int64{"GenerateDataKey": 5, "Encrypt": 0})
}

// testCachingDecrypt: 50 messages under one cached data key decrypt with
// one KMS Decrypt through a caching CMM, and with 50 without one.
func testCachingDecrypt(t *testing.T, c *caseEnv) {
	a := c.NewKey(t, 0)
	k := c.strict(t, a.ARN)
	enc, err := caching.New(crypto.NewDefaultCMM(k), caching.Options{Capacity: 10, MaxAge: time.Minute, MaxMessagesEncrypted: 100})
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	for i := range 50 {
		msgs = append(msgs, encryptMsg(t, c.ctx, enc, []byte(fmt.Sprint(i))))
	}
	dec, err := caching.New(crypto.NewDefaultCMM(k), caching.Options{Capacity: 10, MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmm  crypto.MaterialsManager
		want int64
	}{{dec, 1}, {crypto.NewDefaultCMM(k), 50}} {
		c.ResetCalls()
		for i, m := range msgs {
			got, dh, err := crypto.Decrypt(c.ctx, m, crypto.DecryptOptions{CMM: tc.cmm})
			if err != nil || string(got) != fmt.Sprint(i) {
				t.Fatalf("message %d: %v", i, err)
			}
			if dh.DecryptedWith != a.ARN { // cached materials remember the key too
				t.Fatalf("message %d: decrypted with %q, want %s", i, dh.DecryptedWith, a.ARN)
			}
		}
		c.wantCalls(t, fmt.Sprintf("%T", tc.cmm), map[string]int64{"Decrypt": tc.want})
	}
}
