package spec

import (
	"errors"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		{"*.csv", "a.csv", true},
		{"*.csv", "d/e/a.csv", true}, // unanchored: any trailing run of segments
		{"*.csv", "a.csv.bak", false},
		{"*", "d/a", true},
		{"d/*", "d/a", true},
		{"d/*", "d/e/a", false}, // * stays in one segment
		{"e/a.csv", "d/e/a.csv", true},
		{"e/a.csv", "de/a.csv", false}, // segment boundary
		{"/*.csv", "a.csv", true},
		{"/*.csv", "d/a.csv", false}, // anchored
		{"/d/**", "d/e/f", true},
		{"/d/**", "x/d/e", false},
		{"**", "a/b/c", true},
		{"d/**", "d/a/b", true},
		{"d/**", "xd/a", false},
		{"a/**/b", "a/b", true}, // ** as a segment matches zero directories
		{"a/**/b", "a/x/y/b", true},
		{"a**b", "a/x/b", true},
		{"**/tmp/**", "tmp/x", true},
		{"tmp/", "tmp/x/y", true}, // trailing / = everything below
		{"tmp/", "tmp", false},
		{"?.txt", "a.txt", true},
		{"?.txt", "ab.txt", false},
		{"a?b", "a/b", false},
		{"[a-c].txt", "b.txt", true},
		{"[a-c].txt", "d.txt", false},
		{"[!a-c].txt", "d.txt", true},
		{"[^a-c].txt", "a.txt", false},
		{"[]a].txt", "].txt", true},
		{"x[!a]y", "x/y", false}, // negated classes never match /
		{"*.{csv,tsv}", "a.tsv", true},
		{"*.{csv,tsv}", "a.json", false},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"a.b", "axb", false}, // . is literal
		{"(x)+", "(x)+", true},
		{"s3://bucket/prod/**", "s3://bucket/prod/a/b", true},
		{"prod/**", "s3://bucket/prod/a", true},
		{"*.csv", "/abs/a.csv", true},
		{"/a.csv", "./a.csv", true},
		{"ünï*", "d/ünïcode", true},
	} {
		p, err := CompilePattern(c.pat)
		if err != nil {
			t.Errorf("%q: %v", c.pat, err)
			continue
		}
		if got := p.Match(c.path); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pat, c.path, got, c.want)
		}
	}
}

func TestPatternInvalid(t *testing.T) {
	for _, p := range []string{"", "/", "[a-", "[", "[]", "[!]", "[z-a]", "[a/]", "[.-0]", `a\`, "{a,b", "a}", "{a,{b}}", "\xff"} {
		if _, err := CompilePattern(p); err == nil {
			t.Errorf("%q compiled, want an error", p)
		}
	}
}

func TestFilter(t *testing.T) {
	for _, c := range []struct {
		name             string
		include, exclude []string
		in, out          []string
	}{
		{"none: everything", nil, nil, []string{"a", "d/b"}, nil},
		{"only includes: unmatched excluded", []string{"*.csv"}, nil, []string{"a.csv", "d/b.csv"}, []string{"a.txt"}},
		{"only excludes: unmatched included", nil, []string{"tmp/**"}, []string{"a", "x/tmp"}, []string{"tmp/a", "d/tmp/a"}},
		{"exclude wins over include", []string{"**/*.csv.encrypted"}, []string{"tmp/**"},
			[]string{"a.csv.encrypted", "d/b.csv.encrypted"}, []string{"tmp/a.csv.encrypted", "a.csv"}},
		{"first matching exclude decides", []string{"keep/*"}, []string{"keep/secret*"},
			[]string{"keep/a"}, []string{"keep/secret.txt", "other"}},
	} {
		f, err := NewFilter(c.include, c.exclude)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, p := range c.in {
			if !f.Match(p) {
				t.Errorf("%s: %q excluded, want included", c.name, p)
			}
		}
		for _, p := range c.out {
			if f.Match(p) {
				t.Errorf("%s: %q included, want excluded", c.name, p)
			}
		}
	}
	// Ordered rules built by hand: first match decides.
	f := &Filter{Rules: []FilterRule{
		{Include: true, Pattern: MustCompilePattern("important.log")},
		{Include: false, Pattern: MustCompilePattern("*.log")},
	}}
	if !f.Match("d/important.log") || f.Match("d/other.log") || !f.Match("d/x.txt") == false {
		t.Error("hand-ordered rules")
	}
	if in, rule := f.Decide("d/other.log"); in || rule != 1 {
		t.Errorf("Decide = %v, %d", in, rule)
	}
	var nilFilter *Filter
	if !nilFilter.Match("x") {
		t.Error("nil filter must include everything")
	}
	_, err := NewFilter([]string{"ok", "[a-"}, []string{"{x"})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 || list[0].Field != "exclude[0]" || list[1].Field != "include[1]" {
		t.Fatalf("got %v", err)
	}
}

func TestPolicyMatcher(t *testing.T) {
	docs, err := LoadFile("../examples/gitops-policy.yaml", mapEnv(exampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	m, err := docs[0].Policy.Matcher()
	if err != nil {
		t.Fatal(err)
	}
	for loc, want := range map[string]int{
		"secrets/README.md":                      0,
		"secrets/prod/db.env":                    1,
		"s3://acme-config/config/prod/app.json":  1,
		"s3://acme-config/config/staging/a.json": 2,
		"secrets/dev/x":                          2,
	} {
		if i, r, pat := m.Match(loc); i != want || r == nil || pat == "" {
			t.Errorf("%s: rule %d (%q), want %d", loc, i, pat, want)
		}
	}
	empty := &Policy{Rules: []Rule{{Match: []string{"only/*"}}}}
	em, _ := empty.Matcher()
	if i, r, _ := em.Match("else/x"); i != -1 || r != nil {
		t.Error("no rule should match")
	}
}
