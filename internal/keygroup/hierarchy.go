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
	out := &Group{Name: name, Spec: g, Keyring: kr, keyIDs: ids}
	if g.BranchKeyID != "" {
		// What encryption under this group would produce now: the
		// active version (a DynamoDB read, no KMS call). Unknown, no
		// message counts as current, so nothing is wrongly left under
		// an old version.
		out.current = func(hierarchy.EDKInfo) bool { return false }
		if av, ok := store.(interface {
			ActiveVersion(ctx context.Context, id string) (string, error)
		}); ok {
			if v, err := av.ActiveVersion(ctx, g.BranchKeyID); err == nil {
				out.current = func(i hierarchy.EDKInfo) bool { return i.BranchKeyID == g.BranchKeyID && i.Version == v }
			} else {
				out.Notes = append(out.Notes, fmt.Sprintf("key group %q: active version of branch key %q unknown (%v): every message under it counts as to be re-encrypted", name, g.BranchKeyID, err))
			}
		}
	}
	return out, nil
}

// Current reports whether edk is what encrypting under the group would
// write now: for an aws-kms-hierarchy group with a branch key id, an EDK
// of the branch key's active version (read when the group was built); for
// every other group (and a branch key id supplier, whose active versions
// depend on each message) the same as Holds. The planner uses it to tell
// that a message is already in the desired state.
func (g *Group) Current(edk crypto.EncryptedDataKey) bool {
	if len(g.members) > 0 {
		for _, m := range g.members {
			if m.Current(edk) {
				return true
			}
		}
		return false
	}
	if g.current != nil {
		info, err := hierarchy.ParseEDK(edk)
		return err == nil && g.current(info)
	}
	return g.Holds(edk)
}

// CurrentAny reports whether any EDK of a header is Current.
func (g *Group) CurrentAny(edks []crypto.EncryptedDataKey) bool {
	for _, e := range edks {
		if g.Current(e) {
			return true
		}
	}
	return false
}

// offlineHierarchy: the branch key id is in the spec (a supplier's ids
// depend on each message, so such a group holds every hierarchical EDK).
func offlineHierarchy(g *spec.KeyGroup) (crypto.EDKMatcher, []string, bool) {
	if g.BranchKeyIDFrom != nil {
		return hierarchy.NewMatcher(""), []string{hierarchy.ProviderID + "/{context " + g.BranchKeyIDFrom.ContextKey + "}"}, true
	}
	return hierarchy.NewMatcher(g.BranchKeyID), []string{hierarchy.ProviderID + "/" + g.BranchKeyID}, true
}
