package sources

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Kind says what a Location points at.
type Kind int

const (
	Local Kind = iota + 1 // a file, directory or glob on the local file system
	Stdio                 // "-": stdin as a source, stdout as a destination
	S3                    // s3://bucket/key-or-prefix
)

func (k Kind) String() string {
	switch k {
	case Local:
		return "local"
	case Stdio:
		return "stdio"
	case S3:
		return "s3"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Location is a parsed source or destination string.
type Location struct {
	Kind Kind
	// Raw is the string as given.
	Raw string
	// Path is the local path (Kind Local) without its glob part: the
	// directory the glob is relative to, or the whole path.
	Path string
	// Bucket and Key for Kind S3. Key is "" for the whole bucket; a Key
	// ending in "/" is a prefix; otherwise it is an object or a prefix,
	// decided when listing. For a glob it is the part before the glob.
	Bucket string
	Key    string
	// Glob is the part of the path from the first segment holding a glob
	// character ("*?[{"), slash-separated; items must match it (anchored
	// at Path/Key) as well as the filters. Empty: no glob.
	Glob string
}

// String returns Raw.
func (l Location) String() string { return l.Raw }

// IsPrefix reports whether an S3 location can only be a prefix (it ends in
// "/", is the whole bucket, or has a glob).
func (l Location) IsPrefix() bool {
	return l.Kind == S3 && (l.Key == "" || strings.HasSuffix(l.Key, "/") || l.Glob != "")
}

// Parse parses "-", "s3://bucket/key-or-prefix" or a local path. Globs in
// the path ("./data/**/*.csv", "s3://b/logs/*/x.gz") are split off into
// Glob. Errors name the string and the cause.
func Parse(s string) (Location, error) {
	switch {
	case s == "":
		return Location{}, fmt.Errorf("location %q: empty", s)
	case s == "-":
		return Location{Kind: Stdio, Raw: s}, nil
	case strings.HasPrefix(strings.ToLower(s), "s3://"):
		rest := s[len("s3://"):]
		bucket, key, _ := strings.Cut(rest, "/")
		if err := checkBucket(bucket); err != nil {
			return Location{}, fmt.Errorf("location %q: %w", s, err)
		}
		if strings.IndexByte(key, 0) >= 0 {
			return Location{}, fmt.Errorf("location %q: key contains a NUL byte", s)
		}
		static, glob := splitGlob(key)
		if glob != "" {
			if _, err := CompilePattern("/" + glob); err != nil {
				return Location{}, fmt.Errorf("location %q: %w", s, err)
			}
		}
		return Location{Kind: S3, Raw: s, Bucket: bucket, Key: static, Glob: glob}, nil
	case strings.Contains(s, "://"):
		return Location{}, fmt.Errorf("location %q: unsupported scheme (want a local path, \"-\" or s3://bucket/key)", s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Location{}, fmt.Errorf("location %q: contains a NUL byte", s)
	}
	slashed := filepath.ToSlash(s)
	static, glob := splitGlob(slashed)
	if glob == "" {
		return Location{Kind: Local, Raw: s, Path: filepath.Clean(s)}, nil
	}
	if _, err := CompilePattern("/" + glob); err != nil {
		return Location{}, fmt.Errorf("location %q: %w", s, err)
	}
	dir := strings.TrimSuffix(static, "/")
	switch {
	case dir == "" && strings.HasPrefix(slashed, "/"):
		dir = "/"
	case dir == "":
		dir = "."
	}
	return Location{Kind: Local, Raw: s, Path: filepath.Clean(filepath.FromSlash(dir)), Glob: glob}, nil
}

// splitGlob splits a slash path before its first segment with a glob
// character: "a/b/**/*.csv" -> ("a/b/", "**/*.csv").
func splitGlob(p string) (static, glob string) {
	i := strings.IndexAny(p, "*?[{")
	if i < 0 {
		return p, ""
	}
	j := strings.LastIndexByte(p[:i], '/')
	return p[:j+1], p[j+1:]
}

func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("missing bucket name")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: name must be 3 to 63 characters", b)
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("bucket %q: invalid character %q", b, c)
		}
	}
	return nil
}
