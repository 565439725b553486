package main

import (
	"slices"
	"strings"

	"github.com/encjob/encjob/spec"
)

// groupSep separates the values of one multi-value flag occurrence
// (-w a b c) once normalizeMulti has folded them into one pflag value.
const groupSep = "\x1f"

// parsePairs parses "key=value" words (both sides non-empty, as
// aws-encryption-cli requires) into an ordered multimap.
func parsePairs(flag string, words []string) (map[string][]string, []string, error) {
	out := map[string][]string{}
	var order []string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" || v == "" {
			return nil, nil, usageErrorf(flag, "%q: want key=value", w)
		}
		if _, seen := out[k]; !seen {
			order = append(order, k)
		}
		out[k] = append(out[k], v)
	}
	return out, order, nil
}

// pseudoBool reads the truthy/falsy spellings aws-encryption-cli accepts.
func pseudoBool(flag, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "t", "1", "yes", "y":
		return true, nil
	case "false", "f", "0", "no", "n":
		return false, nil
	}
	return false, usageErrorf(flag, "%q could not be parsed as true or false", v)
}

// one returns the single value of key, or an error when it is repeated.
func one(flag string, m map[string][]string, key string) (string, error) {
	v := m[key]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", usageErrorf(flag, "%s given %d times; give it once", key, len(v))
}

var (
	kmsAttrs = []string{"provider", "key", "region", "profile", "discovery", "discovery-account", "discovery-partition", "grant-token", "endpoint"}
	rawAttrs = []string{"provider", "key-file", "namespace", "name", "key-encoding", "padding"}
)

// parseWrappingKeys turns the -w groups of one run into one key group.
// forEncrypt applies aws-encryption-cli's encrypt rules (keys required, no
// discovery). Several groups make one multi-key group whose first key
// generates the data key: aws-kms groups with the same region, profile
// and endpoint (and no discovery) share one member, every other group is
// a member of its own; a single member is returned as a plain group.
func parseWrappingKeys(flag string, groups [][]string, forEncrypt bool) (*spec.KeyGroup, error) {
	if len(groups) == 0 {
		return nil, usageErrorf(flag, "no wrapping key provider configuration found").
			withHint("pass e.g. %s key=arn:aws:kms:REGION:ACCOUNT:key/ID, or %s provider=raw-aes key-file=PATH namespace=NS name=NAME", flag, flag)
	}
	var members []spec.KeyGroup
	raw := map[string]bool{} // provider namespace/name of raw members
	for _, words := range groups {
		g, err := parseWrappingGroup(flag, words, forEncrypt)
		if err != nil {
			return nil, err
		}
		if i := kmsMemberFor(members, g); i >= 0 {
			m := &members[i]
			for _, k := range g.Keys {
				if !slices.Contains(m.Keys, k) {
					m.Keys = append(m.Keys, k)
				}
			}
			m.GrantTokens = append(m.GrantTokens, g.GrantTokens...)
			continue
		}
		if g.Provider != spec.ProviderAWSKMS {
			id := g.Provider + " " + g.Namespace + "/" + g.Name
			if raw[id] {
				return nil, usageErrorf(flag, "%s key namespace=%s name=%s is given twice", g.Provider, g.Namespace, g.Name)
			}
			raw[id] = true
		}
		members = append(members, *g)
	}
	if len(members) == 1 {
		return &members[0], nil
	}
	return &spec.KeyGroup{Members: members}, nil
}

// kmsMemberFor returns the index of the aws-kms member that g's keys can
// join (same region, profile and endpoint; neither a discovery group), or
// -1.
func kmsMemberFor(members []spec.KeyGroup, g *spec.KeyGroup) int {
	if g.Provider != spec.ProviderAWSKMS || g.Discovery {
		return -1
	}
	for i, m := range members {
		if m.Provider == spec.ProviderAWSKMS && !m.Discovery && m.Region == g.Region && m.Profile == g.Profile && m.Endpoint == g.Endpoint {
			return i
		}
	}
	return -1
}

func parseWrappingGroup(flag string, words []string, forEncrypt bool) (*spec.KeyGroup, error) {
	m, order, err := parsePairs(flag, words)
	if err != nil {
		return nil, err
	}
	provider, err := one(flag, m, "provider")
	if err != nil {
		return nil, usageErrorf(flag, `give exactly one "provider" per wrapping key group`)
	}
	if provider == "" {
		provider = spec.ProviderAWSKMS
	}
	g := &spec.KeyGroup{Provider: provider}
	switch provider {
	case spec.ProviderAWSKMS:
		for _, k := range order {
			if !slices.Contains(kmsAttrs, k) {
				return nil, usageErrorf(flag, "unknown attribute %q for provider aws-kms (known: %s)", k, strings.Join(kmsAttrs, ", "))
			}
		}
		g.Keys = m["key"]
		if g.Region, err = one(flag, m, "region"); err != nil {
			return nil, err
		}
		if g.Profile, err = one(flag, m, "profile"); err != nil {
			return nil, err
		}
		if g.Endpoint, err = one(flag, m, "endpoint"); err != nil {
			return nil, err
		}
		g.GrantTokens = m["grant-token"]
		_, hasDisc := m["discovery"]
		accounts, partitions := m["discovery-account"], m["discovery-partition"]
		if forEncrypt && (hasDisc || accounts != nil || partitions != nil) {
			return nil, usageErrorf(flag, "discovery attributes are supported only on decryption for AWS KMS keys")
		}
		if forEncrypt && len(g.Keys) == 0 {
			return nil, usageErrorf(flag, `at least one "key" must be provided for each wrapping key provider configuration`)
		}
		if hasDisc {
			d, err := one(flag, m, "discovery")
			if err != nil {
				return nil, err
			}
			if g.Discovery, err = pseudoBool(flag, d); err != nil {
				return nil, err
			}
		}
		if !g.Discovery && (accounts != nil || partitions != nil) {
			return nil, usageErrorf(flag, "discovery-account and discovery-partition are valid only when discovery is true")
		}
		if g.Discovery {
			if len(g.Keys) > 0 {
				return nil, usageErrorf(flag, "if discovery is true (enabled), you cannot specify wrapping keys")
			}
			switch {
			case accounts != nil && partitions == nil:
				return nil, usageErrorf(flag, "when specifying discovery-account, you must also specify discovery-partition")
			case partitions != nil && accounts == nil:
				return nil, usageErrorf(flag, "when specifying discovery-partition, you must also specify discovery-account")
			case len(partitions) > 1:
				return nil, usageErrorf(flag, "you can only specify discovery-partition once")
			case accounts != nil:
				g.DiscoveryFilter = &spec.DiscoveryFilter{Accounts: accounts, Partition: partitions[0]}
			}
		} else if len(g.Keys) == 0 {
			return nil, usageErrorf(flag, "when discovery is false (disabled), you must specify at least one wrapping key").
				withHint("add key=arn:aws:kms:REGION:ACCOUNT:key/ID, or discovery=true to decrypt with any KMS key")
		}
	case spec.ProviderRawAES, spec.ProviderRawRSA:
		for _, k := range order {
			if !slices.Contains(rawAttrs, k) {
				return nil, usageErrorf(flag, "unknown attribute %q for provider %s (known: %s)", k, provider, strings.Join(rawAttrs, ", "))
			}
		}
		fields := []struct {
			attr string
			dst  *string
		}{{"key-file", &g.KeyFile}, {"namespace", &g.Namespace}, {"name", &g.Name}, {"key-encoding", &g.KeyEncoding}, {"padding", &g.Padding}}
		for _, f := range fields {
			if *f.dst, err = one(flag, m, f.attr); err != nil {
				return nil, err
			}
		}
		for _, req := range []struct{ attr, v string }{{"key-file", g.KeyFile}, {"namespace", g.Namespace}, {"name", g.Name}} {
			if req.v == "" {
				return nil, usageErrorf(flag, "provider %s needs %s=…", provider, req.attr)
			}
		}
		if provider == spec.ProviderRawAES && g.Padding != "" {
			return nil, usageErrorf(flag, "padding is only for provider raw-rsa")
		}
		if provider == spec.ProviderRawRSA {
			if g.KeyEncoding != "" {
				return nil, usageErrorf(flag, "key-encoding is only for provider raw-aes (raw-rsa key files are PEM)")
			}
			if g.Padding == "" {
				return nil, usageErrorf(flag, "provider raw-rsa needs padding=oaep-sha1|oaep-sha256|oaep-sha384|oaep-sha512|pkcs1")
			}
		}
	default:
		return nil, usageErrorf(flag, "unknown provider %q (want aws-kms, raw-aes or raw-rsa)", provider)
	}
	return g, nil
}
