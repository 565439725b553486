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
// generates the data key; they must share a provider (and, for aws-kms,
// region and profile), since a key group has one provider.
func parseWrappingKeys(flag string, groups [][]string, forEncrypt bool) (*spec.KeyGroup, error) {
	if len(groups) == 0 {
		return nil, usageErrorf(flag, "no wrapping key provider configuration found").
			withHint("pass e.g. %s key=arn:aws:kms:REGION:ACCOUNT:key/ID, or %s provider=raw-aes key-file=PATH namespace=NS name=NAME", flag, flag)
	}
	var out *spec.KeyGroup
	for _, words := range groups {
		g, err := parseWrappingGroup(flag, words, forEncrypt)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = g
			continue
		}
		switch {
		case g.Provider != out.Provider:
			return nil, usageErrorf(flag, "groups of providers %s and %s in one run are not supported: a key group has one provider", out.Provider, g.Provider)
		case g.Provider != spec.ProviderAWSKMS:
			return nil, usageErrorf(flag, "only one %s wrapping key per run is supported", g.Provider)
		case g.Discovery || out.Discovery:
			return nil, usageErrorf(flag, "a discovery group cannot be combined with other groups")
		case g.Region != out.Region || g.Profile != out.Profile || g.Endpoint != out.Endpoint:
			return nil, usageErrorf(flag, "groups with different region, profile or endpoint are not supported in one run").
				withHint("name keys by full key ARN (the region is part of the ARN) in one group")
		}
		for _, k := range g.Keys {
			if !slices.Contains(out.Keys, k) {
				out.Keys = append(out.Keys, k)
			}
		}
		out.GrantTokens = append(out.GrantTokens, g.GrantTokens...)
	}
	return out, nil
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
