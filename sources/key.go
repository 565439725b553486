package sources

import (
	"path"
	"strings"
)

// CheckKey validates a destination key: slash-separated, relative, no NUL,
// no empty, "." or ".." segments. It returns an *EscapeError (ErrEscapes)
// naming the cause. Keys from S3 are arbitrary strings; this is where the
// odd ones ("../x", "/etc/passwd", "a//b") are refused.
func CheckKey(key string) error {
	switch {
	case key == "":
		return &EscapeError{Key: key, Reason: "empty key"}
	case strings.IndexByte(key, 0) >= 0:
		return &EscapeError{Key: key, Reason: "contains a NUL byte"}
	case strings.HasPrefix(key, "/"):
		return &EscapeError{Key: key, Reason: "absolute path"}
	}
	for seg := range strings.SplitSeq(key, "/") { // no slice: twice per item
		switch seg {
		case "":
			return &EscapeError{Key: key, Reason: "empty path segment"}
		case ".", "..":
			return &EscapeError{Key: key, Reason: "\"" + seg + "\" path segment"}
		}
	}
	return nil
}

// JoinKey joins a prefix ("" or ending in "/" or not) and a relative key.
func JoinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	if strings.HasSuffix(prefix, "/") {
		return prefix + key
	}
	return prefix + "/" + key
}

// baseKey is the last segment of a slash-separated key.
func baseKey(key string) string { return path.Base(key) }
