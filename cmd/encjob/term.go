package main

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// sanitize makes text from outside (file names, object keys, header
// fields, error messages quoting them) safe to show on a terminal: every
// control character (C0, DEL, C1), every Unicode format character that
// reorders or hides text (bidi overrides, zero-width marks) and every
// byte that is not valid UTF-8 is written as a Go-style escape (\n, \r,
// \t, \x1b, \u202e), so a name cannot move the cursor, recolour or
// overwrite the screen, or forge a line. Printable text, including
// non-ASCII letters, is unchanged.
//
// Every human-readable line goes through it: console.printf and hprintf
// sanitize their arguments; humanWriter sanitizes whole reports written
// by other packages.
func sanitize(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			fmt.Fprintf(&b, `\x%02x`, s[i])
			i++
			continue
		}
		b.WriteString(escapeRune(r))
		i += size
	}
	return b.String()
}

func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			if c >= 0x80 {
				return isSafeUnicode(s[i:])
			}
			return false
		}
	}
	return true
}

func isSafeUnicode(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || escapeRune(r) != string(r) {
			return false
		}
		i += size
	}
	return true
}

func escapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	switch {
	case r < 0x20 || r == 0x7f:
		return fmt.Sprintf(`\x%02x`, r)
	case r >= 0x80 && r < 0xa0:
		return fmt.Sprintf(`\u%04x`, r)
	case unicode.Is(unicode.Cf, r), r == 0x2028, r == 0x2029:
		// Format characters (bidi overrides, zero-width joiners, soft
		// hyphen) and line/paragraph separators.
		return fmt.Sprintf(`\u%04x`, r)
	}
	return string(r)
}

// safeArgs sanitizes the string-like arguments of a format call.
func safeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = sanitize(v)
		case error:
			out[i] = sanitize(v.Error())
		case fmt.Stringer:
			out[i] = sanitize(v.String())
		case []byte:
			out[i] = sanitize(string(v))
		default:
			out[i] = a
		}
	}
	return out
}

// hprintf is fmt.Fprintf for human-readable output: its arguments are
// sanitized (the format string is encjob's own).
func hprintf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format, safeArgs(args)...)
}

// humanWriter sanitizes text that another package renders for humans
// (policy and report summaries): line breaks are kept, every other control
// character is escaped.
type humanWriter struct{ w io.Writer }

func (h humanWriter) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	var b strings.Builder
	for _, l := range lines {
		body, nl := strings.CutSuffix(l, "\n")
		b.WriteString(strings.ReplaceAll(sanitize(body), `\t`, "\t"))
		if nl {
			b.WriteByte('\n')
		}
	}
	if _, err := io.WriteString(h.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// palette colours plan symbols on a terminal; the zero value (no
// terminal, NO_COLOR set, TERM=dumb) adds nothing.
type palette struct{ on bool }

func newPalette(e *env, f interface{ Fd() uintptr }) palette {
	if e.getenv("NO_COLOR") != "" || e.getenv("TERM") == "dumb" {
		return palette{}
	}
	return palette{on: f != nil && isTerminalFd(f.Fd())}
}

// symbol colours one plan symbol: green create, red remove/error, yellow
// change/conflict, cyan rewrap, dim unchanged/skip.
func (p palette) symbol(sym string) string {
	if !p.on {
		return sym
	}
	code := ""
	switch sym {
	case "+":
		code = "32"
	case "-", "x":
		code = "31"
	case "~", "!":
		code = "33"
	case "^":
		code = "36"
	case "=", "s":
		code = "2"
	default:
		return sym
	}
	return "\x1b[" + code + "m" + sym + "\x1b[0m"
}
