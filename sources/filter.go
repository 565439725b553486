package sources

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is a compiled rclone-style glob matched against slash-separated
// keys relative to a source root:
//
//   - any run of characters except "/"
//     **       any run of characters, "/" included
//     ?        one character except "/"
//     [a-z]    a character class; [!a-z] or [^a-z] negates it
//     {a,b}    alternatives
//     \x       the character x literally
//
// A pattern starting with "/" is anchored at the source root ("/*.csv"
// matches "a.csv" but not "d/a.csv"). Otherwise it matches a complete
// trailing run of path segments ("*.csv" matches "a.csv" and "d/e/a.csv";
// "e/a.csv" matches "d/e/a.csv" but not "de/a.csv"). A pattern ending in
// "/" matches everything below that directory ("tmp/" is "tmp/**").
//
// Unlike `aws s3 --include/--exclude`, whose "*" crosses "/" and whose
// last matching rule wins, "*" stays inside one segment and the first
// matching rule decides (see Filter).
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// CompilePattern compiles a glob; errors name the pattern and the cause.
func CompilePattern(glob string) (*Pattern, error) {
	if glob == "" {
		return nil, fmt.Errorf("invalid pattern %q: empty", glob)
	}
	p := glob
	anchored := strings.HasPrefix(p, "/")
	if anchored {
		p = p[1:]
	}
	if strings.HasSuffix(p, "/") {
		p += "**"
	}
	body, err := globToRegexp(p)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", glob, err)
	}
	prefix := "^(?:.*/)?"
	if anchored {
		prefix = "^"
	}
	re, err := regexp.Compile(prefix + body + "$")
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", glob, err)
	}
	return &Pattern{src: glob, re: re}, nil
}

// MustCompilePattern is CompilePattern that panics on error (for constants).
func MustCompilePattern(glob string) *Pattern {
	p, err := CompilePattern(glob)
	if err != nil {
		panic(err)
	}
	return p
}

// Match reports whether key matches.
func (p *Pattern) Match(key string) bool { return p.re.MatchString(key) }

// String returns the source glob.
func (p *Pattern) String() string { return p.src }

func globToRegexp(g string) (string, error) {
	var b strings.Builder
	inAlt := 0
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch c {
		case '\\':
			if i+1 >= len(g) {
				return "", fmt.Errorf("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(g[i])))
		case '*':
			if i+1 < len(g) && g[i+1] == '*' {
				i++
				// "**/" also matches zero directories: "a/**/b" matches "a/b".
				if i+1 < len(g) && g[i+1] == '/' && (i-1 == 0 || g[i-2] == '/') {
					i++
					b.WriteString("(?:.*/)?")
				} else {
					b.WriteString(".*")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := i + 1
			if j < len(g) && (g[j] == '!' || g[j] == '^') {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++
			}
			for j < len(g) && g[j] != ']' {
				j++
			}
			if j >= len(g) {
				return "", fmt.Errorf("unterminated character class")
			}
			class := g[i+1 : j]
			neg := false
			if class[0] == '!' || class[0] == '^' {
				neg, class = true, class[1:]
			}
			if class == "" {
				return "", fmt.Errorf("empty character class")
			}
			b.WriteByte('[')
			if neg {
				b.WriteString("^/")
			}
			for k := 0; k < len(class); k++ {
				ch := class[k]
				if ch == '\\' || ch == '[' || ch == ']' || ch == '^' {
					b.WriteByte('\\')
				}
				b.WriteByte(ch)
			}
			b.WriteByte(']')
			i = j
		case '{':
			inAlt++
			b.WriteString("(?:")
		case '}':
			if inAlt == 0 {
				return "", fmt.Errorf("unmatched '}'")
			}
			inAlt--
			b.WriteByte(')')
		case ',':
			if inAlt > 0 {
				b.WriteByte('|')
			} else {
				b.WriteByte(',')
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if inAlt > 0 {
		return "", fmt.Errorf("unterminated '{'")
	}
	return b.String(), nil
}

// Rule is one include or exclude rule.
type Rule struct {
	Include bool
	Pattern *Pattern
}

// Filter is an ordered rule list: the first rule whose pattern matches a
// key decides. A key no rule matches is excluded if the list has any
// include rule and included otherwise (rclone's implicit "- **" after
// --include rules). The zero Filter and a nil *Filter include everything.
type Filter struct {
	Rules []Rule
}

// NewFilter builds the rule list the spec's separate include/exclude lists
// mean: every exclude rule first, then every include rule, so an exclude
// wins over an overlapping include ("**/*.csv" included, "tmp/**"
// excluded: tmp/a.csv is excluded). Callers wanting another order build
// Rules themselves. The error names every bad pattern.
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var errs []string
	add := func(in bool, globs []string) {
		for _, g := range globs {
			p, err := CompilePattern(g)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			f.Rules = append(f.Rules, Rule{Include: in, Pattern: p})
		}
	}
	add(false, exclude)
	add(true, include)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return f, nil
}

// Match reports whether key is included.
func (f *Filter) Match(key string) bool {
	if f == nil {
		return true
	}
	hasInclude := false
	for _, r := range f.Rules {
		if r.Pattern.Match(key) {
			return r.Include
		}
		hasInclude = hasInclude || r.Include
	}
	return !hasInclude
}
