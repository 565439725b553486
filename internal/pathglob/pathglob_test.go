package pathglob

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestMatch merges the cases the spec and sources packages each had for
// their own copy of these semantics.
func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		// Unanchored: any complete trailing run of segments.
		{"*.csv", "a.csv", true},
		{"*.csv", "d/e/a.csv", true},
		{"*.csv", "a.csv.bak", false},
		{"*.csv", "a.csvx", false},
		{"*.csv", "d/a.txt", false},
		{"*.csv", "/abs/a.csv", true},
		{"*", "d/a", true},
		{"e/a.csv", "e/a.csv", true},
		{"e/a.csv", "d/e/a.csv", true},
		{"e/a.csv", "de/a.csv", false}, // segment boundary
		// Anchored.
		{"/*.csv", "a.csv", true},
		{"/*.csv", "d/a.csv", false},
		{"/d/**", "d/e/f", true},
		{"/d/**", "x/d/e", false},
		{"/d/[a-x]?csv", "d/x.csv", true},
		{"/d/[a-x]?csv", "d/tmp/z.csv", false},
		// The path is taken as given: no "./" or "/" is dropped.
		{"/a.csv", "./a.csv", false},
		{"/a.csv", "/a.csv", false},
		{"?.txt", "/.txt", false},
		// * stays in a segment; ** crosses "/".
		{"d/*", "d/a", true},
		{"d/*", "d/e/a", false},
		{"**", "a", true},
		{"**", "a/b/c", true},
		{"d/**", "d/a/b", true},
		{"d/**", "xd/a", false},
		{"a**b", "a/x/b", true},
		{"***", "a/b", true}, // "***" is "**"
		// ** as a whole segment also matches zero directories.
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "ab", false},
		{"a/**/b", "a/xb", false},
		{"**/tmp/**", "tmp/x", true},
		{"x**/b", "x/b", true},
		{"x**/b", "xb", false}, // "x**" is not a whole segment: no zero-directory form
		// Trailing "/" = everything below.
		{"tmp/", "tmp/x/y", true},
		{"tmp/", "tmp/a", true},
		{"tmp/", "x/tmp/a/b", true},
		{"tmp/", "tmp", false},
		{"tmp/", "tmpa", false},
		// ?
		{"?.txt", "a.txt", true},
		{"?.txt", "ab.txt", false},
		{"a?b", "a/b", false},
		{"?", "ü", true}, // one character, not one byte
		// Classes.
		{"[a-c].txt", "b.txt", true},
		{"[a-c].txt", "d.txt", false},
		{"[!a-c].txt", "d.txt", true},
		{"[^a-c].txt", "a.txt", false},
		{"[]a].txt", "].txt", true},
		{"[!a]*", "b", true},
		{"[!a]*", "d/c", true},
		{"[!a]*", "a", false},
		{"[!a]*", "d/ab", false},
		{"x[!a]y", "x/y", false}, // negated classes never match /
		{`[\]x]`, "]", true},
		{`[\]x]`, `\`, false}, // "\" in a class escapes the next character
		{`[a\-z]`, "-", true},
		{`[a\-z]`, "b", false},
		{"[a-]", "-", true},
		{"[ä-ö]", "ö", true},
		// Alternatives.
		{"*.{csv,tsv}", "a.tsv", true},
		{"*.{csv,tsv}", "a.json", false},
		{"f{1,2}", "f1", true},
		{"f{1,2}", "f2", true},
		{"f{1,2}", "f3", false},
		{`{top,q\?}.csv`, "q?.csv", true},
		{`{top,q\?}.csv`, "qx.csv", false},
		{"a,b", "a,b", true}, // "," outside braces is literal
		{"{a/b,c}", "x/a/b", true},
		// Escapes and literal regexp metacharacters.
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"a.b", "axb", false},
		{"(x)+", "(x)+", true},
		{"$^|", "$^|", true},
		// Locations.
		{"s3://bucket/prod/**", "s3://bucket/prod/a/b", true},
		{"prod/**", "s3://bucket/prod/a", true},
		{"ünï*", "d/ünïcode", true},
	} {
		p, err := Compile(c.pat)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.pat, err)
			continue
		}
		if got := p.Match(c.path); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pat, c.path, got, c.want)
		}
		if p.String() != c.pat {
			t.Errorf("String() = %q, want %q", p.String(), c.pat)
		}
	}
}

func TestCompileInvalid(t *testing.T) {
	for _, c := range []struct{ pat, reason string }{
		{"", "empty pattern"},
		{"/", "matches nothing but the root"},
		{"[", "unterminated character class"},
		{"[a-", "unterminated character class"},
		{"[]", "unterminated character class"},
		{"[!]", "unterminated character class"},
		{`[a\`, "unterminated character class"},
		{"[z-a]", "character class range z-a is out of order"},
		{"[a/]", "a character class cannot match '/'"},
		{"[.-0]", "a character class cannot match '/'"},
		{"[!/]", "a character class cannot match '/'"},
		{`a\`, "trailing backslash escapes nothing"},
		{"{a,b", "unterminated '{' alternatives"},
		{"{a", "unterminated '{' alternatives"},
		{"a}", "'}' without '{'"},
		{"{a,{b}}", "nested '{' alternatives are not supported"},
		{"\xff", "not valid UTF-8"},
		{strings.Repeat("a", MaxLen+1), "longer than 4096 bytes"},
	} {
		p, err := Compile(c.pat)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Compile(%.20q) = %v, %v; want an *Error", c.pat, p, err)
			continue
		}
		if p != nil || e.Pattern != c.pat || e.Reason != c.reason {
			t.Errorf("Compile(%.20q): pattern %.20q reason %q, want reason %q", c.pat, e.Pattern, e.Reason, c.reason)
		}
		if !strings.HasPrefix(err.Error(), "invalid pattern ") {
			t.Errorf("Compile(%.20q) error %q does not start with \"invalid pattern\"", c.pat, err)
		}
	}
	if _, err := Compile(strings.Repeat("a", MaxLen)); err != nil {
		t.Errorf("a pattern of MaxLen bytes: %v", err)
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "pathglob: invalid pattern") {
			t.Errorf("recover() = %v, want a pathglob panic", r)
		}
	}()
	MustCompile("[")
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
		{"trailing slash exclude", []string{"*.csv"}, []string{"skip/"},
			[]string{"p/0001.csv"}, []string{"p/skip/0000.csv", "skip/a.csv"}},
		{"directory include, subdirectory exclude", []string{"d/**"}, []string{"d/e/"},
			[]string{"d/tmp/z.csv", "d/x.csv", "d/x.txt"}, []string{"d/e/w.csv", "top.csv"}},
		{"anchored include", []string{"/*.csv"}, nil, []string{"q?.csv", "top.csv"}, []string{"d/x.csv"}},
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
}

func TestFilterHandOrdered(t *testing.T) {
	f := &Filter{Rules: []Rule{
		{Include: true, Pattern: MustCompile("keep/*.tmp")},
		{Include: false, Pattern: MustCompile("*.tmp")},
	}}
	for path, want := range map[string]struct {
		in   bool
		rule int
	}{
		"keep/a.tmp": {true, 0},
		"x/a.tmp":    {false, 1},
		"x/a.csv":    {false, -1}, // no rule matched; an include rule exists
	} {
		if in, rule := f.Decide(path); in != want.in || rule != want.rule {
			t.Errorf("Decide(%q) = %v, %d; want %v, %d", path, in, rule, want.in, want.rule)
		}
		if f.Match(path) != want.in {
			t.Errorf("Match(%q) != Decide", path)
		}
	}
	var nilFilter *Filter
	if in, rule := nilFilter.Decide("x"); !in || rule != -1 {
		t.Error("a nil filter must include everything")
	}
	if !(&Filter{}).Match("x") {
		t.Error("the zero filter must include everything")
	}
}

func TestNewFilterErrors(t *testing.T) {
	f, err := NewFilter([]string{"ok", "[a-"}, []string{"{x"})
	var list ErrorList
	if f != nil || !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("NewFilter = %v, %v; want nil and an ErrorList of 2", f, err)
	}
	for i, want := range []struct {
		list    string
		index   int
		pattern string
	}{{"exclude", 0, "{x"}, {"include", 1, "[a-"}} {
		e := list[i]
		if e.List != want.list || e.Index != want.index || e.Err.Pattern != want.pattern {
			t.Errorf("error %d = %s[%d] %q, want %s[%d] %q", i, e.List, e.Index, e.Err.Pattern, want.list, want.index, want.pattern)
		}
		var pe *Error
		if !errors.As(e, &pe) || pe != e.Err {
			t.Errorf("error %d does not unwrap to its *Error", i)
		}
	}
	if want := `exclude[0]: invalid pattern "{x": unterminated '{' alternatives; include[1]: invalid pattern "[a-": unterminated character class`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

// FuzzCompile: Compile never panics and returns exactly one of a pattern
// and a complete *Error; Match never panics, and an anchored glob without
// metacharacters matches exactly its own text.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"*.csv", "/d/**", "a/**/b", "[!a-c]?", "{a,b}/x", `a\*`, "tmp/", "[]a]", "[z-a]", "{a,{b}}", "\xff", "***/x", "[\\"} {
		f.Add(s, "d/e/a.csv")
	}
	f.Fuzz(func(t *testing.T, glob, path string) {
		p, err := Compile(glob)
		if (p == nil) == (err == nil) {
			t.Fatalf("Compile(%q) = %v, %v: want exactly one", glob, p, err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Pattern != glob || e.Reason == "" {
				t.Fatalf("Compile(%q) error %v is not a complete *Error", glob, err)
			}
			return
		}
		if !utf8.ValidString(glob) || p.String() != glob {
			t.Fatalf("Compile(%q) accepted invalid UTF-8 or lost the source", glob)
		}
		got := p.Match(path)
		// A glob without metacharacters, anchored, matches exactly itself.
		if strings.HasPrefix(glob, "/") && !strings.ContainsAny(glob, `*?[]{}\,`) && !strings.HasSuffix(glob, "/") {
			if want := path == glob[1:]; got != want {
				t.Fatalf("%q.Match(%q) = %v, want %v", glob, path, got, want)
			}
		}
	})
}
