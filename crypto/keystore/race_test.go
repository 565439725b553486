package keystore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/encjob/encjob/crypto/keystore"
)

// racingDDB runs another rotation right before the first
// TransactWriteItems, as a second administrator would.
type racingDDB struct {
	keystore.DynamoDBAPI
	other func()
	done  bool
}

func (r *racingDDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if !r.done {
		r.done = true
		r.other()
	}
	return r.DynamoDBAPI.TransactWriteItems(ctx, in, o...)
}

// TestVersionKeyRace: a rotation that lost the race to another one fails
// with ErrConflict (the active item changed since it was read) and leaves
// the winner's version active, as the real DynamoDB condition does.
func TestVersionKeyRace(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s := e.store(t, keystore.KMSConfig{KeyARN: keyA}, "ks")
	id, err := s.CreateKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var winner string
	race := &racingDDB{DynamoDBAPI: e.ddb.Client, other: func() {
		v, err := s.VersionKey(ctx, id)
		if err != nil {
			t.Errorf("the winning rotation: %v", err)
		}
		winner = v
	}}
	loser, err := keystore.New(keystore.Config{Table: "branch-keys", LogicalName: "ks", KMS: keystore.KMSConfig{KeyARN: keyA},
		DynamoDB: race, KMSClient: e.kms.Client("us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loser.VersionKey(ctx, id); !errors.Is(err, keystore.ErrConflict) {
		t.Fatalf("the losing rotation: %v, want ErrConflict", err)
	}
	if v, err := s.ActiveVersion(ctx, id); err != nil || v != winner {
		t.Fatalf("active version %s (%v), want the winner's %s", v, err, winner)
	}
	d, err := s.Describe(ctx, id)
	if err != nil || len(d.Versions) != 2 {
		t.Fatalf("describe after the race: %+v %v (want 2 versions: the loser wrote nothing)", d, err)
	}
}
