package policy

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// Explanation says which rule applies to a location and why.
type Explanation struct {
	// Location is the path or s3:// URL as matched (slash-separated,
	// cleaned).
	Location string `json:"location"`
	// Rule is the index of the first rule with a matching pattern, -1
	// when none matches; Pattern is that pattern.
	Rule    int    `json:"rule"`
	Pattern string `json:"pattern,omitempty"`
	Exempt  bool   `json:"exempt,omitempty"`
	// Requires describes what the rule demands ("key group prod; context
	// env=prod, owner=(any); suite ...; signed").
	Requires string `json:"requires,omitempty"`
	// NotMatched are the rules before Rule (every rule when none matches),
	// each with the patterns that did not match.
	NotMatched []RuleMiss `json:"not_matched,omitempty"`
	// Source is the index of the policy source the location is under, -1
	// when it is under none (then check and apply never see it).
	Source int `json:"source"`
}

// RuleMiss is a rule whose patterns did not match.
type RuleMiss struct {
	Index    int      `json:"index"`
	Patterns []string `json:"patterns"`
}

// Explain tells which rule of pol applies to location - a path as written
// in the policy's sources ("secrets/prod/db.env") or an s3:// URL - and
// why. It reads nothing and calls nothing. The error is a pattern that does
// not compile (a policy that did not pass validation).
func Explain(pol *spec.Policy, location string) (*Explanation, error) {
	m, err := pol.Matcher()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	loc := normalizeLocation(location)
	e := &Explanation{Location: loc, Source: underSource(pol, loc)}
	idx, rule, pat := m.Match(loc)
	e.Rule, e.Pattern = idx, pat
	last := len(pol.Rules)
	if rule != nil {
		last = idx
		e.Exempt = rule.Exempt
		if !rule.Exempt {
			e.Requires = describeRule(rule)
		}
	}
	for i := 0; i < last; i++ {
		e.NotMatched = append(e.NotMatched, RuleMiss{Index: i, Patterns: pol.Rules[i].Match})
	}
	return e, nil
}

func normalizeLocation(p string) string {
	if strings.HasPrefix(p, "s3://") {
		return p
	}
	c := path.Clean(filepath.ToSlash(p))
	if strings.HasSuffix(filepath.ToSlash(p), "/") && c != "/" {
		c += "/"
	}
	return c
}

// underSource returns the index of the first source whose tree holds loc.
func underSource(pol *spec.Policy, loc string) int {
	for i, s := range pol.Sources {
		l, err := sources.Parse(s.Path)
		if err != nil {
			continue
		}
		var root string
		switch l.Kind {
		case sources.S3:
			root = "s3://" + l.Bucket + "/" + l.Key
		case sources.Local:
			root = path.Clean(filepath.ToSlash(l.Path))
		default:
			continue
		}
		if loc == root || root == "." && !strings.HasPrefix(loc, "../") && !strings.HasPrefix(loc, "/") ||
			strings.HasPrefix(loc, strings.TrimSuffix(root, "/")+"/") {
			return i
		}
	}
	return -1
}

// describeRule says what a rule demands, for humans.
func describeRule(r *spec.Rule) string {
	suite := cmp.Or(r.Algorithm, spec.DefaultAlgorithm)
	parts := []string{"key group " + r.KeyGroup}
	if len(r.RequireContext) > 0 {
		var kv []string
		for _, k := range sortedKeys(r.RequireContext) {
			if v := r.RequireContext[k]; v != nil {
				kv = append(kv, k+"="+*v)
			} else {
				kv = append(kv, k+"=(any)")
			}
		}
		parts = append(parts, "context "+strings.Join(kv, ", "))
	}
	parts = append(parts, "suite "+suite)
	if r.RequireCommitting {
		parts = append(parts, "committing")
	}
	if r.RequireSigned {
		parts = append(parts, "signed")
	}
	switch {
	case r.Reencrypt.RequiresRewrap():
		parts = append(parts, "violations fixed by rewrap only (same data key; reencrypt.require: rewrap), and no message whose logged last write was a full re-encryption")
	case r.Reencrypt.EffectiveMode() == spec.ReencryptRewrap:
		parts = append(parts, "key group or context violations fixed by rewrap (same data key)")
	case r.Reencrypt.RequiresFull():
		parts = append(parts, "re-encrypted in full only, and no message whose logged last write was a rewrap (reencrypt.require: full)")
	}
	return strings.Join(parts, "; ")
}

// WriteText writes the explanation for humans, e.g.
//
//	secrets/prod/db.env: rule 1 applies (pattern "prod/**")
//	  requires: key group prod; context env=prod; suite ...; signed
//	  rule 0 did not match: "**/*.md"
func (e *Explanation) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	switch {
	case e.Rule < 0:
		ew.printf("%s: no rule applies (outside the policy)\n", e.Location)
	case e.Exempt:
		ew.printf("%s: rule %d applies (pattern %q): exempt, neither checked nor changed\n", e.Location, e.Rule, e.Pattern)
	default:
		ew.printf("%s: rule %d applies (pattern %q)\n  requires: %s\n", e.Location, e.Rule, e.Pattern, e.Requires)
	}
	for _, m := range e.NotMatched {
		q := make([]string, len(m.Patterns))
		for i, p := range m.Patterns {
			q[i] = fmt.Sprintf("%q", p)
		}
		ew.printf("  rule %d did not match: %s\n", m.Index, strings.Join(q, ", "))
	}
	if e.Source < 0 {
		ew.printf("  note: %s is under none of the policy's sources, so check and apply never see it\n", e.Location)
	}
	return ew.err
}
