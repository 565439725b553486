package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, returns documents xor an error, every
// error has a type and a position in the file, and a successful parse
// has a stable digest and passes validation again.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/*/*.yaml", "../examples/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("kind: \xff\xfe\nspec: *nope\n"))
	env := mapEnv(exampleEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // bounded work per input
		}
		docs, err := Parse("f.yaml", data, env)
		if err != nil {
			if docs != nil {
				t.Fatal("documents returned with an error")
			}
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T", err)
			}
			for _, e := range list {
				if e.Type == 0 || e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 {
					t.Fatalf("error without type or file:line:col: %#v", e)
				}
			}
			return
		}
		for _, d := range docs {
			switch {
			case d.Job != nil:
				if errs := d.Job.Validate(nil); len(errs) > 0 {
					t.Fatalf("defaulted job no longer valid: %v", errs)
				}
			case d.Policy != nil:
				if errs := d.Policy.Validate(nil); len(errs) > 0 {
					t.Fatalf("defaulted policy no longer valid: %v", errs)
				}
				if _, err := d.Policy.Matcher(); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatal("document without job or policy")
			}
		}
	})
}
