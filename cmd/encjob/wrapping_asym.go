package main

import (
	"strings"

	"github.com/encjob/encjob/spec"
)

// The -w attributes of the asymmetric providers (issue 15), each the
// kebab-case name of its spec field; the spec validates their
// combinations (which scheme needs which key file), so the rules exist
// once.
type asymAttr struct {
	name  string
	multi bool // may repeat (grant-token)
	dst   func(g *spec.KeyGroup) *[]string
	one   func(g *spec.KeyGroup) *string
}

var (
	attrCurve      = asymAttr{name: "curve", one: func(g *spec.KeyGroup) *string { return &g.Curve }}
	attrScheme     = asymAttr{name: "scheme", one: func(g *spec.KeyGroup) *string { return &g.Scheme }}
	attrRecipient  = asymAttr{name: "recipient-public-key-file", one: func(g *spec.KeyGroup) *string { return &g.RecipientPublicKeyFile }}
	attrPublic     = asymAttr{name: "public-key-file", one: func(g *spec.KeyGroup) *string { return &g.PublicKeyFile }}
	kmsClientAttrs = []asymAttr{
		{name: "key", multi: true, dst: func(g *spec.KeyGroup) *[]string { return &g.Keys }},
		{name: "region", one: func(g *spec.KeyGroup) *string { return &g.Region }},
		{name: "profile", one: func(g *spec.KeyGroup) *string { return &g.Profile }},
		{name: "endpoint", one: func(g *spec.KeyGroup) *string { return &g.Endpoint }},
		{name: "grant-token", multi: true, dst: func(g *spec.KeyGroup) *[]string { return &g.GrantTokens }},
	}
)

var asymAttrs = map[string][]asymAttr{
	spec.ProviderRawECDH: {attrCurve, attrScheme, attrRecipient,
		{name: "private-key-file", one: func(g *spec.KeyGroup) *string { return &g.PrivateKeyFile }}},
	spec.ProviderAWSKMSECDH: append([]asymAttr{attrCurve, attrScheme, attrRecipient, attrPublic}, kmsClientAttrs...),
	spec.ProviderAWSKMSRSA: append([]asymAttr{attrPublic,
		{name: "encryption-algorithm", one: func(g *spec.KeyGroup) *string { return &g.EncryptionAlgorithm }}}, kmsClientAttrs...),
}

// parseAsymGroup reads a -w group of an asymmetric provider.
func parseAsymGroup(flag, provider string, m map[string][]string, order []string) (*spec.KeyGroup, error) {
	attrs := asymAttrs[provider]
	known := map[string]asymAttr{"provider": {name: "provider"}}
	names := []string{"provider"}
	for _, a := range attrs {
		known[a.name] = a
		names = append(names, a.name)
	}
	g := &spec.KeyGroup{Provider: provider}
	for _, k := range order {
		a, ok := known[k]
		switch {
		case !ok:
			return nil, usageErrorf(flag, "unknown attribute %q for provider %s (known: %s)", k, provider, strings.Join(names, ", "))
		case a.multi:
			*a.dst(g) = append(*a.dst(g), m[k]...)
		case a.one != nil:
			v, err := one(flag, m, k)
			if err != nil {
				return nil, err
			}
			*a.one(g) = v
		}
	}
	return g, nil
}
