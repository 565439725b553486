package planner

import (
	"testing"

	"github.com/encjob/encjob/sources"
)

func TestSamePrint(t *testing.T) {
	for _, tc := range []struct {
		a, b sources.Fingerprint
		want bool
	}{
		{"local:1:2:3:4:5", "local:1:2:3:4:5", true},
		{"local:1:2:3:4:5", "local:1:2:3:9:5", false}, // ctime differs: restored
		{"local:1:2:3:5", "local:1:2:3:4:5", false},   // a print of the old format
		{`s3:"e1"`, `s3:"e1"`, true},
		{`s3:"e1"`, `s3:"e1":v=abc`, true}, // listing vs HEAD of one version
		{`s3:"e1":v=abc`, `s3:"e1":v=abc`, true},
		{`s3:"e1":v=abc`, `s3:"e1":v=def`, false}, // same bytes, another version
		{`s3:"e1"`, `s3:"e2"`, false},
		{`s3:`, `s3::v=x`, false},
		{`s3:"e1"`, `local:1:2:3:4:5`, false},
	} {
		if got := samePrint(tc.a, tc.b); got != tc.want {
			t.Errorf("samePrint(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
