package sources

import "github.com/encjob/encjob/internal/pathglob"

// The globs of locations and of include/exclude filters are package
// pathglob's; these names keep the sources API.
type (
	// Pattern is a compiled glob (see package pathglob).
	Pattern = pathglob.Pattern
	// Rule is one include or exclude rule of a Filter.
	Rule = pathglob.Rule
	// Filter is an ordered rule list; the first matching rule decides.
	// A nil *Filter includes everything.
	Filter = pathglob.Filter
)

// CompilePattern is pathglob.Compile; its errors are *pathglob.Error.
func CompilePattern(glob string) (*Pattern, error) { return pathglob.Compile(glob) }

// MustCompilePattern is pathglob.MustCompile.
func MustCompilePattern(glob string) *Pattern { return pathglob.MustCompile(glob) }

// NewFilter is pathglob.NewFilter: excludes first, then includes; its
// error is a pathglob.ErrorList naming every bad pattern.
func NewFilter(include, exclude []string) (*Filter, error) {
	return pathglob.NewFilter(include, exclude)
}
