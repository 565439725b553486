package pathglob

import (
	"fmt"
	"strings"
)

// Rule is one include or exclude rule of a Filter.
type Rule struct {
	Include bool
	Pattern *Pattern
}

// Filter is an ordered rule list: the first rule whose pattern matches a
// path decides. A path no rule matches is excluded when the list has any
// include rule and included otherwise. The zero Filter and a nil *Filter
// include everything.
type Filter struct {
	Rules []Rule
}

// RuleError is a bad pattern of NewFilter's lists: List is "include" or
// "exclude" and Index the pattern's position in it.
type RuleError struct {
	List  string
	Index int
	Err   *Error
}

func (e *RuleError) Error() string { return fmt.Sprintf("%s[%d]: %v", e.List, e.Index, e.Err) }
func (e *RuleError) Unwrap() error { return e.Err }

// ErrorList is every bad pattern NewFilter found, excludes first.
type ErrorList []*RuleError

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// NewFilter builds the filter that separate include and exclude lists
// mean: every exclude rule first, then every include rule, each list in
// order. So an exclude wins over an overlapping include (include
// "**/*.csv", exclude "tmp/**": tmp/a.csv is excluded). Callers wanting
// another order build Rules themselves. On error it returns an ErrorList
// naming every bad pattern.
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var errs ErrorList
	add := func(in bool, list string, globs []string) {
		for i, g := range globs {
			p, err := Compile(g)
			if err != nil {
				errs = append(errs, &RuleError{List: list, Index: i, Err: err.(*Error)})
				continue
			}
			f.Rules = append(f.Rules, Rule{Include: in, Pattern: p})
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
// decided, or -1 when no rule matched and the default applied.
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
