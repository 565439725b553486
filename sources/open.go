package sources

import "fmt"

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
