package pathglob

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Pattern is a compiled glob. It is safe for concurrent use.
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// MaxLen bounds the length of a pattern, and so the work one can cause.
const MaxLen = 4096

// Error is a pattern that does not compile.
type Error struct {
	Pattern string // the glob as written
	Reason  string // what is wrong, e.g. "unterminated character class"
}

func (e *Error) Error() string { return fmt.Sprintf("invalid pattern %q: %s", e.Pattern, e.Reason) }

// Compile checks and compiles a glob. A bad glob is reported as an
// *Error.
func Compile(glob string) (*Pattern, error) {
	bad := func(format string, a ...any) error { return &Error{Pattern: glob, Reason: fmt.Sprintf(format, a...)} }
	if glob == "" {
		return nil, bad("empty pattern")
	}
	if len(glob) > MaxLen {
		return nil, bad("longer than %d bytes", MaxLen)
	}
	if !utf8.ValidString(glob) {
		return nil, bad("not valid UTF-8")
	}
	body := glob
	anchored := strings.HasPrefix(body, "/")
	if anchored {
		body = body[1:]
	}
	if body == "" {
		return nil, bad("matches nothing but the root")
	}
	if strings.HasSuffix(body, "/") {
		body += "**"
	}
	rx, reason := globRegexp(body)
	if reason != "" {
		return nil, bad("%s", reason)
	}
	prefix := "^(?:.*/)?"
	if anchored {
		prefix = "^"
	}
	re, err := regexp.Compile(prefix + rx + "$")
	if err != nil {
		// Not expected: globRegexp emits valid syntax. Still an error, not
		// a panic, since the input is the user's.
		return nil, bad("compiles to an invalid expression: %v", err)
	}
	return &Pattern{src: glob, re: re}, nil
}

// MustCompile is Compile for constants; it panics on error.
func MustCompile(glob string) *Pattern {
	p, err := Compile(glob)
	if err != nil {
		panic("pathglob: " + err.Error())
	}
	return p
}

// Match reports whether path, slash-separated and taken as given,
// matches.
func (p *Pattern) Match(path string) bool { return p.re.MatchString(path) }

// String returns the glob as written.
func (p *Pattern) String() string { return p.src }

// globRegexp translates a glob body (without the anchor "/") into a
// regexp; on error it returns the reason.
func globRegexp(g string) (string, string) {
	var b strings.Builder
	inAlt := false
	for i := 0; i < len(g); {
		r, n := utf8.DecodeRuneInString(g[i:])
		switch r {
		case '\\':
			if i+1 >= len(g) {
				return "", "trailing backslash escapes nothing"
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
					b.WriteString("(?:.*/)?") // "**/" also matches zero directories
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
			cls, end, reason := globClass(g, i)
			if reason != "" {
				return "", reason
			}
			b.WriteString(cls)
			i = end
			continue
		case '{':
			if inAlt {
				return "", "nested '{' alternatives are not supported"
			}
			inAlt = true
			b.WriteString("(?:")
		case '}':
			if !inAlt {
				return "", "'}' without '{'"
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
		return "", "unterminated '{' alternatives"
	}
	return b.String(), ""
}

// globClass translates the class starting at g[start] == '['; it returns
// the regexp and the index just past the closing ']', or the reason it is
// invalid.
func globClass(g string, start int) (string, int, string) {
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
			return "", 0, "unterminated character class"
		}
		if g[i] == ']' && !first {
			i++
			break
		}
		first = false
		lo, n, ok := classChar(g, i)
		if !ok {
			return "", 0, "unterminated character class"
		}
		i += n
		hi := lo
		if i+1 < len(g) && g[i] == '-' && g[i+1] != ']' {
			h, n2, ok := classChar(g, i+1)
			if !ok {
				return "", 0, "unterminated character class"
			}
			if h < lo {
				return "", 0, fmt.Sprintf("character class range %c-%c is out of order", lo, h)
			}
			hi = h
			i += 1 + n2
		}
		if lo <= '/' && '/' <= hi {
			return "", 0, "a character class cannot match '/'"
		}
		if lo == hi {
			fmt.Fprintf(&b, `\x{%x}`, lo)
		} else {
			fmt.Fprintf(&b, `\x{%x}-\x{%x}`, lo, hi)
		}
		count++
	}
	if count == 0 { // not reached: "]" first is literal; kept as a guard
		return "", 0, "empty character class"
	}
	b.WriteString("]")
	return b.String(), i, ""
}

// classChar reads one (possibly escaped) class character at g[i].
func classChar(g string, i int) (rune, int, bool) {
	if g[i] == '\\' {
		if i+1 >= len(g) {
			return 0, 0, false
		}
		r, n := utf8.DecodeRuneInString(g[i+1:])
		return r, 1 + n, true
	}
	r, n := utf8.DecodeRuneInString(g[i:])
	return r, n, true
}
