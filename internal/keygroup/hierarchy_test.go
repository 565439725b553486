package keygroup

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/crypto/keystore"
	"github.com/encjob/encjob/crypto/keystore/keystoretest"
	"github.com/encjob/encjob/kmsemu/kmsemutest"
	"github.com/encjob/encjob/spec"
)

const hierSeed = `
account: "111122223333"
region: us-east-1
keys:
  - id: 1234abcd-12ab-34cd-56ef-1234567890ab
  - id: 0987dcba-09fe-87dc-65ba-ab0987654321
`

const (
	branchKMS = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	plainKMS  = "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

type testStores struct{ s *keystore.Store }

func (t testStores) HierarchyKeyStore(context.Context, *spec.KeyGroup) (hierarchy.Store, error) {
	return t.s, nil
}

type emuClients struct{ srv *kmsemutest.Server }

func (c emuClients) Client(_ context.Context, region string) (awskms.API, error) {
	return c.srv.Client(region), nil
}

// TestHierarchyMixedGroup: a group of a hierarchical member and a KMS
// member encrypts under both; each member alone decrypts; labels and
// Holds come from the header alone.
func TestHierarchyMixedGroup(t *testing.T) {
	ctx := context.Background()
	emu := kmsemutest.Start(t, hierSeed)
	ddb := keystoretest.Start(t)
	ddb.CreateTable(t, "bk")
	store, err := keystore.New(keystore.Config{Table: "bk", LogicalName: "bk", KMS: keystore.KMSConfig{KeyARN: branchKMS},
		DynamoDB: ddb.Client, KMSClient: emu.Client("us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.CreateKey(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	hier := spec.KeyGroup{Provider: spec.ProviderHierarchy, KeyStore: &spec.KeyStore{Table: "bk", KMSKey: branchKMS},
		BranchKeyID: id, CacheTTL: spec.Duration{Duration: time.Minute}}
	plain := spec.KeyGroup{Provider: spec.ProviderAWSKMS, Keys: []string{plainKMS}}
	o := Options{KMS: awskms.Config{Clients: emuClients{emu}}, KeyStores: testStores{store}}
	g, err := Build(ctx, "mixed", &spec.KeyGroup{Members: []spec.KeyGroup{hier, plain}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if ids := g.KeyIDs(); len(ids) != 2 || ids[0] != "aws-kms-hierarchy/"+id || ids[1] != plainKMS {
		t.Fatalf("KeyIDs = %q", ids)
	}
	msg, err := crypto.Encrypt(ctx, []byte("mixed"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(g.Keyring)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ParseHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	active, _ := store.GetActiveBranchKey(ctx, id)
	if l := EDKLabel(h.EncryptedDataKeys[0]); l != "aws-kms-hierarchy/"+id+":"+active.Version {
		t.Errorf("label %q, want the branch key id and version", l)
	}
	for i, m := range []spec.KeyGroup{hier, plain} {
		single, err := Build(ctx, "single", &m, o)
		if err != nil {
			t.Fatal(err)
		}
		if pt, _, err := crypto.Decrypt(ctx, msg, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(single.Keyring)}); err != nil || string(pt) != "mixed" {
			t.Fatalf("member %d alone: %v", i, err)
		}
		offline, ok := Offline("o", &m)
		if !ok || !offline.Holds(h.EncryptedDataKeys[i]) || offline.Holds(h.EncryptedDataKeys[1-i]) {
			t.Errorf("offline member %d does not hold exactly its EDK", i)
		}
	}
	other := spec.KeyGroup{Provider: spec.ProviderHierarchy, KeyStore: hier.KeyStore, BranchKeyID: "other",
		CacheTTL: spec.Duration{Duration: time.Minute}}
	if g, _ := Offline("x", &other); g.HoldsAny(h.EncryptedDataKeys[:1]) {
		t.Error("a group of another branch key holds the EDK")
	}
	// After a rotation a freshly built group still holds the old message
	// (it decrypts it) but does not count it as current (re-encrypt it).
	if !g.CurrentAny(h.EncryptedDataKeys) {
		t.Fatal("a message under the active version is not current")
	}
	if _, err := store.VersionKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := Build(ctx, "hier", &hier, o)
	if err != nil {
		t.Fatal(err)
	}
	if !rebuilt.HoldsAny(h.EncryptedDataKeys) || rebuilt.CurrentAny(h.EncryptedDataKeys) {
		t.Fatal("after rotation: the old-version message must be held but not current")
	}
	fresh, err := crypto.Encrypt(ctx, []byte("new"), crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(rebuilt.Keyring)})
	if err != nil {
		t.Fatal(err)
	}
	fh, _ := crypto.ParseHeader(bytes.NewReader(fresh))
	if !rebuilt.CurrentAny(fh.EncryptedDataKeys) {
		t.Fatal("a message under the new active version is not current")
	}
	bad := hier
	bad.CacheTTL = spec.Duration{}
	if _, err := Build(ctx, "bad", &bad, o); err == nil || !strings.Contains(err.Error(), `key group "bad"`) {
		t.Errorf("no TTL: %v", err)
	}
}
