package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestYAMLErrorPositions: every error of a file that is not YAML, or
// that yaml.v3 parses but we refuse for its size, points at the line and
// column that hold the cause. yaml.v3 reports parser errors with a
// 0-based line, errors on the first line with none, and errors of its
// reader (bad UTF-8, control characters) and unknown aliases with none.
func TestYAMLErrorPositions(t *testing.T) {
	const head = "apiVersion: encjob.dev/v1\nkind: EncryptionJob\n"
	many := strings.Repeat("# padding\n", 300)
	// More nodes than the budget, written out and reached through aliases.
	sources := head + "metadata: {name: x}\nspec:\n  sources:\n  - path: .\n    include:\n" + strings.Repeat("    - a\n", maxNodes+10)
	src := head + "metadata: {name: x}\nspec:\n  sources:\n  - &s {path: ., include: [a, b, c, d, e, f, g, h]}\n" + strings.Repeat("  - *s\n", maxNodes/10)
	// One 80 KiB value aliased 1,000 times expands past the byte budget.
	var labels strings.Builder
	labels.WriteString(head + "metadata:\n  name: x\n  labels:\n    v: &v " + strings.Repeat("y", 80<<10) + "\n")
	for i := range 1000 {
		fmt.Fprintf(&labels, "    l%d: *v\n", i)
	}
	bigValue := labels.String()
	// The first byte past the size limit, in a file of 10-byte lines.
	bigLine, bigCol := (maxFileSize-len(head))/10+3, (maxFileSize-len(head))%10+1
	for _, tc := range []struct {
		name      string
		doc       string
		line, col int // col 0: any column; line -n: any line past n
		detail    string
	}{
		{"unclosed [ (parser error)", head + "spec: [1, 2\nmetadata: {}\n", 3, 0, ""},
		{"unclosed { (parser error)", "apiVersion: encjob.dev/v1\nkind: {x: 1\nspec: 3\n", 2, 0, ""},
		{"expected '-' (parser)", "- a\nb: 1\n", 2, 0, ""},
		{"mapping values (scanner)", head + "  spec: 3\n", 3, 0, ""},
		{"reserved character (scanner)", head + "spec: @x\n", 3, 0, ""},
		{"tab (scanner)", "apiVersion: encjob.dev/v1\n\tkind: EncryptionJob\n", 2, 0, ""},
		{"scanner error on line 1", "kind: @x\n", 1, 0, ""},
		{"parser error on line 1", "kind: [1, 2", 1, 0, ""},
		{"tab on line 1", "\tkind: x\n", 1, 0, ""},
		{"invalid UTF-8", head + "metadata: {name: \xff\xfe}\n", 3, 18, "0xff"},
		{"invalid UTF-8 on line 1", "kind: \xff\n", 1, 7, "0xff"},
		{"invalid UTF-8 after multibyte characters", "kind: ééé\xc3\x28\n", 1, 10, "0xc3"},
		{"truncated UTF-8 at the end", head + "spec: \xe2\x82", 3, 7, "0xe2"},
		{"invalid UTF-8 far below the parser", head + many + "spec: \xfe\n", 303, 7, "0xfe"},
		{"control character", head + "spec: a\x01b\n", 3, 8, "0x1"},
		{"NUL", head + "metadata:\n  name: \x00\n", 4, 9, "0x0"},
		{"escape", "kind: \x1b[31m\n", 1, 7, "0x1b"},
		{"UTF-16 surrogate in UTF-8", head + "spec: \xed\xa0\x80\n", 3, 7, ""},
		{"unknown anchor", head + "metadata: *nope\n", 3, 11, "nope"},
		{"unknown anchor on line 1", "kind: *nope\n", 1, 7, "nope"},
		{"unknown anchor, a comment and a longer name first", head + "# *nope\nspec: [&nopeX 1, *nopeX, *nope]\n", 4, 26, "'nope'"},
		{"depth over 10000 on line 1", strings.Repeat("[", 10001), 1, 0, "depth"},
		{"depth over 10000 below", head + "spec: " + strings.Repeat("[", 10001), 3, 0, "depth"},
		{"node budget", sources, -9, 0, "nodes"},
		{"node budget (aliases)", src, -9, 0, "nodes"},
		{"byte budget (aliases)", bigValue, -9, 0, "bytes of values"},
		{"file over 16 MiB", head + strings.Repeat("#23456789\n", maxFileSize/10+1), bigLine, bigCol, "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.doc), nil)
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("want an ErrorList, got %v", err)
			}
			for _, e := range list {
				if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 {
					t.Errorf("error without file:line:col: %q (%#v)", e.Error(), e.Pos)
				}
			}
			e := list[0]
			for _, f := range list {
				if strings.Contains(f.Error(), tc.detail) {
					e = f
					break
				}
			}
			if tc.line > 0 && e.Pos.Line != tc.line || tc.line < 0 && e.Pos.Line <= -tc.line || tc.col > 0 && e.Pos.Column != tc.col {
				t.Errorf("at %d:%d, want %d:%d: %v", e.Pos.Line, e.Pos.Column, tc.line, tc.col, e)
			}
			if !strings.Contains(e.Error(), tc.detail) {
				t.Errorf("%q does not mention %q", e.Error(), tc.detail)
			}
			if len(e.Error()) > 1024 {
				t.Errorf("message of %d bytes: the value it quotes is not cut", len(e.Error()))
			}
			if !strings.HasPrefix(e.Error(), fmt.Sprintf("f.yaml:%d:%d: ", e.Pos.Line, e.Pos.Column)) {
				t.Errorf("%q does not start with file:line:col", e.Error())
			}
		})
	}
}
