package spec

import (
	"errors"
	"testing"
)

// The glob and filter semantics are tested in package pathglob; these
// tests cover what spec adds: field-path errors and location matching.

func TestNewFilterErrorList(t *testing.T) {
	f, err := NewFilter([]string{"*.csv"}, []string{"tmp/"})
	if err != nil || !f.Match("d/a.csv") || f.Match("tmp/a.csv") || f.Match("a.txt") {
		t.Fatalf("NewFilter = %v, %v", f, err)
	}
	_, err = NewFilter([]string{"ok", "[a-"}, []string{"{x"})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("got %v", err)
	}
	for i, want := range []struct{ field, value, detail string }{
		{"exclude[0]", "{x", "unterminated '{' alternatives"},
		{"include[1]", "[a-", "unterminated character class"},
	} {
		if e := list[i]; e.Type != ErrorTypeInvalid || e.Field != want.field || e.BadValue != want.value || e.Detail != want.detail {
			t.Errorf("error %d = %+v, want %+v", i, e, want)
		}
	}
}

func TestPatternFieldErrors(t *testing.T) {
	// A bad include and a bad rule pattern are reported at their field
	// with the cause alone as the detail (the value shows the pattern).
	p := &Policy{Rules: []Rule{{Match: []string{"ok/*", "[z-a]"}}}}
	_, err := p.Matcher()
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Field != "spec.rules[0].match[1]" ||
		list[0].Detail != "character class range z-a is out of order" {
		t.Fatalf("Matcher() = %v", err)
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
	// Locations are normalised: a leading "./" or "/" is ignored.
	anchored := &Policy{Rules: []Rule{{Match: []string{"/a.csv"}}, {Match: []string{"*.csv"}}}}
	am, err := anchored.Matcher()
	if err != nil {
		t.Fatal(err)
	}
	for loc, want := range map[string]int{"a.csv": 0, "./a.csv": 0, "/a.csv": 0, "d/a.csv": 1, "/abs/a.csv": 1} {
		if i, _, _ := am.Match(loc); i != want {
			t.Errorf("%s: rule %d, want %d", loc, i, want)
		}
	}
	empty := &Policy{Rules: []Rule{{Match: []string{"only/*"}}}}
	em, _ := empty.Matcher()
	if i, r, _ := em.Match("else/x"); i != -1 || r != nil {
		t.Error("no rule should match")
	}
}
