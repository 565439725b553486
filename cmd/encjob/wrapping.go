package main

import (
	"fmt"
	"regexp"
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

// parseWrappingKeys turns the -w groups of one run into one key group, as
// aws-encryption-cli builds one master key provider per group: each group
// is a member of its own (a single member is returned as a plain group),
// the first key of the first group generates the data key, and every key
// of every group wraps it. A key given in several groups is therefore
// wrapped once per group (so --max-encrypted-data-keys counts what
// aws-encryption-cli would write); a key repeated inside one group is one
// key, as a master key provider adds a key id once. forEncrypt applies
// the encrypt rules (keys required, no discovery). notes are warnings to
// print (discovery accounts that can match no key).
func parseWrappingKeys(flag string, groups [][]string, forEncrypt bool) (g *spec.KeyGroup, notes []string, err error) {
	if len(groups) == 0 {
		return nil, nil, usageErrorf(flag, "no wrapping key provider configuration found").
			withHint("pass e.g. %s key=arn:aws:kms:REGION:ACCOUNT:key/ID, or %s provider=raw-aes key-file=PATH namespace=NS name=NAME", flag, flag)
	}
	var members []spec.KeyGroup
	raw := map[string]bool{} // provider namespace/name of raw members
	for _, words := range groups {
		g, n, err := parseWrappingGroup(flag, words, forEncrypt)
		if err != nil {
			return nil, nil, err
		}
		notes = append(notes, n...)
		if g.Provider == spec.ProviderRawAES || g.Provider == spec.ProviderRawRSA {
			// Two raw keys of one name would be ambiguous on decrypt
			// (which key file unwraps namespace/name?).
			id := g.Provider + " " + g.Namespace + "/" + g.Name
			if raw[id] {
				return nil, nil, usageErrorf(flag, "%s key namespace=%s name=%s is given twice", g.Provider, g.Namespace, g.Name)
			}
			raw[id] = true
		}
		members = append(members, *g)
	}
	if len(members) == 1 {
		return &members[0], notes, nil
	}
	return &spec.KeyGroup{Members: members}, notes, nil
}

// parseWrappingGroup reads one -w group.
func parseWrappingGroup(flag string, words []string, forEncrypt bool) (*spec.KeyGroup, []string, error) {
	m, order, err := parsePairs(flag, words)
	if err != nil {
		return nil, nil, err
	}
	provider, err := one(flag, m, "provider")
	if err != nil {
		return nil, nil, usageErrorf(flag, `give exactly one "provider" per wrapping key group`)
	}
	if provider == "" {
		provider = spec.ProviderAWSKMS
	}
	if provider == spec.ProviderHierarchy {
		g, err := parseHierarchyGroup(flag, m, order) // wrapping_hierarchy.go
		return g, nil, err
	}
	if _, ok := asymAttrs[provider]; ok {
		g, err := parseAsymGroup(flag, provider, m, order) // wrapping_asym.go
		return g, nil, err
	}
	attrs := rawAttrs
	if provider == spec.ProviderAWSKMS {
		attrs = kmsAttrs
	} else if provider != spec.ProviderRawAES && provider != spec.ProviderRawRSA {
		return nil, nil, usageErrorf(flag, "unknown provider %q (want aws-kms, aws-kms-hierarchy, raw-aes, raw-rsa, raw-ecdh, aws-kms-ecdh or aws-kms-rsa)", provider)
	}
	for _, k := range order {
		if !slices.Contains(attrs, k) {
			return nil, nil, usageErrorf(flag, "unknown attribute %q for provider %s (known: %s)", k, provider, strings.Join(attrs, ", "))
		}
	}
	if provider == spec.ProviderAWSKMS {
		return parseKMSGroup(flag, m, forEncrypt)
	}
	g, err := parseRawGroup(flag, provider, m)
	return g, nil, err
}

// parseKMSGroup reads an aws-kms group with aws-encryption-cli's rules.
func parseKMSGroup(flag string, m map[string][]string, forEncrypt bool) (*spec.KeyGroup, []string, error) {
	g := &spec.KeyGroup{Provider: spec.ProviderAWSKMS, GrantTokens: m["grant-token"]}
	for _, k := range m["key"] {
		if !slices.Contains(g.Keys, k) {
			g.Keys = append(g.Keys, k)
		}
	}
	for _, f := range []struct {
		attr string
		dst  *string
	}{{"region", &g.Region}, {"profile", &g.Profile}, {"endpoint", &g.Endpoint}} {
		var err error
		if *f.dst, err = one(flag, m, f.attr); err != nil {
			return nil, nil, err
		}
	}
	_, hasDisc := m["discovery"]
	accounts, partitions := m["discovery-account"], m["discovery-partition"]
	switch {
	case forEncrypt && (hasDisc || accounts != nil || partitions != nil):
		return nil, nil, usageErrorf(flag, "discovery attributes are supported only on decryption for AWS KMS keys")
	case forEncrypt && len(g.Keys) == 0:
		return nil, nil, usageErrorf(flag, `at least one "key" must be provided for each wrapping key provider configuration`)
	case hasDisc:
		d, err := one(flag, m, "discovery")
		if err != nil {
			return nil, nil, err
		}
		if g.Discovery, err = pseudoBool(flag, d); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case !g.Discovery && (accounts != nil || partitions != nil):
		return nil, nil, usageErrorf(flag, "discovery-account and discovery-partition are valid only when discovery is true")
	case !g.Discovery && len(g.Keys) == 0:
		return nil, nil, usageErrorf(flag, "when discovery is false (disabled), you must specify at least one wrapping key").
			withHint("add key=arn:aws:kms:REGION:ACCOUNT:key/ID, or discovery=true to decrypt with any KMS key")
	case !g.Discovery:
		return g, nil, nil
	case len(g.Keys) > 0:
		return nil, nil, usageErrorf(flag, "if discovery is true (enabled), you cannot specify wrapping keys")
	}
	notes, err := discoveryFilter(flag, g, accounts, partitions)
	return g, notes, err
}

// awsAccount is what an AWS account id looks like in a KMS key ARN.
var awsAccount = regexp.MustCompile(`^[0-9]{12}$`)

// discoveryFilter sets g's filter from discovery-account /
// discovery-partition. aws-encryption-cli keeps every non-empty account
// and decrypts when the account of a key ARN is any of them, so an
// account that is not a 12-digit id only never matches: it is dropped
// here with a note, and the others still filter. When none is left no key
// could ever match, which is refused (the cli would fail every item).
func discoveryFilter(flag string, g *spec.KeyGroup, accounts, partitions []string) ([]string, error) {
	switch {
	case accounts != nil && partitions == nil:
		return nil, usageErrorf(flag, "when specifying discovery-account, you must also specify discovery-partition")
	case partitions != nil && accounts == nil:
		return nil, usageErrorf(flag, "when specifying discovery-partition, you must also specify discovery-account")
	case len(partitions) > 1:
		return nil, usageErrorf(flag, "you can only specify discovery-partition once")
	case accounts == nil:
		return nil, nil
	}
	var notes, kept []string
	for _, a := range accounts {
		if awsAccount.MatchString(a) {
			kept = append(kept, a)
		} else {
			notes = append(notes, fmt.Sprintf("%s: discovery-account=%s is not a 12-digit AWS account id: no key can match it", flag, a))
		}
	}
	if len(kept) == 0 {
		return nil, usageErrorf(flag, "no discovery-account is a 12-digit AWS account id (%s): no key could decrypt", strings.Join(accounts, ", "))
	}
	g.DiscoveryFilter = &spec.DiscoveryFilter{Accounts: kept, Partition: partitions[0]}
	return notes, nil
}

// parseRawGroup reads a raw-aes or raw-rsa group (encjob's providers).
func parseRawGroup(flag, provider string, m map[string][]string) (*spec.KeyGroup, error) {
	g := &spec.KeyGroup{Provider: provider}
	fields := []struct {
		attr string
		dst  *string
	}{{"key-file", &g.KeyFile}, {"namespace", &g.Namespace}, {"name", &g.Name}, {"key-encoding", &g.KeyEncoding}, {"padding", &g.Padding}}
	for _, f := range fields {
		var err error
		if *f.dst, err = one(flag, m, f.attr); err != nil {
			return nil, err
		}
	}
	for _, f := range fields[:3] {
		if *f.dst == "" {
			return nil, usageErrorf(flag, "provider %s needs %s=…", provider, f.attr)
		}
	}
	switch {
	case provider == spec.ProviderRawAES && g.Padding != "":
		return nil, usageErrorf(flag, "padding is only for provider raw-rsa")
	case provider == spec.ProviderRawRSA && g.KeyEncoding != "":
		return nil, usageErrorf(flag, "key-encoding is only for provider raw-aes (raw-rsa key files are PEM)")
	case provider == spec.ProviderRawRSA && g.Padding == "":
		return nil, usageErrorf(flag, "provider raw-rsa needs padding=oaep-sha1|oaep-sha256|oaep-sha384|oaep-sha512|pkcs1")
	}
	return g, nil
}
