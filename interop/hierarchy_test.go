package interop_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/crypto/keystore"
	"github.com/encjob/encjob/crypto/keystore/keystoretest"
	"github.com/encjob/encjob/interop/goesdk"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
)

const hierSeed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
  - id: 0987dcba-09fe-87dc-65ba-ab0987654321
`

const (
	hierKey   = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	hierOther = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
	hierTable = "branch-keys"
)

type hierEnv struct {
	ddb  *keystoretest.Server
	kms  *kmsemutest.Server
	ours *keystore.Store
	mpl  goesdk.KeyStore
}

func newHierEnv(t *testing.T) *hierEnv {
	t.Helper()
	e := &hierEnv{kms: kmsemutest.Start(t, hierSeed), ddb: keystoretest.Start(t)}
	e.ddb.CreateTable(t, hierTable)
	e.ours = e.store(t, hierKey)
	e.mpl = goesdk.KeyStore{Table: hierTable, LogicalName: "interop-ks", KMSKeyARN: hierKey,
		DynamoDB: e.ddb.Client, KMS: e.kms.Client("us-east-1")}
	return e
}

func (e *hierEnv) store(t *testing.T, kmsKey string) *keystore.Store {
	t.Helper()
	s, err := keystore.New(keystore.Config{Table: hierTable, LogicalName: "interop-ks",
		KMS: keystore.KMSConfig{KeyARN: kmsKey}, DynamoDB: e.ddb.Client, KMSClient: e.kms.Client("us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hierVersion(t *testing.T, msg []byte) hierarchy.EDKInfo {
	t.Helper()
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.EncryptedDataKeys) != 1 {
		t.Fatalf("%d EDKs, want 1", len(h.EncryptedDataKeys))
	}
	info, err := hierarchy.ParseEDK(h.EncryptedDataKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestHierarchyGoESDK: the official Go ESDK's hierarchical keyring and
// encjob's, over one key store, read each other's messages, for branch keys
// created (and rotated) by either key store implementation; after a
// rotation old-version messages still decrypt on both sides and new ones
// use the new version.
func TestHierarchyGoESDK(t *testing.T) {
	e := newHierEnv(t)
	ctx := context.Background()
	mks, err := goesdk.NewKeyStore(e.mpl)
	if err != nil {
		t.Fatal(err)
	}
	byMPL, err := goesdk.CreateBranchKey(ctx, mks, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	byUs, err := e.ours.CreateKey(ctx, "tenant-7", map[string]string{"tenant": "7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{byMPL, byUs} {
		t.Run(id, func(t *testing.T) {
			ours, err := hierarchy.New(hierarchy.Config{Store: e.ours, BranchKeyID: id, TTL: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			theirs := func() goesdkRing {
				kr, err := goesdk.HierarchicalKeyring(ctx, mks, id, 60) // a new keyring (and cache) per use
				if err != nil {
					t.Fatal(err)
				}
				return goesdkRing{kr}
			}
			v1, err := goesdk.ActiveVersion(ctx, mks, id)
			if err != nil {
				t.Fatal(err)
			}
			oldTheirs, oldOurs := crossCheck(t, ours, theirs(), v1)
			// Rotate with the other implementation than the creator.
			var v2 string
			if id == byMPL {
				if v2, err = e.ours.VersionKey(ctx, id); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := goesdk.VersionBranchKey(ctx, mks, id); err != nil {
					t.Fatal(err)
				}
				if v2, err = goesdk.ActiveVersion(ctx, mks, id); err != nil {
					t.Fatal(err)
				}
			}
			if v2 == v1 {
				t.Fatal("rotation kept the version")
			}
			time.Sleep(time.Millisecond) // past our keyring's 1 ns TTL
			crossCheck(t, ours, theirs(), v2)
			for _, old := range [][]byte{oldTheirs, oldOurs} {
				if hierVersion(t, old).Version != v1 {
					t.Fatal("old message not under the old version")
				}
				if pt, _, err := goesdk.DecryptWith(ctx, theirs().kr, old, goesdk.Options{}); err != nil || string(pt) != "hello hierarchy" {
					t.Errorf("Go ESDK, old-version message after rotation: %v", err)
				}
				if pt, _, err := crypto.Decrypt(ctx, old, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(ours)}); err != nil || string(pt) != "hello hierarchy" {
					t.Errorf("encjob, old-version message after rotation: %v", err)
				}
			}
		})
	}
}

type goesdkRing struct{ kr mpltypes.IKeyring }

func (g goesdkRing) mplKeyring() mpltypes.IKeyring { return g.kr }

// crossCheck: each side encrypts, the other decrypts; both messages are
// under version want. Returns the Go ESDK's and encjob's messages.
func crossCheck(t *testing.T, ours *hierarchy.Keyring, theirs goesdkRing, want string) (fromTheirs, fromOurs []byte) {
	t.Helper()
	ctx := context.Background()
	ec := map[string]string{"purpose": "interop", "n": "1"}
	kr := theirs.mplKeyring()
	fromTheirs, _, err := goesdk.EncryptWith(ctx, kr, []byte("hello hierarchy"), goesdk.Options{Context: ec})
	if err != nil {
		t.Fatal(err)
	}
	pt, _, err := crypto.Decrypt(ctx, fromTheirs, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(ours)})
	if err != nil || string(pt) != "hello hierarchy" {
		t.Fatalf("encjob decrypting the Go ESDK's message: %q %v", pt, err)
	}
	fromOurs, err = crypto.Encrypt(ctx, []byte("hello hierarchy"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(ours), Context: ec})
	if err != nil {
		t.Fatal(err)
	}
	pt, _, err = goesdk.DecryptWith(ctx, kr, fromOurs, goesdk.Options{})
	if err != nil || string(pt) != "hello hierarchy" {
		t.Fatalf("Go ESDK decrypting encjob's message: %q %v", pt, err)
	}
	for who, m := range map[string][]byte{"Go ESDK": fromTheirs, "encjob": fromOurs} {
		if v := hierVersion(t, m).Version; v != want {
			t.Errorf("%s's message under version %s, want %s", who, v, want)
		}
	}
	return fromTheirs, fromOurs
}

// TestHierarchyGoESDKNegative: typed errors from encjob's key store for
// branch keys the MPL created: unknown branch key, tampered item, wrong KMS
// key for the store.
func TestHierarchyGoESDKNegative(t *testing.T) {
	e := newHierEnv(t)
	ctx := context.Background()
	mks, err := goesdk.NewKeyStore(e.mpl)
	if err != nil {
		t.Fatal(err)
	}
	id, err := goesdk.CreateBranchKey(ctx, mks, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := goesdk.HierarchicalKeyring(ctx, mks, id, 60)
	msg, _, err := goesdk.EncryptWith(ctx, kr, []byte("x"), goesdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	decryptWith := func(s *keystore.Store, id string) error {
		ours, err := hierarchy.New(hierarchy.Config{Store: s, BranchKeyID: id, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(ours)})
		return err
	}
	if err := decryptWith(e.store(t, hierOther), id); !errors.Is(err, keystore.ErrWrongKMSKey) {
		t.Errorf("wrong KMS key for the store: %v", err)
	}
	if _, err := e.ours.GetActiveBranchKey(ctx, "no-such-branch-key"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("unknown branch key: %v", err)
	}
	// The message's version item, with one attribute changed.
	v := hierVersion(t, msg).Version
	_, err = e.ddb.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(hierTable),
		Key: map[string]types.AttributeValue{"branch-key-id": &types.AttributeValueMemberS{Value: id},
			"type": &types.AttributeValueMemberS{Value: "branch:version:" + v}},
		UpdateExpression:          aws.String("SET #c = :c"),
		ExpressionAttributeNames:  map[string]string{"#c": "create-time"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "1999-01-01T00:00:00.000000Z"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = decryptWith(e.ours, id)
	var ke *keystore.Error
	if !errors.Is(err, keystore.ErrAuthentication) || !errors.As(err, &ke) || ke.Version != v {
		t.Errorf("tampered item: %v", err)
	}
	// The MPL refuses it too.
	if _, _, err := goesdk.DecryptWith(ctx, kr, msg, goesdk.Options{}); err == nil {
		t.Error("the Go ESDK decrypted with a tampered item")
	}
}
