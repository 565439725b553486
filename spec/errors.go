package spec

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Position is a place in a spec file. Line and Column are 1-based; the
// zero Position means "unknown" (e.g. a Job built in code).
type Position struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// IsValid reports whether the position names a line.
func (p Position) IsValid() bool { return p.Line > 0 }

// String renders file:line:col, or as much of it as is known.
func (p Position) String() string {
	switch {
	case p.Line > 0 && p.File != "":
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	case p.Line > 0:
		return fmt.Sprintf("%d:%d", p.Line, p.Column)
	default:
		return p.File
	}
}

// Path is a Kubernetes-style field path such as spec.sources[1].include[0]
// or spec.keyGroups.dev.keyFile. Paths are immutable; a nil *Path is the
// root. Map keys made of letters, digits, '_' and '-' render as ".key",
// other keys as `["quoted key"]`.
type Path struct {
	parent *Path
	elem   string // ".name", "[3]" or `["key"]`
}

// NewPath returns a root path made of the given field names.
func NewPath(name string, more ...string) *Path {
	p := (*Path)(nil).Child(name)
	for _, m := range more {
		p = p.Child(m)
	}
	return p
}

// Child returns the path of a struct field.
func (p *Path) Child(name string) *Path { return &Path{parent: p, elem: "." + name} }

// Index returns the path of a sequence element.
func (p *Path) Index(i int) *Path { return &Path{parent: p, elem: "[" + strconv.Itoa(i) + "]"} }

var simpleKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Key returns the path of a map entry.
func (p *Path) Key(k string) *Path {
	if simpleKey.MatchString(k) {
		return &Path{parent: p, elem: "." + k}
	}
	return &Path{parent: p, elem: "[" + strconv.Quote(k) + "]"}
}

// String renders the path ("" for the root).
func (p *Path) String() string {
	if p == nil {
		return ""
	}
	var elems []string
	for q := p; q != nil; q = q.parent {
		elems = append(elems, q.elem)
	}
	var b strings.Builder
	for i := len(elems) - 1; i >= 0; i-- {
		b.WriteString(elems[i])
	}
	return strings.TrimPrefix(b.String(), ".")
}

// parentField strips the last element of a rendered field path.
func parentField(f string) string {
	if strings.HasSuffix(f, "\"]") {
		if i := strings.LastIndex(f, "[\""); i >= 0 {
			return f[:i]
		}
	}
	if strings.HasSuffix(f, "]") {
		if i := strings.LastIndex(f, "["); i >= 0 {
			return f[:i]
		}
	}
	if i := strings.LastIndexAny(f, ".["); i >= 0 {
		return f[:i]
	}
	return ""
}

// ErrorType classifies a validation error. Callers and tests branch on
// the type and the field, never on the message text.
type ErrorType int

const (
	// ErrorTypeRequired: a required field is missing or empty.
	ErrorTypeRequired ErrorType = iota + 1
	// ErrorTypeInvalid: the value is malformed or out of range.
	ErrorTypeInvalid
	// ErrorTypeNotSupported: the value is not one of a fixed set.
	ErrorTypeNotSupported
	// ErrorTypeDuplicate: the value repeats one that must be unique.
	ErrorTypeDuplicate
	// ErrorTypeForbidden: the field must not be set in this context.
	ErrorTypeForbidden
	// ErrorTypeUnknown: the field does not exist (strict decoding).
	ErrorTypeUnknown
	// ErrorTypeSyntax: the file is not well-formed YAML.
	ErrorTypeSyntax
)

func (t ErrorType) String() string {
	switch t {
	case ErrorTypeRequired:
		return "required value"
	case ErrorTypeInvalid:
		return "invalid value"
	case ErrorTypeNotSupported:
		return "unsupported value"
	case ErrorTypeDuplicate:
		return "duplicate value"
	case ErrorTypeForbidden:
		return "forbidden"
	case ErrorTypeUnknown:
		return "unknown field"
	case ErrorTypeSyntax:
		return "syntax error"
	}
	return fmt.Sprintf("ErrorType(%d)", int(t))
}

// Error is one problem with one field of a spec document.
type Error struct {
	Type     ErrorType
	Field    string   // e.g. spec.sources[1].include[0]; "" for the document
	BadValue any      // the offending value, when there is one
	Detail   string   // how to fix it (lowercase, no final period)
	Pos      Position // where in the file; zero when unknown
}

// Error renders `file:line:col: field: summary: detail`.
func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Type.String())
	if e.BadValue != nil && e.Type != ErrorTypeRequired && e.Type != ErrorTypeForbidden && e.Type != ErrorTypeUnknown {
		switch v := e.BadValue.(type) {
		case string:
			b.WriteString(" " + quoteBounded(v))
		default:
			fmt.Fprintf(&b, " %v", v)
		}
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// maxQuoted bounds the bytes of a bad value an error message quotes: a
// value can be megabytes long (aliases, a pasted key) and the message
// goes to a terminal and a log.
const maxQuoted = 120

// quoteBounded quotes v, cut after maxQuoted bytes (on a character
// boundary) with its length said.
func quoteBounded(v string) string {
	if len(v) <= maxQuoted {
		return strconv.Quote(v)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(v[:cut]), len(v))
}

// Required reports a missing field.
func Required(p *Path, detail string) *Error {
	return &Error{Type: ErrorTypeRequired, Field: p.String(), Detail: detail}
}

// Invalid reports a malformed value.
func Invalid(p *Path, value any, detail string) *Error {
	return &Error{Type: ErrorTypeInvalid, Field: p.String(), BadValue: value, Detail: detail}
}

// NotSupported reports a value outside a fixed set.
func NotSupported(p *Path, value any, valid []string) *Error {
	d := ""
	if len(valid) > 0 {
		d = "supported values: " + strings.Join(quoteAll(valid), ", ")
	}
	return &Error{Type: ErrorTypeNotSupported, Field: p.String(), BadValue: value, Detail: d}
}

// Duplicate reports a repeated value.
func Duplicate(p *Path, value any) *Error {
	return &Error{Type: ErrorTypeDuplicate, Field: p.String(), BadValue: value}
}

// Forbidden reports a field that must not be set here.
func Forbidden(p *Path, detail string) *Error {
	return &Error{Type: ErrorTypeForbidden, Field: p.String(), Detail: detail}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// ErrorList is every problem found in one load or validation. It is an
// error; use errors.As(err, &list) to get at the individual errors, or
// errors.As(err, &e) with e *Error for the first one.
type ErrorList []*Error

// Error renders one error per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is / errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByPos orders errors by file position (stable for equal positions).
func (l ErrorList) sortByPos() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// Positions maps field paths of one document to where they appear. Of
// falls back to the nearest enclosing field that appears in the file, so
// an error about a missing field points at its parent.
type Positions struct {
	file string
	m    map[string]Position
}

// Of returns the position of field (a rendered Path such as
// "spec.keyGroups.dev.keyFile"). A nil *Positions returns the zero value.
func (p *Positions) Of(field string) Position {
	if p == nil {
		return Position{}
	}
	for f := field; ; f = parentField(f) {
		if pos, ok := p.m[f]; ok {
			return pos
		}
		if f == "" {
			return Position{File: p.file}
		}
	}
}

// Has reports whether field itself appears in the file.
func (p *Positions) Has(field string) bool {
	if p == nil {
		return false
	}
	_, ok := p.m[field]
	return ok
}

// Errorf builds an *Error for field carrying its file position; later
// stages use it to report e.g. a key file that does not exist.
func (p *Positions) Error(t ErrorType, field string, value any, detail string) *Error {
	return &Error{Type: t, Field: field, BadValue: value, Detail: detail, Pos: p.Of(field)}
}
