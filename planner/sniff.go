package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// SniffBytes is how much of a file LooksLikeLog and FirstKeyIs need.
const SniffBytes = 4096

// LooksLikeLog reports whether head, the first bytes of a file, is the
// start of a metadata log as encjob and aws-encryption-cli write it: empty,
// or a JSON object whose first key is "mode" (a first record cut short by
// a crash counts). A writer that appends to a log, or replaces one, checks
// it first, so it never appends records to, or replaces, a key, a message
// or a user's JSON document that merely sits where the log was named.
func LooksLikeLog(head []byte) bool {
	return FirstKeyIs(head, "mode")
}

// FirstKeyIs reports whether head is empty (only white space) or starts
// a JSON object whose first key is key ("{}" counts when key is ""), or
// is a prefix of one cut short.
func FirstKeyIs(head []byte, key string) bool {
	t := bytes.TrimLeft(head, " \t\r\n")
	if len(t) == 0 {
		return true
	}
	d := json.NewDecoder(bytes.NewReader(t))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	tok, err := d.Token()
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		// Cut short: a prefix of {"key" (a torn first record).
		want := []byte(`{"` + key + `"`)
		return len(t) < len(want) && bytes.HasPrefix(want, bytes.ReplaceAll(t, []byte(" "), nil))
	case err != nil:
		return false
	case tok == json.Delim('}'):
		return key == ""
	}
	s, ok := tok.(string)
	return ok && s == key
}

// HasTopKey reports whether head, the first bytes of a file, starts a JSON
// object one of whose top-level keys within head is key: a saved plan's
// "format_version" comes first as encjob writes it, and after a few short
// fields ("base_dir", "created") when a tool re-encoded it with sorted
// keys.
func HasTopKey(head []byte, key string) bool {
	d := json.NewDecoder(bytes.NewReader(head))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); !ok {
			return false
		} else if s == key {
			return true
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}
