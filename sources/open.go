package sources

import (
	"fmt"
	"io/fs"
)

// NewSource opens a local or S3 location as a source. s3 is called only for
// an S3 location and supplies its client and settings (so callers build a
// client lazily, once); its SourceOptions are replaced by so. Stdin is not
// opened here: it can be read only once, so its owner opens it.
func NewSource(loc Location, so SourceOptions, s3 func() (S3Options, error)) (Source, error) {
	switch loc.Kind {
	case Local:
		return NewLocalSource(loc, so)
	case S3:
		o, err := s3()
		if err != nil {
			return nil, err
		}
		o.SourceOptions = so
		return NewS3Source(loc, o)
	}
	return nil, fmt.Errorf("sources: %s cannot be listed here", loc.Raw)
}

// locationGlob compiles the glob part of a location (nil when it has none).
func locationGlob(loc Location) (*Pattern, error) {
	if loc.Glob == "" {
		return nil, nil
	}
	p, err := CompilePattern("/" + loc.Glob)
	if err != nil {
		return nil, fmt.Errorf("location %q: %w", loc.Raw, err)
	}
	return p, nil
}

// globList is List for a location: list with fn, and for a location with
// a glob, a listing that yields no item fails with a *NoMatchError. A
// glob names its files, and one that names none is a missing source (the
// command line's -i says so too), not an empty one; a source that may be
// empty is a directory with include patterns.
func globList(loc Location, fn func(Item) error, list func(func(Item) error) error) error {
	if loc.Glob == "" {
		return list(fn)
	}
	n := 0
	err := list(func(it Item) error {
		n++
		return fn(it)
	})
	if err == nil && n == 0 {
		return &NoMatchError{Location: loc.Raw}
	}
	return err
}

// NoMatchError: a source's glob matched no file or object (after its
// include and exclude filters). It is an fs.ErrNotExist.
type NoMatchError struct{ Location string }

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("source %s: the glob matches nothing (after include/exclude)", e.Location)
}

func (e *NoMatchError) Unwrap() error { return fs.ErrNotExist }
