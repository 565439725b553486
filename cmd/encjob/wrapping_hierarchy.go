package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/encjob/encjob/spec"
)

// hierAttrs are the -w attributes of provider=aws-kms-hierarchy.
var hierAttrs = []string{"provider", "table", "logical-name", "kms-key", "mrk", "discovery", "discovery-region",
	"dynamodb-endpoint", "branch-key-id", "branch-key-id-from", "cache-ttl", "cache-size",
	"region", "profile", "endpoint", "grant-token"}

// parseHierarchyGroup reads -w provider=aws-kms-hierarchy table=T
// kms-key=ARN (branch-key-id=ID | branch-key-id-from=CONTEXT-KEY)
// cache-ttl=10m …; the spec's validation checks the combination.
func parseHierarchyGroup(flag string, m map[string][]string, order []string) (*spec.KeyGroup, error) {
	for _, k := range order {
		if !slices.Contains(hierAttrs, k) {
			return nil, usageErrorf(flag, "unknown attribute %q for provider aws-kms-hierarchy (known: %s)", k, strings.Join(hierAttrs, ", "))
		}
	}
	g := &spec.KeyGroup{Provider: spec.ProviderHierarchy, KeyStore: &spec.KeyStore{}, GrantTokens: m["grant-token"]}
	var from, ttl, size, mrk, disc string
	for _, f := range []struct {
		attr string
		dst  *string
	}{
		{"table", &g.KeyStore.Table}, {"logical-name", &g.KeyStore.LogicalName}, {"kms-key", &g.KeyStore.KMSKey},
		{"discovery-region", &g.KeyStore.DiscoveryRegion}, {"dynamodb-endpoint", &g.KeyStore.Endpoint},
		{"branch-key-id", &g.BranchKeyID}, {"branch-key-id-from", &from}, {"cache-ttl", &ttl}, {"cache-size", &size},
		{"region", &g.Region}, {"profile", &g.Profile}, {"endpoint", &g.Endpoint}, {"mrk", &mrk}, {"discovery", &disc},
	} {
		v, err := one(flag, m, f.attr)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	var err error
	if mrk != "" {
		if g.KeyStore.MRK, err = pseudoBool(flag, mrk); err != nil {
			return nil, err
		}
	}
	if disc != "" {
		if g.KeyStore.Discovery, err = pseudoBool(flag, disc); err != nil {
			return nil, err
		}
	}
	if from != "" {
		g.BranchKeyIDFrom = &spec.BranchKeyIDFrom{ContextKey: from}
	}
	if ttl == "" {
		return nil, usageErrorf(flag, "provider aws-kms-hierarchy needs cache-ttl=DURATION (e.g. 10m): how long a branch key is used from the cache")
	}
	d, err := time.ParseDuration(ttl)
	if err != nil || d <= 0 {
		return nil, usageErrorf(flag, "cache-ttl=%s: want a positive duration such as 10m", ttl)
	}
	g.CacheTTL = spec.Duration{Duration: d}
	if size != "" {
		if g.CacheSize, err = strconv.Atoi(size); err != nil || g.CacheSize < 0 {
			return nil, usageErrorf(flag, "cache-size=%s: want a number of entries", size)
		}
	}
	if g.KeyStore.Table == "" {
		return nil, usageErrorf(flag, "provider aws-kms-hierarchy needs table=… (the key store's DynamoDB table)")
	}
	if g.BranchKeyID == "" && from == "" {
		return nil, usageErrorf(flag, "provider aws-kms-hierarchy needs branch-key-id=ID or branch-key-id-from=CONTEXT-KEY")
	}
	return g, nil
}
