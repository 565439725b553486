package keystore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/encjob/encjob/crypto/keystore"
	"github.com/encjob/encjob/crypto/keystore/keystoretest"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const seed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
  - id: 0987dcba-09fe-87dc-65ba-ab0987654321
  - id: mrk-1234abcd12ab34cd56ef1234567890ab
    replicas: [eu-west-1]
`

const (
	keyA = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	keyB = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

type env struct {
	ddb *keystoretest.Server
	kms *kmsemutest.Server
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{kms: kmsemutest.Start(t, seed), ddb: keystoretest.Start(t)}
	e.ddb.CreateTable(t, "branch-keys")
	return e
}

func (e *env) store(t *testing.T, kc keystore.KMSConfig, logical string) *keystore.Store {
	t.Helper()
	s, err := keystore.New(keystore.Config{Table: "branch-keys", LogicalName: logical, KMS: kc,
		DynamoDB: e.ddb.Client, KMSClient: e.kms.Client("us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateGetVersionDescribe(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s := e.store(t, keystore.KMSConfig{KeyARN: keyA}, "ks")
	e.kms.Emu.ResetCalls()
	e.ddb.ResetCalls(t)
	id, err := s.CreateKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.ddb.Calls(t)["TransactWriteItems"]; got != 1 {
		t.Errorf("CreateKey: %d TransactWriteItems, want 1", got)
	}
	if g, r := e.kms.Emu.CallCount("GenerateDataKeyWithoutPlaintext"), e.kms.Emu.CallCount("ReEncrypt"); g != 2 || r != 1 {
		t.Errorf("CreateKey: %d GenerateDataKeyWithoutPlaintext, %d ReEncrypt; want 2, 1", g, r)
	}
	v1, err := s.GetActiveBranchKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v1.ID != id || len(v1.Key) != 32 || v1.KMSKeyARN != keyA {
		t.Fatalf("active: %+v", v1)
	}
	same, err := s.GetBranchKeyVersion(ctx, id, v1.Version)
	if err != nil {
		t.Fatal(err)
	}
	if string(same.Key) != string(v1.Key) {
		t.Fatal("version item and active item hold different keys")
	}
	if _, err := s.GetBeaconKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	v2, err := s.VersionKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	act, err := s.GetActiveBranchKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if act.Version != v2 || act.Version == v1.Version || string(act.Key) == string(v1.Key) {
		t.Fatalf("after VersionKey: active %s (was %s, VersionKey said %s)", act.Version, v1.Version, v2)
	}
	old, err := s.GetBranchKeyVersion(ctx, id, v1.Version)
	if err != nil || string(old.Key) != string(v1.Key) {
		t.Fatalf("old version after rotation: %v", err)
	}
	d, err := s.Describe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.ActiveVersion != v2 || len(d.Versions) != 2 || !d.HasBeaconKey || d.Versions[0].Version != v1.Version || !d.Versions[1].Active {
		t.Fatalf("describe: %+v", d)
	}
}

func TestCustomContextAndChosenID(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s := e.store(t, keystore.KMSConfig{KeyARN: keyA}, "ks")
	if _, err := s.CreateKey(ctx, "tenant-1", nil); !errors.Is(err, keystore.ErrConfig) {
		t.Fatalf("chosen id without context: %v, want ErrConfig", err)
	}
	id, err := s.CreateKey(ctx, "tenant-1", map[string]string{"tenant": "one"})
	if err != nil || id != "tenant-1" {
		t.Fatal(id, err)
	}
	if _, err := s.CreateKey(ctx, "tenant-1", map[string]string{"tenant": "one"}); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second CreateKey: %v, want ErrExists", err)
	}
	if _, err := s.VersionKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	bk, err := s.GetActiveBranchKey(ctx, id)
	if err != nil || bk.EncryptionContext["tenant"] != "one" {
		t.Fatalf("%v %v", bk, err)
	}
}

func TestTypedErrors(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s := e.store(t, keystore.KMSConfig{KeyARN: keyA}, "ks")
	id, err := s.CreateKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ke *keystore.Error
	if _, err := s.GetActiveBranchKey(ctx, "no-such-key"); !errors.Is(err, keystore.ErrNotFound) || !errors.As(err, &ke) || ke.BranchKeyID != "no-such-key" {
		t.Errorf("unknown branch key: %v", err)
	}
	if _, err := s.GetBranchKeyVersion(ctx, id, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("unknown version: %v", err)
	}
	// Another KMS key configured: refused before any KMS call.
	wrong := e.store(t, keystore.KMSConfig{KeyARN: keyB}, "ks")
	e.kms.Emu.ResetCalls()
	if _, err := wrong.GetActiveBranchKey(ctx, id); !errors.Is(err, keystore.ErrWrongKMSKey) {
		t.Errorf("wrong KMS key: %v", err)
	}
	if _, err := wrong.VersionKey(ctx, id); !errors.Is(err, keystore.ErrWrongKMSKey) {
		t.Errorf("wrong KMS key, VersionKey: %v", err)
	}
	if n := totalCalls(e); n != 0 {
		t.Errorf("wrong KMS key: %d KMS calls, want 0", n)
	}
	// Another logical name: the encryption context differs.
	other := e.store(t, keystore.KMSConfig{KeyARN: keyA}, "other-name")
	if _, err := other.GetActiveBranchKey(ctx, id); !errors.Is(err, keystore.ErrAuthentication) {
		t.Errorf("other logical name: %v", err)
	}
	// Discovery reads but does not administer.
	disc := e.store(t, keystore.KMSConfig{Discovery: true}, "ks")
	if _, err := disc.GetActiveBranchKey(ctx, id); err != nil {
		t.Errorf("discovery read: %v", err)
	}
	if _, err := disc.CreateKey(ctx, "", nil); !errors.Is(err, keystore.ErrConfig) {
		t.Errorf("discovery CreateKey: %v", err)
	}
	// Tampered items: a changed attribute, a swapped enc, a removed attribute.
	tamper(t, e, id, "branch:ACTIVE", "create-time", &types.AttributeValueMemberS{Value: "2001-01-01T00:00:00.000000Z"})
	if _, err := s.GetActiveBranchKey(ctx, id); !errors.Is(err, keystore.ErrAuthentication) {
		t.Errorf("tampered create-time: %v", err)
	}
	if _, err := s.VersionKey(ctx, id); !errors.Is(err, keystore.ErrAuthentication) {
		t.Errorf("VersionKey of tampered item: %v", err)
	}
	tamper(t, e, id, "branch:ACTIVE", "aws-crypto-ec:added", &types.AttributeValueMemberS{Value: "x"})
	if _, err := s.GetActiveBranchKey(ctx, id); !errors.Is(err, keystore.ErrAuthentication) {
		t.Errorf("added attribute: %v", err)
	}
	tamper(t, e, id, "beacon:ACTIVE", "hierarchy-version", &types.AttributeValueMemberS{Value: "1"})
	if _, err := s.GetBeaconKey(ctx, id); !errors.Is(err, keystore.ErrInvalidItem) {
		t.Errorf("string hierarchy-version: %v", err)
	}
}

// tamper rewrites one attribute of an item directly in the table.
func tamper(t *testing.T, e *env, id, typ, attr string, v types.AttributeValue) {
	t.Helper()
	_, err := e.ddb.Client.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String("branch-keys"),
		Key: map[string]types.AttributeValue{
			"branch-key-id": &types.AttributeValueMemberS{Value: id}, "type": &types.AttributeValueMemberS{Value: typ},
		},
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": v},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVersionBytes(t *testing.T) {
	for _, v := range []string{"83eec007-5659-4554-bf11-699b90f41ac6", "00000000-0000-0000-0000-000000000000"} {
		b, err := keystore.VersionBytes(v)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := keystore.VersionString(b[:])
		if s != v {
			t.Fatalf("%s -> %s", v, s)
		}
	}
	for _, bad := range []string{"", "83eec007565945544bf11699b90f41ac6000", "83eec007-5659-4554-bf11-699b90f41ax6", "83eec007-5659-4554-bf11-699b90f41ac"} {
		if _, err := keystore.VersionBytes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func totalCalls(e *env) int64 {
	var n int64
	for _, c := range e.kms.Emu.Calls() {
		n += c
	}
	return n
}
