package planner

import "testing"

func TestLooksLikeLog(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{"", true},
		{"\n", true},
		{`{"mode":"encrypt","input":"a"}` + "\n", true},
		{`{"mode": "encrypt", "input": "/x"}`, true}, // aws-encryption-cli's spacing
		{`{"mo`, true}, // torn first record
		{`{`, true},
		{`{"name": "config", "mode": 1}`, false}, // a user's JSON document
		{`{"format_version": 2}`, false},         // a saved plan
		{`{}`, false},
		{"\x02\x05\x78 ciphertext", false},
		{"-----BEGIN PRIVATE KEY-----", false},
		{"apiVersion: encjob.dev/v1", false},
		{"{\x8f\x12 random key bytes", false},
	} {
		if got := LooksLikeLog([]byte(tc.head)); got != tc.want {
			t.Errorf("LooksLikeLog(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

func TestHasTopKey(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{`{"format_version": 2, "name": "j"}`, true},
		{`{"base_dir":"/x","created":"2026","format_version":2,"items":[]}`, true},
		{`{"name": "service", "mode": "fast"}`, false},
		{`{"nested": {"format_version": 2}}`, false},
		{`["format_version"]`, false},
		{"\x02\x05 message", false},
	} {
		if got := HasTopKey([]byte(tc.head), "format_version"); got != tc.want {
			t.Errorf("HasTopKey(%q) = %v, want %v", tc.head, got, tc.want)
		}
	}
}
