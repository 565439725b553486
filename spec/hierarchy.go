package spec

// KeyStore is the branch key store of an aws-kms-hierarchy key group: a
// DynamoDB table in the AWS Cryptographic Material Providers Library's
// format.
type KeyStore struct {
	Table string `json:"table" yaml:"table"` // required
	// LogicalName is bound into every branch key's KMS encryption context;
	// it must be the name the key store was created with. Default: Table.
	LogicalName string `json:"logicalName,omitempty" yaml:"logicalName,omitempty"`
	// KMSKey is the key ARN protecting the branch keys (required unless
	// Discovery).
	KMSKey string `json:"kmsKey,omitempty" yaml:"kmsKey,omitempty"`
	// MRK accepts branch keys protected by a replica of KMSKey.
	MRK bool `json:"mrk,omitempty" yaml:"mrk,omitempty"`
	// Discovery uses whichever KMS key each branch key names (read only:
	// no keystore create-key / version-key).
	Discovery       bool   `json:"discovery,omitempty" yaml:"discovery,omitempty"`
	DiscoveryRegion string `json:"discoveryRegion,omitempty" yaml:"discoveryRegion,omitempty"`
	// Endpoint is the DynamoDB endpoint URL; "" = the SDK's.
	Endpoint string `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
}

// EffectiveLogicalName is LogicalName, or Table when it is empty.
func (k *KeyStore) EffectiveLogicalName() string {
	if k.LogicalName != "" {
		return k.LogicalName
	}
	return k.Table
}

// BranchKeyIDFrom chooses each message's branch key from its encryption
// context: the value of ContextKey is the branch key id, or, with Map, is
// looked up there.
type BranchKeyIDFrom struct {
	ContextKey string            `json:"contextKey" yaml:"contextKey"`
	Map        map[string]string `json:"map,omitempty" yaml:"map,omitempty"`
}

// validateHierarchy checks an aws-kms-hierarchy group.
func (g *KeyGroup) validateHierarchy(p *Path) ErrorList {
	var errs ErrorList
	if g.KeyStore == nil {
		errs = append(errs, Required(p.Child("keyStore"), "the branch key store: {table: NAME, kmsKey: KEY-ARN}"))
	} else {
		errs = append(errs, g.KeyStore.validate(p.Child("keyStore"))...)
	}
	switch {
	case g.BranchKeyID == "" && g.BranchKeyIDFrom == nil:
		errs = append(errs, Required(p.Child("branchKeyId"), "the branch key id, or branchKeyIdFrom: {contextKey: KEY}"))
	case g.BranchKeyID != "" && g.BranchKeyIDFrom != nil:
		errs = append(errs, Forbidden(p.Child("branchKeyIdFrom"), "set branchKeyId or branchKeyIdFrom, not both"))
	case g.BranchKeyIDFrom != nil:
		f := g.BranchKeyIDFrom
		if f.ContextKey == "" {
			errs = append(errs, Required(p.Child("branchKeyIdFrom").Child("contextKey"), "the encryption context key whose value chooses the branch key"))
		}
		for v, id := range f.Map {
			if id == "" {
				errs = append(errs, Required(p.Child("branchKeyIdFrom").Child("map").Key(v), "a branch key id"))
			}
		}
	}
	if g.CacheTTL.Duration <= 0 {
		errs = append(errs, Required(p.Child("cacheTTL"), "how long a branch key is used from the cache, e.g. 10m (required by the hierarchical keyring)"))
	}
	if g.CacheSize < 0 {
		errs = append(errs, Invalid(p.Child("cacheSize"), g.CacheSize, "must not be negative (0 = 1000 entries)"))
	}
	for i, t := range g.GrantTokens {
		if t == "" {
			errs = append(errs, Required(p.Child("grantTokens").Index(i), "remove empty grant tokens"))
		}
	}
	if e := validateEndpoint(p.Child("endpoint"), g.Endpoint); e != nil {
		errs = append(errs, e)
	}
	only := "not for provider aws-kms-hierarchy"
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"keys", len(g.Keys) > 0}, {"discovery", g.Discovery}, {"discoveryFilter", g.DiscoveryFilter != nil},
		{"keyFile", g.KeyFile != ""}, {"keyEncoding", g.KeyEncoding != ""}, {"namespace", g.Namespace != ""},
		{"name", g.Name != ""}, {"padding", g.Padding != ""}, {"generate", g.Generate},
	} {
		if f.set {
			errs = append(errs, Forbidden(p.Child(f.name), only+" (the key store says which KMS key protects branch keys: keyStore.kmsKey or keyStore.discovery)"))
		}
	}
	return errs
}

func (k *KeyStore) validate(p *Path) ErrorList {
	var errs ErrorList
	if k.Table == "" {
		errs = append(errs, Required(p.Child("table"), "the DynamoDB table of the branch key store"))
	}
	switch {
	case k.Discovery && k.KMSKey != "":
		errs = append(errs, Forbidden(p.Child("kmsKey"), "set kmsKey or discovery: true, not both"))
	case k.Discovery:
		if k.MRK {
			errs = append(errs, Forbidden(p.Child("mrk"), "only with kmsKey; with discovery use discoveryRegion"))
		}
	case k.KMSKey == "":
		errs = append(errs, Required(p.Child("kmsKey"), "the KMS key ARN protecting the branch keys, or discovery: true"))
	case !kmsKeyARN.MatchString(k.KMSKey):
		errs = append(errs, Invalid(p.Child("kmsKey"), k.KMSKey, "want a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); a key store cannot use an alias"))
	}
	if k.DiscoveryRegion != "" && !k.Discovery {
		errs = append(errs, Forbidden(p.Child("discoveryRegion"), "only with discovery: true"))
	}
	if e := validateEndpoint(p.Child("endpoint"), k.Endpoint); e != nil {
		errs = append(errs, e)
	}
	return errs
}

// forbidHierarchyFields rejects aws-kms-hierarchy fields on other groups.
func (g *KeyGroup) forbidHierarchyFields(p *Path, why string) ErrorList {
	var errs ErrorList
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"keyStore", g.KeyStore != nil}, {"branchKeyId", g.BranchKeyID != ""}, {"branchKeyIdFrom", g.BranchKeyIDFrom != nil},
		{"cacheTTL", g.CacheTTL.Duration != 0}, {"cacheSize", g.CacheSize != 0},
	} {
		if f.set {
			errs = append(errs, Forbidden(p.Child(f.name), why))
		}
	}
	return errs
}

// hierarchyOnly is the reason hierarchy fields are forbidden elsewhere.
const hierarchyOnly = "only for provider " + ProviderHierarchy
