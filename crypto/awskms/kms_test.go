package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/kmsemu"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

// These tests run the unmodified aws-sdk-go-v2 KMS client against the kmsemu
// emulator on loopback.

const (
	account      = "111122223333"
	otherAccount = "444455556666"
	eastID       = "11111111-1111-4111-8111-111111111111"
	westID       = "22222222-2222-4222-8222-222222222222"
	disabledID   = "33333333-3333-4333-8333-333333333333"
	encOnlyID    = "44444444-4444-4444-8444-444444444444"
	foreignID    = "55555555-5555-4555-8555-555555555555"
	mrkID        = "mrk-0123456789abcdef0123456789abcdef"
)

const seedYAML = `
account: "111122223333"
region: us-east-1
keys:
  - id: 11111111-1111-4111-8111-111111111111
    aliases: [alias/east]
  - id: 22222222-2222-4222-8222-222222222222
    region: eu-west-1
    aliases: [alias/west]
  - id: 33333333-3333-4333-8333-333333333333
    enabled: false
  - id: 44444444-4444-4444-8444-444444444444
    allowedOperations: [Encrypt, GenerateDataKey]
  - id: 55555555-5555-4555-8555-555555555555
    account: "444455556666"
  - id: mrk-0123456789abcdef0123456789abcdef
    replicas: [eu-west-1]
`

func arn(region, acct, id string) string {
	return "arn:aws:kms:" + region + ":" + acct + ":key/" + id
}

var (
	eastARN     = arn("us-east-1", account, eastID)
	westARN     = arn("eu-west-1", account, westID)
	mrkEastARN  = arn("us-east-1", account, mrkID)
	mrkWestARN  = arn("eu-west-1", account, mrkID)
	disabledARN = arn("us-east-1", account, disabledID)
	encOnlyARN  = arn("us-east-1", account, encOnlyID)
	foreignARN  = arn("us-east-1", otherAccount, foreignID)
)

type env struct {
	srv *kmsemutest.Server
	emu *kmsemu.Emulator
	url string
}

// newEnv clears ambient AWS_* variables and starts the emulator.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := kmsemutest.Start(t, seedYAML)
	return &env{srv: srv, emu: srv.Emu, url: srv.URL}
}

var creds = kmsemutest.Credentials

// config returns a keyring Config for the emulator.
func (e *env) config(keys ...string) awskms.Config {
	return awskms.Config{Keys: keys, Region: "us-east-1", Endpoint: e.url, Credentials: creds}
}

func (e *env) keyring(t *testing.T, cfg awskms.Config) *awskms.Keyring {
	t.Helper()
	k, err := awskms.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg.Keys, err)
	}
	return k
}

var (
	suite = crypto.SuiteByID(0x0478)
	ec    = crypto.EncryptionContext{"purpose": "test", "bucket": "b1"}
)

func encrypt(t *testing.T, k *awskms.Keyring) *crypto.EncryptionMaterials {
	t.Helper()
	m := &crypto.EncryptionMaterials{Suite: suite, Context: ec}
	if err := k.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt: %v", err)
	}
	return m
}

func decrypt(k *awskms.Keyring, ctx crypto.EncryptionContext, edks []crypto.EncryptedDataKey) ([]byte, error) {
	m := &crypto.DecryptionMaterials{Suite: suite, Context: ctx}
	err := k.OnDecrypt(context.Background(), m, edks)
	return m.DataKey, err
}

func TestTwoRegionGroup(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, e.config("alias/east", westARN))
	m := encrypt(t, k)
	if len(m.DataKey) != suite.KeyLen {
		t.Fatalf("data key is %d bytes", len(m.DataKey))
	}
	if len(m.EncryptedDataKeys) != 2 {
		t.Fatalf("%d EDKs, want 2", len(m.EncryptedDataKeys))
	}
	for i, want := range []string{eastARN, westARN} {
		edk := m.EncryptedDataKeys[i]
		if edk.ProviderID != "aws-kms" || string(edk.ProviderInfo) != want || len(edk.Ciphertext) == 0 {
			t.Errorf("EDK %d: %s %s (%d bytes), want aws-kms %s", i, edk.ProviderID, edk.ProviderInfo, len(edk.Ciphertext), want)
		}
	}
	if g, en := e.emu.CallCount("GenerateDataKey"), e.emu.CallCount("Encrypt"); g != 1 || en != 1 {
		t.Errorf("GenerateDataKey %d, Encrypt %d calls; want 1 and 1", g, en)
	}

	// The full group decrypts with its first key: one Decrypt call.
	e.emu.ResetCalls()
	got, err := decrypt(k, ec, m.EncryptedDataKeys)
	if err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("decrypt with the group: %v (key equal: %v)", err, bytes.Equal(got, m.DataKey))
	}
	if n := e.emu.CallCount("Decrypt"); n != 1 {
		t.Errorf("%d Decrypt calls, want 1", n)
	}

	// Only the second key (eu-west-1) decrypts its own EDK.
	e.emu.ResetCalls()
	k2 := e.keyring(t, e.config(westARN))
	got, err = decrypt(k2, ec, m.EncryptedDataKeys)
	if err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("decrypt with the second key: %v", err)
	}
	if n := e.emu.CallCount("Decrypt"); n != 1 {
		t.Errorf("%d Decrypt calls, want 1 (the first EDK is not for this key)", n)
	}

	// Data key supplied by an earlier keyring: every key encrypts it.
	e.emu.ResetCalls()
	m2 := &crypto.EncryptionMaterials{Suite: suite, Context: ec, DataKey: bytes.Repeat([]byte{7}, suite.KeyLen)}
	if err := k.OnEncrypt(context.Background(), m2); err != nil {
		t.Fatal(err)
	}
	if g, en := e.emu.CallCount("GenerateDataKey"), e.emu.CallCount("Encrypt"); g != 0 || en != 2 || len(m2.EncryptedDataKeys) != 2 {
		t.Errorf("with a data key: GenerateDataKey %d, Encrypt %d, EDKs %d; want 0, 2, 2", g, en, len(m2.EncryptedDataKeys))
	}
	got, err = decrypt(k2, ec, m2.EncryptedDataKeys)
	if err != nil || !bytes.Equal(got, m2.DataKey) {
		t.Fatalf("decrypt supplied key: %v", err)
	}
}

func TestAliasResolution(t *testing.T) {
	e := newEnv(t)
	inputs := []string{
		"alias/east",
		"arn:aws:kms:eu-west-1:" + account + ":alias/west",
		eastID,
		westARN,
		mrkID,
	}
	k := e.keyring(t, e.config(inputs...))
	want := []string{eastARN, westARN, eastARN, westARN, mrkEastARN}
	res := k.Resolved()
	if len(res) != len(inputs) {
		t.Fatalf("Resolved() has %d entries, want %d", len(res), len(inputs))
	}
	for i, r := range res {
		if r.Input != inputs[i] || r.ARN != want[i] {
			t.Errorf("Resolved()[%d] = %s -> %s, want %s -> %s", i, r.Input, r.ARN, inputs[i], want[i])
		}
		region := strings.Split(want[i], ":")[3]
		if emuARN, err := e.emu.KeyARN(inputs[i], region); err != nil || emuARN != want[i] {
			t.Errorf("emulator says %s -> %s (%v)", inputs[i], emuARN, err)
		}
	}
	// Resolved aliases decrypt messages whose EDKs carry key ARNs - what
	// aws-encryption-cli cannot do.
	m := encrypt(t, e.keyring(t, e.config(eastARN)))
	dk := e.keyring(t, e.config("alias/east"))
	if got, err := decrypt(dk, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("decrypt with an alias: %v", err)
	}

	// An unknown alias fails at construction, naming it.
	_, err := awskms.New(context.Background(), e.config("alias/missing"))
	var ke *awskms.KeyError
	if !errors.As(err, &ke) || ke.Kind != awskms.KindNotFound || ke.Key != "alias/missing" || ke.Op != "DescribeKey" {
		t.Fatalf("unknown alias: %v", err)
	}
	if !strings.Contains(err.Error(), "alias/missing") {
		t.Errorf("error %q does not name the alias", err)
	}
}

func TestDiscoveryFilter(t *testing.T) {
	e := newEnv(t)
	m := encrypt(t, e.keyring(t, e.config(eastARN)))
	foreign := encrypt(t, e.keyring(t, e.config(foreignARN)))

	disc := func(f *awskms.DiscoveryFilter) *awskms.Keyring {
		return e.keyring(t, awskms.Config{Discovery: true, DiscoveryFilter: f, Endpoint: e.url, Credentials: creds})
	}

	// No filter: any key.
	if got, err := decrypt(disc(nil), ec, foreign.EncryptedDataKeys); err != nil || !bytes.Equal(got, foreign.DataKey) {
		t.Fatalf("unfiltered discovery: %v", err)
	}
	// The filter allows the account.
	allow := disc(&awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{otherAccount, account}})
	if got, err := decrypt(allow, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("allowed account: %v", err)
	}
	// The filter denies the account: KMS is not called.
	e.emu.ResetCalls()
	deny := disc(&awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{otherAccount}})
	_, err := decrypt(deny, ec, m.EncryptedDataKeys)
	if !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("denied account: error %v, want ErrNoMatchingKey", err)
	}
	t.Logf("denied: %v", err)
	if !strings.Contains(err.Error(), eastARN) || !strings.Contains(err.Error(), "account "+account+" is not in the discovery filter") {
		t.Errorf("denied account: error %q does not say which key and why", err)
	}
	if n := e.emu.CallCount("Decrypt"); n != 0 {
		t.Errorf("%d Decrypt calls for a filtered key", n)
	}
	// Another partition is denied too.
	_, err = decrypt(disc(&awskms.DiscoveryFilter{Partition: "aws-cn", Accounts: []string{account}}), ec, m.EncryptedDataKeys)
	if !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("other partition: %v", err)
	}
	// Discovery cannot encrypt.
	if err := allow.OnEncrypt(context.Background(), &crypto.EncryptionMaterials{Suite: suite}); !errors.Is(err, crypto.ErrCannotGenerate) {
		t.Fatalf("discovery OnEncrypt: %v, want ErrCannotGenerate", err)
	}
}

func TestMRKReplica(t *testing.T) {
	e := newEnv(t)
	m := encrypt(t, e.keyring(t, e.config(mrkEastARN)))
	if got := string(m.EncryptedDataKeys[0].ProviderInfo); got != mrkEastARN {
		t.Fatalf("provider info %s, want %s", got, mrkEastARN)
	}
	// Strict keyring with the eu-west-1 replica.
	west := e.keyring(t, e.config(mrkWestARN))
	if got, err := decrypt(west, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("replica decrypt: %v", err)
	}
	// The replica also resolves from its bare id in eu-west-1.
	cfg := e.config(mrkID)
	cfg.Region = "eu-west-1"
	byID := e.keyring(t, cfg)
	if r := byID.Resolved()[0]; r.ARN != mrkWestARN {
		t.Fatalf("%s resolved to %s, want %s", mrkID, r.ARN, mrkWestARN)
	}
	if got, err := decrypt(byID, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("replica (bare id) decrypt: %v", err)
	}
	// MRK-aware discovery in eu-west-1.
	disc := e.keyring(t, awskms.Config{Discovery: true, DiscoveryRegion: "eu-west-1", Endpoint: e.url, Credentials: creds})
	if got, err := decrypt(disc, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("MRK discovery decrypt: %v", err)
	}
	// A single-region key never matches across regions.
	srk := encrypt(t, e.keyring(t, e.config(eastARN)))
	other := e.keyring(t, e.config(westARN))
	if _, err := decrypt(other, ec, srk.EncryptedDataKeys); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("single-region key in another region: %v", err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	e := newEnv(t)
	e.emu.SetFaults(kmsemu.Faults{ThrottleRate: 0.3})
	cfg := e.config(eastARN, westARN)
	cfg.RetryMode = "standard"
	cfg.MaxAttempts = 12              // 0.3^12: a call failing every attempt is ~5e-7
	cfg.MaxBackoff = time.Millisecond // keep the test fast; the backoff policy is the SDK's
	k := e.keyring(t, cfg)

	const ops, workers = 200, 8
	var failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				var err error
				if i%2 == 0 { // an encryption: GenerateDataKey + Encrypt
					err = k.OnEncrypt(context.Background(), &crypto.EncryptionMaterials{Suite: suite, Context: ec})
				} else { // an encryption followed by its decryption
					m := &crypto.EncryptionMaterials{Suite: suite, Context: ec}
					if err = k.OnEncrypt(context.Background(), m); err == nil {
						var got []byte
						got, err = decrypt(k, ec, m.EncryptedDataKeys)
						if err == nil && !bytes.Equal(got, m.DataKey) {
							err = errors.New("data key differs")
						}
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("operation %d: %v", i, err) })
				}
			}
		}()
	}
	for i := range ops {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d operations failed", n, ops)
	}
	logical := int64(ops*2 + ops/2) // 2 wrapping calls per op, plus a Decrypt for half
	var attempts int64
	for _, op := range []string{"GenerateDataKey", "Encrypt", "Decrypt"} {
		attempts += e.emu.CallCount(op)
	}
	if attempts <= logical {
		t.Fatalf("%d KMS attempts for %d calls: the throttling was not exercised", attempts, logical)
	}
	t.Logf("%d attempts for %d calls", attempts, logical)
}

func TestWrongEncryptionContext(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, e.config(eastARN))
	m := encrypt(t, k)
	_, err := decrypt(k, crypto.EncryptionContext{"purpose": "other"}, m.EncryptedDataKeys)
	if !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("error %v, want ErrNoMatchingKey", err)
	}
	t.Logf("wrong context: %v", err)
	var ke *awskms.KeyError
	if !errors.As(err, &ke) || ke.Kind != awskms.KindInvalidCiphertext || ke.Key != eastARN || ke.Op != "Decrypt" || ke.Retryable() {
		t.Fatalf("KeyError = %+v", ke)
	}
	if msg := err.Error(); !strings.Contains(msg, eastARN) || !strings.Contains(msg, "invalid ciphertext or encryption context") {
		t.Errorf("error %q does not name the key and the cause", msg)
	}
	if bytes.Contains([]byte(err.Error()), m.DataKey) {
		t.Error("error contains the data key")
	}
}

func TestDisabledKey(t *testing.T) {
	e := newEnv(t)
	// Encrypting with a disabled key.
	err := e.keyring(t, e.config(disabledARN)).OnEncrypt(context.Background(), &crypto.EncryptionMaterials{Suite: suite, Context: ec})
	var ke *awskms.KeyError
	if !errors.As(err, &ke) || ke.Kind != awskms.KindDisabled || ke.Key != disabledARN || ke.Op != "GenerateDataKey" {
		t.Fatalf("encrypt with a disabled key: %v", err)
	}
	if !strings.Contains(err.Error(), disabledARN) || !strings.Contains(err.Error(), "key disabled") {
		t.Errorf("error %q does not name the key and the cause", err)
	}

	// Decrypting after the key was disabled.
	k := e.keyring(t, e.config(eastARN))
	m := encrypt(t, k)
	if _, err := e.srv.Client("us-east-1").DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(eastID)}); err != nil {
		t.Fatal(err)
	}
	_, err = decrypt(k, ec, m.EncryptedDataKeys)
	t.Logf("disabled: %v", err)
	if !errors.Is(err, crypto.ErrNoMatchingKey) || !errors.As(err, &ke) || ke.Kind != awskms.KindDisabled {
		t.Fatalf("decrypt with a disabled key: %v", err)
	}
}

func TestAccessDenied(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, e.config(encOnlyARN))
	m := encrypt(t, k)
	_, err := decrypt(k, ec, m.EncryptedDataKeys)
	var ke *awskms.KeyError
	if !errors.As(err, &ke) || ke.Kind != awskms.KindAccessDenied || ke.Key != encOnlyARN {
		t.Fatalf("decrypt with an encrypt-only key: %v", err)
	}
}

func TestRateLimitPerRegion(t *testing.T) {
	e := newEnv(t)
	// A bucket of 3 that refills once every 1000 s: the count of calls it
	// lets through is exact and nothing in the test waits.
	cfg := e.config(eastARN, westARN)
	cfg.RateLimit = 0.001
	cfg.RateBurst = 3
	k := e.keyring(t, cfg)
	encrypt(t, k) // us-east-1: GenerateDataKey; eu-west-1: Encrypt
	encrypt(t, k)
	encrypt(t, k) // each region has now used its 3 tokens: 6 calls went
	// through buckets of 3, so each region has a bucket of its own
	e.emu.ResetCalls()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := k.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: suite, Context: ec})
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("fourth encryption: %v, want a rate limit error", err)
	}
	if n := e.emu.CallCount("GenerateDataKey"); n != 0 {
		t.Fatalf("%d GenerateDataKey calls past the limit", n)
	}

	// A keyring without a limit is not held back.
	free := e.keyring(t, e.config(eastARN, westARN))
	for range 5 {
		encrypt(t, free)
	}
	if n := e.emu.CallCount("GenerateDataKey"); n != 5 {
		t.Fatalf("%d GenerateDataKey calls, want 5", n)
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	e := newEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_KMS", e.url)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	k, err := awskms.New(context.Background(), awskms.Config{Keys: []string{"alias/east"}})
	if err != nil {
		t.Fatalf("New with AWS_ENDPOINT_URL_KMS: %v", err)
	}
	m := encrypt(t, k)
	if got, err := decrypt(k, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
		t.Fatalf("decrypt: %v", err)
	}

	os.Unsetenv("AWS_ENDPOINT_URL_KMS")
	t.Setenv("AWS_ENDPOINT_URL", e.url)
	if _, err := awskms.New(context.Background(), awskms.Config{Keys: []string{"alias/west"}, Region: "eu-west-1"}); err != nil {
		t.Fatalf("New with AWS_ENDPOINT_URL: %v", err)
	}
}

func TestEndToEndMessage(t *testing.T) {
	e := newEnv(t)
	k := e.keyring(t, e.config("alias/east", westARN))
	plaintext := bytes.Repeat([]byte("encjob "), 3000)
	msg, err := crypto.Encrypt(context.Background(), plaintext, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(k), Context: ec})
	if err != nil {
		t.Fatal(err)
	}
	// Decrypt with only the eu-west-1 key.
	dk := e.keyring(t, e.config(westARN))
	got, hdr, err := crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(dk)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plaintext) {
		t.Fatal("plaintext differs")
	}
	if len(hdr.EncryptedDataKeys) != 2 || string(hdr.EncryptedDataKeys[1].ProviderInfo) != westARN {
		t.Fatalf("header EDKs: %+v", hdr.EncryptedDataKeys)
	}
	if hdr.Context["purpose"] != "test" {
		t.Fatalf("header context %v", hdr.Context)
	}
	// A discovery keyring limited to another account cannot read it.
	deny := e.keyring(t, awskms.Config{Discovery: true, DiscoveryFilter: &awskms.DiscoveryFilter{Partition: "aws", Accounts: []string{otherAccount}}, Endpoint: e.url, Credentials: creds})
	if _, _, err := crypto.Decrypt(context.Background(), msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(deny)}); !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("filtered discovery: %v", err)
	}
}

func TestAdaptiveRetryMode(t *testing.T) {
	e := newEnv(t)
	e.emu.SetFaults(kmsemu.Faults{ThrottleRate: 0.3})
	cfg := e.config(eastARN)
	cfg.RetryMode = "adaptive"
	cfg.MaxAttempts = 12
	cfg.MaxBackoff = time.Millisecond
	k := e.keyring(t, cfg)
	// Adaptive mode slows the client after throttling (by design), so a
	// few round trips are enough to prove it is wired and still completes.
	for range 4 {
		m := encrypt(t, k)
		if got, err := decrypt(k, ec, m.EncryptedDataKeys); err != nil || !bytes.Equal(got, m.DataKey) {
			t.Fatalf("decrypt: %v", err)
		}
	}
	if n := e.emu.CallCount("GenerateDataKey") + e.emu.CallCount("Decrypt"); n < 8 {
		t.Fatalf("%d attempts for 8 calls", n)
	}
}

func TestNamedProfile(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cfgFile, credFile := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	if err := os.WriteFile(cfgFile, []byte("[profile encjob-test]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(credFile, []byte("[encjob-test]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	// The alias name resolves in the profile's region with its credentials.
	k, err := awskms.New(context.Background(), awskms.Config{Keys: []string{"alias/west"}, Profile: "encjob-test", Endpoint: e.url})
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Resolved()[0].ARN; got != westARN {
		t.Fatalf("alias/west resolved to %s, want %s (the profile's region)", got, westARN)
	}
	// A missing profile is reported by name.
	_, err = awskms.New(context.Background(), awskms.Config{Keys: []string{"alias/west"}, Profile: "nope", Endpoint: e.url})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing profile: %v", err)
	}
	// No region anywhere: a clear error.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	_, err = awskms.New(context.Background(), awskms.Config{Keys: []string{"alias/west"}, Endpoint: e.url, Credentials: creds})
	if err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Fatalf("no region: %v", err)
	}
}
