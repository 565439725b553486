package sources

import (
	"os"
	"path/filepath"
	"strings"
)

// ThroughSpecialFS reports whether p lies in /dev or /proc, or is a
// symlink (chain) into them: /dev/stdout is /proc/self/fd/1, which may be
// a regular file the shell opened. Such a name stands for a stream the
// caller's process holds, written into (appended) and never replaced or
// judged by its contents, whatever file is behind it.
func ThroughSpecialFS(p string) bool {
	p, err := filepath.Abs(p)
	if err != nil {
		return false
	}
	for range 32 {
		if strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/proc/") {
			return true
		}
		t, err := os.Readlink(p)
		if err != nil {
			return false // not a symlink (or gone): a path like any other
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = filepath.Clean(t)
	}
	return false
}
