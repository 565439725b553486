// Package keygroup turns the key groups of a job spec into keyrings, and
// tells from a message header alone whether a message is under a group -
// the test the planner uses to find items already in the desired state
// without calling KMS.
package keygroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/awskms/hierarchy"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/spec"
)

// Group is a built key group. A group whose spec has members is built
// from one Group per member.
type Group struct {
	Name    string
	Spec    *spec.KeyGroup
	Keyring crypto.Keyring
	Notes   []string // things worth telling the user (resolved aliases, key-file warnings)
	keyIDs  []string // set by build; nil for a group made by hand from a spec
	members []*Group
	// current, for aws-kms-hierarchy groups with a branch key id: whether
	// an EDK is under the active version (see Current).
	current func(hierarchy.EDKInfo) bool
}

// provider is everything keygroup knows about one spec provider; the
// providers table is the one place a provider name maps to code.
type provider struct {
	// build makes the keyring of a single (member-less) group.
	build func(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error)
	// offline returns what a group can tell from its spec alone (no key
	// file read, no KMS call): its EDK matcher and key ids, or ok false
	// when only build knows them (KMS keys named by alias or id).
	offline func(g *spec.KeyGroup) (m crypto.EDKMatcher, ids []string, ok bool)
}

var providers = map[string]provider{
	spec.ProviderRawAES:    {build: buildRawAES, offline: offlineRaw(keyring.RawAESMatcher)},
	spec.ProviderRawRSA:    {build: buildRawRSA, offline: offlineRaw(keyring.RawRSAMatcher)},
	spec.ProviderAWSKMS:    {build: buildAWSKMS, offline: offlineAWSKMS},
	spec.ProviderHierarchy: {build: buildHierarchy, offline: offlineHierarchy},
	// ECDH groups match by public keys, which only build reads (asym.go).
	spec.ProviderRawECDH:    {build: buildRawECDH},
	spec.ProviderAWSKMSECDH: {build: buildKMSECDH},
	spec.ProviderAWSKMSRSA:  {build: buildKMSRSA, offline: offlineKMSRSA},
}

// Options carries settings shared by every group of a job.
type Options struct {
	KMS awskms.Config // RateLimit, RetryMode, MaxAttempts, Endpoint, Clients, Credentials
	// BaseDir resolves relative key files (the directory of the spec file).
	BaseDir string
	// KeyStores, when set, supplies the branch key stores of
	// aws-kms-hierarchy groups (nil: built from the spec and KMS).
	KeyStores KeyStoreProvider
}

// GeneratedKeyBits is the size of the AES keys generate: true creates.
const GeneratedKeyBits = 256

// Build makes the keyring of one group. KMS aliases and bare key ids are
// resolved to key ARNs here, once per job. A group with members gets a
// multi-keyring whose generator is the first member's keyring (so the
// first member's first key generates each data key) and whose children
// are the other members' keyrings; members are named NAME.members[i] in
// errors and notes.
func Build(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	if len(g.Members) == 0 {
		return buildSingle(ctx, name, g, o)
	}
	members := make([]*Group, len(g.Members))
	for i := range g.Members {
		m, err := buildSingle(ctx, MemberName(name, i), &g.Members[i], o)
		if err != nil {
			return nil, err
		}
		members[i] = m
	}
	return Combine(name, g, members)
}

// MemberName names member i of group name in errors and notes.
func MemberName(name string, i int) string { return fmt.Sprintf("%s.members[%d]", name, i) }

// Combine makes the group of g, a spec with members, from members[i]
// built for g.Members[i] (by Build, or by hand for matching only). Its
// keyring is a multi-keyring over the members' keyrings, generator first;
// when any member has no keyring (a group built only to match EDKs) the
// combined group has none either. Notes are the members' notes in order.
func Combine(name string, g *spec.KeyGroup, members []*Group) (*Group, error) {
	if len(members) == 0 || len(members) != len(g.Members) {
		return nil, fmt.Errorf("key group %q: %d members built for %d in the spec", name, len(members), len(g.Members))
	}
	out := &Group{Name: name, Spec: g, members: members}
	var krs []crypto.Keyring
	for _, m := range members {
		out.Notes = append(out.Notes, m.Notes...)
		if m.Keyring != nil {
			krs = append(krs, m.Keyring)
		}
	}
	if len(krs) == len(members) {
		kr, err := keyring.NewMulti(krs[0], krs[1:]...)
		if err != nil {
			return nil, fmt.Errorf("key group %q: %w", name, err)
		}
		out.Keyring = kr
	}
	return out, nil
}

// Members returns the built members of a group with members, in order,
// or nil.
func (g *Group) Members() []*Group { return append([]*Group(nil), g.members...) }

func buildSingle(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	p, ok := providers[g.Provider]
	if !ok {
		return nil, fmt.Errorf("key group %q: unknown provider %q", name, g.Provider)
	}
	return p.build(ctx, name, g, o)
}

// rawKeyID is the key id of raw keys in logs and metadata.
func rawKeyID(g *spec.KeyGroup) []string { return []string{g.Namespace + "/" + g.Name} }

func offlineRaw(matcher func(namespace, name string) crypto.EDKMatcher) func(*spec.KeyGroup) (crypto.EDKMatcher, []string, bool) {
	return func(g *spec.KeyGroup) (crypto.EDKMatcher, []string, bool) {
		return matcher(g.Namespace, g.Name), rawKeyID(g), true
	}
}

func buildRawAES(_ context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	out := &Group{Name: name, Spec: g, keyIDs: rawKeyID(g)}
	path := resolvePath(o.BaseDir, g.KeyFile)
	if g.Generate {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			// Build never writes (plan, check and validate build
			// groups too): the key is made by GenerateKeys, which
			// apply calls before its first item.
			out.Keyring = &deferredKeyring{group: name, path: path, spec: g}
			out.Notes = append(out.Notes, fmt.Sprintf("key group %q: will generate a %d-bit AES key at %s (mode 0600) on apply", name, GeneratedKeyBits, path))
			return out, nil
		}
	}
	key, warnings, err := keyring.LoadAESKeyFile(path, g.KeyEncoding)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	for _, w := range warnings {
		out.Notes = append(out.Notes, fmt.Sprintf("key group %q: %s", name, w))
	}
	kr, err := keyring.NewRawAES(g.Namespace, g.Name, key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	out.Keyring = kr
	return out, nil
}

func buildRawRSA(_ context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	path := resolvePath(o.BaseDir, g.KeyFile)
	pad, err := keyring.ParsePadding(g.Padding)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	priv, err := keyring.LoadRSAPrivateKeyPEM(path)
	var kr *keyring.RawRSA
	if err == nil {
		// A private key holds its public half: the group encrypts and
		// decrypts (REFERENCE.md: "public or private to encrypt"), as
		// the Python ESDK's raw RSA master key does with a private key.
		kr, err = keyring.NewRawRSA(g.Namespace, g.Name, priv, &priv.PublicKey, pad)
	} else if pub, perr := keyring.LoadRSAPublicKeyPEM(path); perr == nil {
		// A public key can encrypt but never decrypt.
		kr, err = keyring.NewRawRSA(g.Namespace, g.Name, nil, pub, pad)
	}
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	return &Group{Name: name, Spec: g, Keyring: kr, keyIDs: rawKeyID(g)}, nil
}

// kmsDiscoveryID is the key id of an aws-kms discovery group.
const kmsDiscoveryID = "aws-kms discovery"

func kmsFilter(g *spec.KeyGroup) *awskms.DiscoveryFilter {
	if g.DiscoveryFilter == nil {
		return nil
	}
	return &awskms.DiscoveryFilter{Accounts: g.DiscoveryFilter.Accounts, Partition: g.DiscoveryFilter.Partition}
}

func buildAWSKMS(ctx context.Context, name string, g *spec.KeyGroup, o Options) (*Group, error) {
	cfg := o.KMS
	cfg.Keys = g.Keys
	cfg.Discovery = g.Discovery
	cfg.DiscoveryFilter = kmsFilter(g)
	cfg.GrantTokens = g.GrantTokens
	if g.Region != "" {
		cfg.Region = g.Region
		if g.Discovery {
			cfg.DiscoveryRegion = g.Region
		}
	}
	if g.Profile != "" {
		cfg.Profile = g.Profile
	}
	if g.Endpoint != "" {
		cfg.Endpoint = g.Endpoint
	}
	kr, err := awskms.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("key group %q: %w", name, err)
	}
	out := &Group{Name: name, Spec: g, Keyring: kr}
	if g.Discovery {
		out.keyIDs = []string{kmsDiscoveryID}
	}
	for _, r := range kr.Resolved() {
		out.keyIDs = append(out.keyIDs, r.ARN)
		if r.Input != r.ARN {
			out.Notes = append(out.Notes, fmt.Sprintf("key group %q: %s resolved to %s", name, r.Input, r.ARN))
		}
	}
	return out, nil
}

// offlineAWSKMS: discovery groups and groups listing key ARNs only.
func offlineAWSKMS(g *spec.KeyGroup) (crypto.EDKMatcher, []string, bool) {
	var keys []string
	if !g.Discovery {
		keys = g.Keys
	}
	m, err := awskms.NewMatcher(keys, g.Discovery, kmsFilter(g))
	if err != nil {
		return nil, nil, false
	}
	if g.Discovery {
		return m, []string{kmsDiscoveryID}, true
	}
	return m, append([]string(nil), keys...), true
}

// Offline makes the group of a single (member-less) spec g for matching
// EDKs and listing key ids only, from the spec alone: no key file is read
// and no KMS call is made. It reports false when the spec alone cannot
// tell (KMS keys named by alias or key id: use Build, which resolves
// them). The group has no keyring.
func Offline(name string, g *spec.KeyGroup) (*Group, bool) {
	p, ok := providers[g.Provider]
	if !ok || p.offline == nil || len(g.Members) > 0 {
		return nil, false
	}
	if _, _, ok := p.offline(g); !ok {
		return nil, false
	}
	return &Group{Name: name, Spec: g}, true
}

// Pending lists the key files GenerateKeys would create (generate: true,
// file missing when the group was built), members' included.
func (g *Group) Pending() []string {
	var paths []string
	for _, d := range g.deferred() {
		if d.pending() {
			paths = append(paths, d.path)
		}
	}
	return paths
}

// GenerateKeys creates every pending key file of the group (see Pending):
// missing parent directories with mode 0700, the file with mode 0600 and
// a fresh 256-bit key; the group's keyring then uses it. It returns one
// note per file created and is idempotent; a key file that appeared in
// the meantime (another run) is used, not replaced.
func (g *Group) GenerateKeys() (notes []string, err error) {
	for _, d := range g.deferred() {
		created, err := d.generate()
		if err != nil {
			return notes, err
		}
		if created {
			notes = append(notes, fmt.Sprintf("key group %q: generated a new %d-bit AES key at %s (mode 0600)", d.group, GeneratedKeyBits, d.path))
		}
	}
	return notes, nil
}

func (g *Group) deferred() []*deferredKeyring {
	if len(g.members) > 0 {
		var ds []*deferredKeyring
		for _, m := range g.members {
			ds = append(ds, m.deferred()...)
		}
		return ds
	}
	if d, ok := g.Keyring.(*deferredKeyring); ok {
		return []*deferredKeyring{d}
	}
	return nil
}

// deferredKeyring is the keyring of a raw-aes group whose key file apply
// will generate. Until GenerateKeys runs it refuses every operation with
// an error naming the file (a plan needs the group to match headers, but
// never its key); afterwards it is the raw AES keyring of the new key.
// Keeping one keyring value lets materials managers built at Prepare time
// use the key once it exists.
type deferredKeyring struct {
	group, path string
	spec        *spec.KeyGroup

	mu sync.RWMutex
	kr crypto.Keyring
}

// MatchesEDK implements crypto.EDKMatcher before and after the key exists.
func (d *deferredKeyring) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	return keyring.RawAESMatcher(d.spec.Namespace, d.spec.Name).MatchesEDK(edk)
}

func (d *deferredKeyring) pending() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.kr == nil
}

func (d *deferredKeyring) generate() (created bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kr != nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(d.path), 0o700); err != nil {
		return false, fmt.Errorf("key group %q: generating %s: %w", d.group, d.path, err)
	}
	switch err := keyring.GenerateAESKeyFile(d.path, GeneratedKeyBits); {
	case err == nil:
		created = true
	case !errors.Is(err, fs.ErrExist):
		return false, fmt.Errorf("key group %q: generating %s: %w", d.group, d.path, err)
	}
	key, _, err := keyring.LoadAESKeyFile(d.path, d.spec.KeyEncoding)
	if err != nil {
		return created, fmt.Errorf("key group %q: %w", d.group, err)
	}
	kr, err := keyring.NewRawAES(d.spec.Namespace, d.spec.Name, key)
	clear(key)
	if err != nil {
		return created, fmt.Errorf("key group %q: %w", d.group, err)
	}
	d.kr = kr
	return created, nil
}

func (d *deferredKeyring) keyring() (crypto.Keyring, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.kr == nil {
		return nil, fmt.Errorf("key group %q: key file %s does not exist yet (apply generates it)", d.group, d.path)
	}
	return d.kr, nil
}

func (d *deferredKeyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	kr, err := d.keyring()
	if err != nil {
		return err
	}
	return kr.OnEncrypt(ctx, m)
}

func (d *deferredKeyring) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	kr, err := d.keyring()
	if err != nil {
		return err
	}
	return kr.OnDecrypt(ctx, m, edks)
}

func resolvePath(base, p string) string {
	if p == "" || base == "" || strings.HasPrefix(p, "/") {
		return p
	}
	return base + "/" + p
}

// Holds reports whether edk was made by a key of this group, from the EDK
// alone (no KMS call): the group's keyring answers (crypto.EDKMatcher).
// Discovery groups hold every aws-kms EDK their filter allows.
//
// A group with members holds edk when any member does. A Group made by
// hand from a spec alone ({Name, Spec}, or Offline) answers from the spec
// where that is possible (see Offline) and holds nothing otherwise.
func (g *Group) Holds(edk crypto.EncryptedDataKey) bool {
	if len(g.Spec.Members) > 0 {
		for _, m := range g.memberGroups() {
			if m.Holds(edk) {
				return true
			}
		}
		return false
	}
	if m, ok := g.Keyring.(crypto.EDKMatcher); ok {
		return m.MatchesEDK(edk)
	}
	if p, ok := providers[g.Spec.Provider]; ok && p.offline != nil {
		if m, _, ok := p.offline(g.Spec); ok {
			return m.MatchesEDK(edk)
		}
	}
	return false
}

// HoldsAny reports whether any EDK of a header is under this group.
func (g *Group) HoldsAny(edks []crypto.EncryptedDataKey) bool {
	for _, e := range edks {
		if g.Holds(e) {
			return true
		}
	}
	return false
}

// memberGroups returns the built members, or views of the spec's members
// when the group was made by hand from a spec.
func (g *Group) memberGroups() []*Group {
	if g.members != nil {
		return g.members
	}
	out := make([]*Group, len(g.Spec.Members))
	for i := range g.Spec.Members {
		out[i] = &Group{Name: MemberName(g.Name, i), Spec: &g.Spec.Members[i]}
	}
	return out
}

// KeyIDs lists the key identities of the group, for logs and metadata:
// for a group with members, every member's, in order.
func (g *Group) KeyIDs() []string {
	s := g.Spec
	if len(s.Members) > 0 {
		var ids []string
		for _, m := range g.memberGroups() {
			ids = append(ids, m.KeyIDs()...)
		}
		return ids
	}
	if g.keyIDs != nil {
		return append([]string(nil), g.keyIDs...)
	}
	if p, ok := providers[s.Provider]; ok && p.offline != nil {
		if _, ids, ok := p.offline(s); ok {
			return ids
		}
	}
	return nil
}

// EDKLabel renders an EDK's key identity for humans and metadata logs:
// the KMS key ARN, or namespace/name for raw keys.
func EDKLabel(edk crypto.EncryptedDataKey) string {
	if edk.ProviderID == awskms.ProviderID || edk.ProviderID == awskms.ProviderIDRSA {
		return string(edk.ProviderInfo)
	}
	if info, err := hierarchy.ParseEDK(edk); err == nil {
		return info.Label() // branch key id and version, from the header
	}
	if l, ok := keyring.ECDHEDKLabel(edk); ok {
		return l
	}
	if p, ok := keyring.ParseRawAESProviderInfo(edk.ProviderInfo, len(edk.ProviderInfo)-20); ok && p.KeyName != "" && p.TagLenBits == 128 {
		return edk.ProviderID + "/" + p.KeyName
	}
	return edk.ProviderID + "/" + string(edk.ProviderInfo)
}
