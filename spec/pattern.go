package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Pattern is a compiled glob matched against slash-separated paths
// relative to a source root (or, in policy rules, item locations):
//
//   - any run of characters except "/"
//     **       any run of characters including "/"; as a whole segment
//     ("a/**/b", "**/x") it also matches zero directories
//     ?        one character except "/"
//     [a-z]    one character from a class; [!a-z] or [^a-z] negates it
//     (a class never matches "/")
//     {a,b}    one of the comma-separated alternatives (not nested)
//     \c       the character c literally
//
// A pattern starting with "/" is anchored at the root ("/*.csv" matches
// "a.csv" but not "d/a.csv"); otherwise it matches any complete trailing
// run of segments ("*.csv" matches "a.csv" and "d/e/a.csv"; "e/a.csv"
// matches "d/e/a.csv" but not "de/a.csv"). A pattern ending in "/" matches
// everything below that directory ("tmp/" means "tmp/**").
//
// These are rclone's filter patterns. They differ from `aws s3 cp
// --include/--exclude`, where "*" also matches "/", patterns are matched
// against the whole key from the source prefix, and the LAST matching
// filter wins; here "*" stays within a segment and the FIRST matching rule
// decides (see Filter).
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// maxPatternLen bounds the work a single pattern can cause.
const maxPatternLen = 4096

// CompilePattern checks and compiles a glob. The error says what is wrong
// with it, e.g. `unterminated character class`.
func CompilePattern(glob string) (*Pattern, error) {
	if glob == "" {
		return nil, errors.New("empty pattern")
	}
	if len(glob) > maxPatternLen {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPatternLen)
	}
	if !utf8.ValidString(glob) {
		return nil, errors.New("pattern is not valid UTF-8")
	}
	body := glob
	anchored := strings.HasPrefix(body, "/")
	if anchored {
		body = body[1:]
	}
	if strings.HasSuffix(body, "/") {
		body += "**"
	}
	if body == "" {
		return nil, errors.New("pattern matches nothing but the root")
	}
	rx, err := globRegexp(body)
	if err != nil {
		return nil, err
	}
	prefix := "^(?:.*/)?"
	if anchored {
		prefix = "^"
	}
	re, err := regexp.Compile(prefix + rx + "$")
	if err != nil { // not expected: globRegexp emits valid syntax
		return nil, fmt.Errorf("pattern compiles to an invalid expression: %w", err)
	}
	return &Pattern{src: glob, re: re}, nil
}

// MustCompilePattern is CompilePattern for constants; it panics on error.
func MustCompilePattern(glob string) *Pattern {
	p, err := CompilePattern(glob)
	if err != nil {
		panic("spec: " + err.Error())
	}
	return p
}

// Match reports whether path matches. path is slash-separated; a leading
// "/" or "./" is ignored.
func (p *Pattern) Match(path string) bool {
	path = strings.TrimPrefix(path, "./")
	path = strings.TrimLeft(path, "/")
	return p.re.MatchString(path)
}

// String returns the glob as written.
func (p *Pattern) String() string { return p.src }

func globRegexp(g string) (string, error) {
	var b strings.Builder
	inAlt := false
	for i := 0; i < len(g); {
		r, n := utf8.DecodeRuneInString(g[i:])
		switch r {
		case '\\':
			if i+1 >= len(g) {
				return "", errors.New("trailing backslash escapes nothing")
			}
			r2, n2 := utf8.DecodeRuneInString(g[i+1:])
			b.WriteString(regexp.QuoteMeta(string(r2)))
			i += 1 + n2
			continue
		case '*':
			if i+1 < len(g) && g[i+1] == '*' {
				segStart := i == 0 || g[i-1] == '/'
				j := i + 2
				for j < len(g) && g[j] == '*' {
					j++ // "***" is "**"
				}
				if segStart && j < len(g) && g[j] == '/' {
					b.WriteString("(?:.*/)?")
					i = j + 1
				} else {
					b.WriteString(".*")
					i = j
				}
				continue
			}
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		case '[':
			cls, end, err := globClass(g, i)
			if err != nil {
				return "", err
			}
			b.WriteString(cls)
			i = end
			continue
		case '{':
			if inAlt {
				return "", errors.New("nested '{' alternatives are not supported")
			}
			inAlt = true
			b.WriteString("(?:")
		case '}':
			if !inAlt {
				return "", errors.New("'}' without '{'")
			}
			inAlt = false
			b.WriteString(")")
		case ',':
			if inAlt {
				b.WriteString("|")
			} else {
				b.WriteString(",")
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
		i += n
	}
	if inAlt {
		return "", errors.New("unterminated '{' alternatives")
	}
	return b.String(), nil
}

// globClass translates the class starting at g[start] == '['; it returns
// the regexp and the index just past the closing ']'.
func globClass(g string, start int) (string, int, error) {
	i := start + 1
	neg := false
	if i < len(g) && (g[i] == '!' || g[i] == '^') {
		neg = true
		i++
	}
	var b strings.Builder
	b.WriteString("[")
	if neg {
		b.WriteString("^/")
	}
	first := true
	count := 0
	for {
		if i >= len(g) {
			return "", 0, errors.New("unterminated character class")
		}
		if g[i] == ']' && !first {
			i++
			break
		}
		first = false
		lo, n, err := classChar(g, i)
		if err != nil {
			return "", 0, err
		}
		i += n
		hi := lo
		if i+1 < len(g) && g[i] == '-' && g[i+1] != ']' {
			h, n2, err := classChar(g, i+1)
			if err != nil {
				return "", 0, err
			}
			if h < lo {
				return "", 0, fmt.Errorf("character class range %c-%c is out of order", lo, h)
			}
			hi = h
			i += 1 + n2
		}
		if lo <= '/' && '/' <= hi {
			return "", 0, errors.New("a character class cannot match '/'")
		}
		if lo == hi {
			fmt.Fprintf(&b, `\x{%x}`, lo)
		} else {
			fmt.Fprintf(&b, `\x{%x}-\x{%x}`, lo, hi)
		}
		count++
	}
	if count == 0 {
		return "", 0, errors.New("empty character class")
	}
	b.WriteString("]")
	return b.String(), i, nil
}

func classChar(g string, i int) (rune, int, error) {
	if g[i] == '\\' {
		if i+1 >= len(g) {
			return 0, 0, errors.New("unterminated character class")
		}
		r, n := utf8.DecodeRuneInString(g[i+1:])
		return r, 1 + n, nil
	}
	r, n := utf8.DecodeRuneInString(g[i:])
	return r, n, nil
}

// FilterRule is one include or exclude rule of a Filter.
type FilterRule struct {
	Include bool
	Pattern *Pattern
}

// Filter is an ordered rule list: the first rule whose pattern matches a
// path decides whether it is included. A path no rule matches is excluded
// when the list has any include rule and included otherwise (so a list of
// includes alone selects only what they match, and a list of excludes
// alone removes only what they match). A nil *Filter includes everything.
//
// `aws s3` filters work the other way round: every filter is tested and
// the last one that matches wins, and "*" crosses "/".
type Filter struct {
	Rules []FilterRule
}

// NewFilter builds the filter a source's include and exclude lists mean:
// every exclude rule first, then every include rule, each list in order.
// So an exclude wins over an overlapping include (include "**/*.csv",
// exclude "tmp/**": tmp/a.csv is excluded). The error is an ErrorList
// naming each bad pattern as include[i] / exclude[i].
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var errs ErrorList
	add := func(in bool, name string, globs []string) {
		for i, g := range globs {
			p, err := CompilePattern(g)
			if err != nil {
				errs = append(errs, Invalid(NewPath(name).Index(i), g, err.Error()))
				continue
			}
			f.Rules = append(f.Rules, FilterRule{Include: in, Pattern: p})
		}
	}
	add(false, "exclude", exclude)
	add(true, "include", include)
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

// Match reports whether path is included.
func (f *Filter) Match(path string) bool {
	in, _ := f.Decide(path)
	return in
}

// Decide reports whether path is included and the index of the rule that
// decided (-1 when no rule matched and the default applied).
func (f *Filter) Decide(path string) (included bool, rule int) {
	if f == nil {
		return true, -1
	}
	hasInclude := false
	for i, r := range f.Rules {
		if r.Pattern.Match(path) {
			return r.Include, i
		}
		hasInclude = hasInclude || r.Include
	}
	return !hasInclude, -1
}
