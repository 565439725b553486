package spec

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// yaml.v3 gives an error a line only when the parser's marks are past the
// first line, and never for errors of its reader (bad UTF-8, control
// characters) or for an unknown alias, which it raises without a mark.
// syntaxError turns every one of them into an Error with a line and a
// column, finding the place in the bytes itself where yaml.v3 does not
// say, so that no spec error is ever reported without file:line:col.

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the messages of yaml.v3's parser (as opposed to
// its scanner). yaml.v3 adds one to the 0-based line of scanner errors
// only, so parser errors point one line too early (an unclosed "[" on
// line 3 is reported on line 2).
var yamlParserErrors = []string{
	"did not find expected <stream-start>", "did not find expected <document start>", "found incompatible YAML document",
	"found duplicate %YAML directive", "found duplicate %TAG directive", "found undefined tag handle",
	"did not find expected node content", "did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
}

// yamlReaderErrors are the messages of yaml.v3's reader, raised for the
// first byte that is not a YAML character; they never carry a line, and
// the reader reads ahead, so the parser's position says nothing either.
var yamlReaderErrors = []string{
	"invalid leading UTF-8 octet", "incomplete UTF-8 octet sequence", "invalid trailing UTF-8 octet",
	"invalid length of a UTF-8 sequence", "invalid Unicode character", "control characters are not allowed",
	"incomplete UTF-16", "unexpected low surrogate area", "expected low surrogate area",
}

var yamlUnknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

func hasAnyPrefix(msg string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// syntaxError is the Error for err, an error of yaml.v3's Decode of data.
func syntaxError(name string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Type: ErrorTypeSyntax, Detail: msg, Pos: Position{File: name, Line: 1, Column: 1}}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Detail = m[2]
		e.Pos.Line, _ = strconv.Atoi(m[1])
		if hasAnyPrefix(m[2], yamlParserErrors) {
			e.Pos.Line++ // yaml.v3 gives parser errors a 0-based line
		}
		// An error at the end of the stream is on the line after the
		// last one; it belongs to the last line that holds anything.
		e.Pos.Line = max(1, min(e.Pos.Line, lastLine(data)))
		return e
	}
	switch {
	case hasAnyPrefix(msg, yamlReaderErrors):
		if off, ok := firstNonYAMLChar(data); ok {
			e.Pos.Line, e.Pos.Column = lineCol(data, off)
			e.Detail = msg + " (byte 0x" + strconv.FormatUint(uint64(data[off]), 16) + ")"
		}
	case yamlUnknownAnchor.MatchString(msg):
		if off, ok := findAlias(data, yamlUnknownAnchor.FindStringSubmatch(msg)[1]); ok {
			e.Pos.Line, e.Pos.Column = lineCol(data, off)
		}
	}
	// Anything else yaml.v3 reports without a line sits on the first line
	// (both of its marks are on line 0); the column is not known.
	return e
}

// firstNonYAMLChar returns the offset of the first byte of data that
// does not start a character YAML allows (yaml.v3's reader rule), data
// read as UTF-8. A file in UTF-16 (it starts with that byte order mark)
// is not scanned.
func firstNonYAMLChar(data []byte) (int, bool) {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return 0, false
	}
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 || !yamlChar(r) {
			return off, true
		}
		off += size
	}
	return 0, false
}

func yamlChar(r rune) bool {
	switch {
	case r == 0x09, r == 0x0A, r == 0x0D, r >= 0x20 && r <= 0x7E, r == 0x85:
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
	default:
		return false
	}
	return true
}

// findAlias returns the offset of the first "*name" in data that is an
// alias: preceded by a line start, a blank or a flow indicator and
// followed by one or by the end. A '#' starts a comment to the line's end.
func findAlias(data []byte, name string) (int, bool) {
	comment := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			comment = false
		case comment:
		case c == '#' && (i == 0 || isBlankOrFlow(data[i-1]) || data[i-1] == '\n'):
			comment = true
		case c == '*' && (i == 0 || isBlankOrFlow(data[i-1]) || data[i-1] == '\n'):
			end := i + 1 + len(name)
			if end <= len(data) && string(data[i+1:end]) == name && (end == len(data) || isBlankOrFlow(data[end]) || data[end] == '\n' || data[end] == '\r') {
				return i, true
			}
		}
	}
	return 0, false
}

func isBlankOrFlow(c byte) bool {
	return c == ' ' || c == '\t' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}'
}

// lineCol is the 1-based line and column (in characters) of offset off.
func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return bytes.Count(data[:start], []byte{'\n'}) + 1, utf8.RuneCount(data[start:off]) + 1
}

// lastLine is the number of the last line of data that holds a byte
// other than its line break.
func lastLine(data []byte) int {
	return bytes.Count(bytes.TrimRight(data, "\r\n"), []byte{'\n'}) + 1
}
