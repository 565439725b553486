package awskms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/crypto"
)

// Pure-logic tests against an in-memory fake of API. The wire behaviour is
// tested against the kmsemu emulator in kms_test.go.

func TestMRKMatch(t *testing.T) {
	const (
		mrkE  = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234"
		mrkW  = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234"
		mrkO  = "arn:aws:kms:eu-west-1:444455556666:key/mrk-1234"
		mrkCN = "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234"
		mrk2  = "arn:aws:kms:eu-west-1:111122223333:key/mrk-5678"
		srkE  = "arn:aws:kms:us-east-1:111122223333:key/1234"
		srkW  = "arn:aws:kms:eu-west-1:111122223333:key/1234"
		alias = "arn:aws:kms:eu-west-1:111122223333:alias/mrk-1234"
	)
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{mrkE, mrkE, true},
		{mrkE, mrkW, true},
		{mrkW, mrkE, true},
		{mrkE, mrkO, false},  // other account
		{mrkE, mrkCN, false}, // other partition
		{mrkE, mrk2, false},  // other key
		{srkE, srkE, true},
		{srkE, srkW, false}, // single-region keys never match across regions
		{alias, mrkW, false},
	} {
		a, err := ParseARN(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseARN(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := MRKMatch(a, b); got != tc.want {
			t.Errorf("MRKMatch(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestClassifyIdentifier(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    identifierKind
		wantErr bool
	}{
		{"1234abcd-12ab-34cd-56ef-1234567890ab", idKeyID, false},
		{"mrk-1234", idKeyID, false},
		{"arn:aws:kms:us-east-1:111122223333:key/1234", idKeyARN, false},
		{"alias/my-key", idAliasName, false},
		{"arn:aws:kms:us-east-1:111122223333:alias/my-key", idAliasARN, false},
		{"", 0, true},
		{"alias/", 0, true},
		{"arn:aws:s3:::bucket/key", 0, true},
		{"arn:aws:kms:us-east-1:111122223333:grant/1234", 0, true},
		{"arn:aws:kms::111122223333:key/1234", 0, true},
		{"foo/bar", 0, true},
	} {
		got, _, err := classifyIdentifier(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("classifyIdentifier(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestClassifyError(t *testing.T) {
	for _, tc := range []struct {
		err       error
		want      ErrorKind
		retryable bool
	}{
		{&smithy.GenericAPIError{Code: "AccessDeniedException"}, KindAccessDenied, false},
		{&types.NotFoundException{}, KindNotFound, false},
		{&types.DisabledException{}, KindDisabled, false},
		{&types.KMSInvalidStateException{}, KindInvalidState, false},
		{&types.InvalidCiphertextException{}, KindInvalidCiphertext, false},
		{&types.IncorrectKeyException{}, KindIncorrectKey, false},
		{&types.InvalidKeyUsageException{}, KindInvalidKeyUsage, false},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, KindThrottled, true},
		{&types.KMSInternalException{}, KindUnavailable, true},
		{fmt.Errorf("wrapped: %w", &types.DependencyTimeoutException{}), KindUnavailable, true},
		{errors.New("boom"), KindUnknown, false},
	} {
		ke := newKeyError("k", "Decrypt", tc.err)
		if ke.Kind != tc.want || ke.Retryable() != tc.retryable {
			t.Errorf("%T: kind %v retryable %v; want %v %v", tc.err, ke.Kind, ke.Retryable(), tc.want, tc.retryable)
		}
		if !errors.Is(ke, tc.err) {
			t.Errorf("%T: KeyError does not wrap the cause", tc.err)
		}
	}
}

// fakeKMS is an in-memory API: the "ciphertext" is the key ARN, the
// serialised context and the plaintext, which is enough for routing tests.
type fakeKMS struct {
	region string
	mu     sync.Mutex
	calls  []string // "Op keyId"
	tokens [][]string
	// answer overrides the KeyId KMS reports, when set.
	answer string
	fail   map[string]error // by key id
}

func (f *fakeKMS) record(op, key string, grants []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+key)
	f.tokens = append(f.tokens, grants)
	return f.fail[key]
}

func (f *fakeKMS) keyID(in string) *string {
	if f.answer != "" {
		return aws.String(f.answer)
	}
	return aws.String(in)
}

func (f *fakeKMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	if err := f.record("DescribeKey", *in.KeyId, in.GrantTokens); err != nil {
		return nil, err
	}
	id := strings.TrimPrefix(*in.KeyId, "alias/")
	return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{Arn: aws.String("arn:aws:kms:" + f.region + ":111122223333:key/" + id)}}, nil
}

func (f *fakeKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if err := f.record("GenerateDataKey", *in.KeyId, in.GrantTokens); err != nil {
		return nil, err
	}
	pt := bytes.Repeat([]byte{0xAB}, int(*in.NumberOfBytes))
	return &kms.GenerateDataKeyOutput{KeyId: f.keyID(*in.KeyId), Plaintext: pt, CiphertextBlob: fakeBlob(*in.KeyId, in.EncryptionContext, pt)}, nil
}

func (f *fakeKMS) Encrypt(ctx context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	if err := f.record("Encrypt", *in.KeyId, in.GrantTokens); err != nil {
		return nil, err
	}
	return &kms.EncryptOutput{KeyId: f.keyID(*in.KeyId), CiphertextBlob: fakeBlob(*in.KeyId, in.EncryptionContext, in.Plaintext)}, nil
}

func (f *fakeKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	if err := f.record("Decrypt", *in.KeyId, in.GrantTokens); err != nil {
		return nil, err
	}
	parts := bytes.SplitN(in.CiphertextBlob, []byte{0}, 3)
	if len(parts) != 3 || string(parts[1]) != fmt.Sprint(in.EncryptionContext) {
		return nil, &types.InvalidCiphertextException{Message: aws.String("bad")}
	}
	return &kms.DecryptOutput{KeyId: f.keyID(*in.KeyId), Plaintext: append([]byte(nil), parts[2]...)}, nil
}

func fakeBlob(key string, ec map[string]string, pt []byte) []byte {
	return append([]byte(key+"\x00"+fmt.Sprint(ec)+"\x00"), pt...)
}

// fakeProvider hands out one fakeKMS per region.
type fakeProvider struct {
	mu      sync.Mutex
	byReg   map[string]*fakeKMS
	created []string
}

func (p *fakeProvider) Client(_ context.Context, region string) (API, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byReg == nil {
		p.byReg = map[string]*fakeKMS{}
	}
	p.created = append(p.created, region)
	f, ok := p.byReg[region]
	if !ok {
		f = &fakeKMS{region: region}
		p.byReg[region] = f
	}
	return f, nil
}

func (p *fakeProvider) get(region string) *fakeKMS {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byReg == nil {
		p.byReg = map[string]*fakeKMS{}
	}
	f, ok := p.byReg[region]
	if !ok {
		f = &fakeKMS{region: region}
		p.byReg[region] = f
	}
	return f
}

var suite = crypto.SuiteByID(0x0478)

func TestUnitEncryptDecryptRouting(t *testing.T) {
	ctx := context.Background()
	p := &fakeProvider{}
	k, err := New(ctx, Config{
		Keys: []string{
			"alias/first",
			"arn:aws:kms:eu-west-1:111122223333:key/second",
		},
		Region:      "us-east-1",
		GrantTokens: []string{"g1", "g2"},
		Clients:     p,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRes := []Resolution{
		{"alias/first", "arn:aws:kms:us-east-1:111122223333:key/first"},
		{"arn:aws:kms:eu-west-1:111122223333:key/second", "arn:aws:kms:eu-west-1:111122223333:key/second"},
	}
	if got := k.Resolved(); fmt.Sprint(got) != fmt.Sprint(wantRes) {
		t.Fatalf("Resolved() = %v, want %v", got, wantRes)
	}
	em := &crypto.EncryptionMaterials{Suite: suite, Context: crypto.EncryptionContext{"a": "b"}}
	if err := k.OnEncrypt(ctx, em); err != nil {
		t.Fatal(err)
	}
	if len(em.DataKey) != suite.KeyLen || len(em.EncryptedDataKeys) != 2 {
		t.Fatalf("data key %d bytes, %d EDKs", len(em.DataKey), len(em.EncryptedDataKeys))
	}
	for i, r := range wantRes {
		if e := em.EncryptedDataKeys[i]; e.ProviderID != "aws-kms" || string(e.ProviderInfo) != r.ARN {
			t.Errorf("EDK %d = %s %s, want aws-kms %s", i, e.ProviderID, e.ProviderInfo, r.ARN)
		}
	}
	east, west := p.get("us-east-1"), p.get("eu-west-1")
	if want := []string{"DescribeKey alias/first", "GenerateDataKey " + wantRes[0].ARN}; fmt.Sprint(east.calls) != fmt.Sprint(want) {
		t.Errorf("us-east-1 calls %v, want %v", east.calls, want)
	}
	if want := []string{"Encrypt " + wantRes[1].ARN}; fmt.Sprint(west.calls) != fmt.Sprint(want) {
		t.Errorf("eu-west-1 calls %v, want %v", west.calls, want)
	}
	for _, f := range []*fakeKMS{east, west} {
		for _, g := range f.tokens {
			if fmt.Sprint(g) != "[g1 g2]" {
				t.Errorf("%s: grant tokens %v", f.region, g)
			}
		}
	}
	if fmt.Sprint(p.created) != "[us-east-1 eu-west-1]" {
		t.Errorf("clients created %v, want one per region", p.created)
	}

	// Decrypt tries keys in configured order: the first key's EDK first.
	dm := &crypto.DecryptionMaterials{Suite: suite, Context: em.Context}
	if err := k.OnDecrypt(ctx, dm, em.EncryptedDataKeys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dm.DataKey, em.DataKey) {
		t.Fatal("decrypted data key differs")
	}
	if last := east.calls[len(east.calls)-1]; last != "Decrypt "+wantRes[0].ARN {
		t.Errorf("first decrypt call %q", last)
	}
}

func TestUnitDecryptFailuresListed(t *testing.T) {
	ctx := context.Background()
	p := &fakeProvider{}
	a1 := "arn:aws:kms:us-east-1:111122223333:key/one"
	a2 := "arn:aws:kms:us-east-1:111122223333:key/two"
	k, err := New(ctx, Config{Keys: []string{a1, a2}, Clients: p})
	if err != nil {
		t.Fatal(err)
	}
	em := &crypto.EncryptionMaterials{Suite: suite}
	if err := k.OnEncrypt(ctx, em); err != nil {
		t.Fatal(err)
	}
	p.get("us-east-1").fail = map[string]error{
		a1: &types.DisabledException{Message: aws.String("key is disabled")},
		a2: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"},
	}
	err = k.OnDecrypt(ctx, &crypto.DecryptionMaterials{Suite: suite}, em.EncryptedDataKeys)
	if !errors.Is(err, crypto.ErrNoMatchingKey) {
		t.Fatalf("error %v does not wrap ErrNoMatchingKey", err)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Kind != KindDisabled || ke.Key != a1 || ke.Op != "Decrypt" {
		t.Fatalf("errors.As KeyError = %+v", ke)
	}
	for _, want := range []string{a1, a2, "key disabled", "access denied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if bytes.Contains([]byte(err.Error()), em.DataKey) {
		t.Error("error contains the data key")
	}
}

func TestUnitNoMatchingEDK(t *testing.T) {
	ctx := context.Background()
	p := &fakeProvider{}
	k, err := New(ctx, Config{Keys: []string{"arn:aws:kms:us-east-1:111122223333:key/one"}, Clients: p})
	if err != nil {
		t.Fatal(err)
	}
	edks := []crypto.EncryptedDataKey{
		{ProviderID: "raw", ProviderInfo: []byte("x"), Ciphertext: []byte("y")},
		{ProviderID: "aws-kms", ProviderInfo: []byte("arn:aws:kms:us-east-1:111122223333:key/other"), Ciphertext: []byte("y")},
	}
	err = k.OnDecrypt(ctx, &crypto.DecryptionMaterials{Suite: suite}, edks)
	if !errors.Is(err, crypto.ErrNoMatchingKey) || !strings.Contains(err.Error(), "key/other (not a configured key)") {
		t.Fatalf("error = %v", err)
	}
	if n := len(p.get("us-east-1").calls); n != 0 {
		t.Fatalf("%d KMS calls for non-matching EDKs", n)
	}
}

func TestUnitInvalidResponseKeyID(t *testing.T) {
	ctx := context.Background()
	p := &fakeProvider{}
	p.get("us-east-1").answer = "not-an-arn"
	k, err := New(ctx, Config{Keys: []string{"arn:aws:kms:us-east-1:111122223333:key/one"}, Clients: p})
	if err != nil {
		t.Fatal(err)
	}
	em := &crypto.EncryptionMaterials{Suite: suite}
	err = k.OnEncrypt(ctx, em)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Kind != KindInvalidResponse || ke.Op != "GenerateDataKey" {
		t.Fatalf("error = %v", err)
	}
	if em.DataKey != nil || len(em.EncryptedDataKeys) != 0 {
		t.Fatal("materials changed by a failed generate")
	}
}

func TestUnitDiscoveryMRKRewrite(t *testing.T) {
	ctx := context.Background()
	p := &fakeProvider{}
	k, err := New(ctx, Config{Discovery: true, DiscoveryRegion: "eu-west-1",
		DiscoveryFilter: &DiscoveryFilter{Partition: "aws", Accounts: []string{"111122223333"}}, Clients: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.OnEncrypt(ctx, &crypto.EncryptionMaterials{Suite: suite}); !errors.Is(err, crypto.ErrCannotGenerate) {
		t.Fatalf("discovery OnEncrypt error = %v, want ErrCannotGenerate", err)
	}
	east := "arn:aws:kms:us-east-1:111122223333:key/mrk-1"
	pt := bytes.Repeat([]byte{1}, 32)
	edks := []crypto.EncryptedDataKey{
		{ProviderID: "aws-kms", ProviderInfo: []byte("arn:aws:kms:us-east-1:999999999999:key/mrk-1"), Ciphertext: []byte("z")},
		{ProviderID: "aws-kms", ProviderInfo: []byte(east), Ciphertext: fakeBlob(east, nil, pt)},
	}
	dm := &crypto.DecryptionMaterials{Suite: suite}
	if err := k.OnDecrypt(ctx, dm, edks); err != nil {
		t.Fatal(err)
	}
	if got := p.get("eu-west-1").calls; fmt.Sprint(got) != "[Decrypt arn:aws:kms:eu-west-1:111122223333:key/mrk-1]" {
		t.Fatalf("calls %v: want one Decrypt with the replica ARN in eu-west-1 (the filtered EDK never sent)", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	p := &fakeProvider{}
	for name, cfg := range map[string]Config{
		"neither":          {Clients: p},
		"both":             {Keys: []string{"k"}, Discovery: true, Clients: p},
		"bad identifier":   {Keys: []string{"arn:aws:s3:::b"}, Clients: p},
		"filter no acct":   {Discovery: true, DiscoveryFilter: &DiscoveryFilter{Partition: "aws"}, Clients: p},
		"filter in strict": {Keys: []string{"k"}, DiscoveryFilter: &DiscoveryFilter{Partition: "aws", Accounts: []string{"1"}}, Clients: p},
		"retry mode":       {Keys: []string{"k"}, RetryMode: "legacy", Clients: p},
		"negative rate":    {Keys: []string{"k"}, RateLimit: -1, Clients: p},
	} {
		if _, err := New(ctx, cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
