package spec

import (
	"errors"

	"github.com/encjob/encjob/internal/pathglob"
)

// The include/exclude and policy-rule globs are package pathglob's; these
// names keep spec's API.
type (
	// Pattern is a compiled glob (see package pathglob).
	Pattern = pathglob.Pattern
	// Filter is an ordered include/exclude rule list; the first matching
	// rule decides (see package pathglob).
	Filter = pathglob.Filter
	// FilterRule is one rule of a Filter.
	FilterRule = pathglob.Rule
)

// CompilePattern is pathglob.Compile.
func CompilePattern(glob string) (*Pattern, error) { return pathglob.Compile(glob) }

// MustCompilePattern is pathglob.MustCompile.
func MustCompilePattern(glob string) *Pattern { return pathglob.MustCompile(glob) }

// NewFilter is pathglob.NewFilter with its errors as an ErrorList whose
// fields are include[i] / exclude[i].
func NewFilter(include, exclude []string) (*Filter, error) {
	f, err := pathglob.NewFilter(include, exclude)
	var bad pathglob.ErrorList
	if !errors.As(err, &bad) {
		return f, err
	}
	errs := make(ErrorList, 0, len(bad))
	for _, e := range bad {
		errs = append(errs, Invalid(NewPath(e.List).Index(e.Index), e.Err.Pattern, e.Err.Reason))
	}
	return nil, errs
}

// patternReason is the cause of a pattern error without the pattern,
// which a field error already shows as its value.
func patternReason(err error) string {
	var e *pathglob.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return err.Error()
}
