package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var typeNames = map[ErrorType]string{
	ErrorTypeRequired: "Required", ErrorTypeInvalid: "Invalid", ErrorTypeNotSupported: "NotSupported",
	ErrorTypeDuplicate: "Duplicate", ErrorTypeForbidden: "Forbidden", ErrorTypeUnknown: "Unknown", ErrorTypeSyntax: "Syntax",
}

// fixtureComments reads "# want: TYPE FIELD LINE:COL" and "# env: K=V"
// lines from a fixture. FIELD "-" stands for the document root.
func fixtureComments(t *testing.T, data []byte) (wants []string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			wants = append(wants, strings.TrimSpace(w))
		}
		if e, ok := strings.CutPrefix(line, "# env: "); ok {
			k, v, _ := strings.Cut(e, "=")
			env[k] = v
		}
	}
	return wants, env
}

func describe(e *Error) string {
	f := e.Field
	if f == "" {
		f = "-"
	}
	return fmt.Sprintf("%s %s %d:%d", typeNames[e.Type], f, e.Pos.Line, e.Pos.Column)
}

// TestBadFixtures loads every testdata/bad file and compares the full set
// of errors (type, field, line:col) with the file's "# want:" comments.
func TestBadFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wants, env := fixtureComments(t, data)
			if len(wants) == 0 {
				t.Fatal("fixture has no # want: lines")
			}
			docs, err := Parse(f, data, mapEnv(env))
			if err == nil {
				t.Fatalf("parsed without error, want %d errors", len(wants))
			}
			if docs != nil {
				t.Errorf("got %d documents alongside the error, want none", len(docs))
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			var got []string
			for _, e := range list {
				got = append(got, describe(e))
				if e.Pos.File != f {
					t.Errorf("%s: position file %q, want %q", describe(e), e.Pos.File, f)
				}
				if !strings.HasPrefix(e.Error(), e.Pos.String()+": ") {
					t.Errorf("message %q does not start with its position", e.Error())
				}
			}
			slices.Sort(got)
			slices.Sort(wants)
			if !slices.Equal(got, wants) {
				t.Errorf("errors differ\n got: %s\nwant: %s\nfull:\n%v", strings.Join(got, "\n      "), strings.Join(wants, "\n      "), err)
			}
		})
	}
}

// TestGoodFixtures loads every testdata/good file without error.
func TestGoodFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, env := fixtureComments(t, data)
			docs, err := Parse(f, data, mapEnv(env))
			if err != nil {
				t.Fatalf("unexpected errors:\n%v", err)
			}
			if len(docs) == 0 {
				t.Fatal("no documents")
			}
		})
	}
}
