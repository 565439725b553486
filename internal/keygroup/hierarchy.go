package keygroup

import (
	"context"
	"fmt"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/crypto/keystore"
	"github.com/encjob/encjob/spec"
)

// KeyStore builds the branch key store of an aws-kms-hierarchy group (also
// used by `encjob keystore`): the KMS client from the job's KMS settings
// and the group's region, profile and endpoint; the DynamoDB client from
// keyStore.endpoint (or AWS_ENDPOINT_URL_DYNAMODB).
func KeyStore(ctx context.Context, g *spec.KeyGroup, kms awskms.Config) (*keystore.Store, error) {
	ks := g.KeyStore
	if ks == nil {
		return nil, fmt.Errorf("no keyStore")
	}
	kc := keystore.KMSConfig{KeyARN: ks.KMSKey, MRK: ks.MRK, Discovery: ks.Discovery, DiscoveryRegion: ks.DiscoveryRegion}
	o := keystore.ClientOptions{Profile: kms.Profile, Region: g.Region, KMSEndpoint: kms.Endpoint, DynamoDBEndpoint: ks.Endpoint,
		MaxAttempts: kms.MaxAttempts, Timeout: kms.Timeout, Credentials: kms.Credentials}
	if g.Profile != "" {
		o.Profile = g.Profile
	}
	if g.Endpoint != "" {
		o.KMSEndpoint = g.Endpoint
	}
	ddb, kmsAPI, err := keystore.NewClients(ctx, kc, o)
	if err != nil {
		return nil, err
	}
	return keystore.New(keystore.Config{Table: ks.Table, LogicalName: ks.EffectiveLogicalName(), KMS: kc,
		GrantTokens: g.GrantTokens, DynamoDB: ddb, KMSClient: kmsAPI})
}

// KeyStoreProvider supplies the key store of aws-kms-hierarchy groups
// instead of KeyStore (tests, embedders with their own clients).
type KeyStoreProvider interface {
	HierarchyKeyStore(ctx context.Context, g *spec.KeyGroup) (hierarchy.Store, error)
}

func buildHierarchy(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	var store hierarchy.Store
	var err error
	if o.KeyStores != nil {
		store, err = o.KeyStores.HierarchyKeyStore(ctx, g)
	} else {
		store, err = KeyStore(ctx, g, o.KMS)
	}
	if err != nil {
		return nil, fmt.Errorf("key group %q: key store: %w", name, err)
	}
	cfg := hierarchy.Config{Store: store, BranchKeyID: g.BranchKeyID, TTL: g.CacheTTL.Duration, CacheSize: g.CacheSize}
	if f := g.BranchKeyIDFrom; f != nil {
		cfg.Supplier = hierarchy.ContextKey{Key: f.ContextKey, Map: f.Map}
	}
	kr, err := hierarchy.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	_, ids, _ := offlineHierarchy(g)
	return &Group{Name: name, Spec: g, Keyring: kr, keyIDs: ids}, nil
}

// offlineHierarchy: the branch key id is in the spec (a supplier's ids
// depend on each message, so such a group holds every hierarchical EDK).
func offlineHierarchy(g *spec.KeyGroup) (crypto.EDKMatcher, []string, bool) {
	if g.BranchKeyIDFrom != nil {
		return hierarchy.NewMatcher(""), []string{hierarchy.ProviderID + "/{context " + g.BranchKeyIDFrom.ContextKey + "}"}, true
	}
	return hierarchy.NewMatcher(g.BranchKeyID), []string{hierarchy.ProviderID + "/" + g.BranchKeyID}, true
}
