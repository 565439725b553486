package spec

import (
	"errors"
	"testing"
)

// TestYAMLSyntaxErrorLines: a syntax error points at the line that holds
// it, for scanner and parser errors alike (yaml.v3 reports parser errors
// with a 0-based line).
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		line int
	}{
		{"apiVersion: encjob.dev/v1\nkind: EncryptionJob\nspec: [1, 2\nmetadata: {}\n", 3}, // unclosed [ (parser)
		{"apiVersion: encjob.dev/v1\nkind: {x: 1\nspec: 3\n", 2},                           // unclosed { (parser)
		{"- a\nb: 1\n", 2}, // parser: expected '-'
		{"apiVersion: encjob.dev/v1\nkind: EncryptionJob\n  spec: 3\n", 3}, // scanner: mapping values
		{"apiVersion: encjob.dev/v1\nkind: EncryptionJob\nspec: @x\n", 3},  // scanner: reserved character
		{"apiVersion: encjob.dev/v1\n\tkind: EncryptionJob\n", 2},          // scanner: tab
	} {
		_, err := Parse("f.yaml", []byte(tc.doc), nil)
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("%q: %v", tc.doc, err)
		}
		if got := list[0].Pos.Line; got != tc.line {
			t.Errorf("%q: line %d, want %d (%v)", tc.doc, got, tc.line, list[0])
		}
	}
}
