package job_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// imports returns the packages the non-test files of dir import.
func imports(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no Go files (%v)", dir, err)
	}
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out[p] = true
		}
	}
	return out
}

// TestJobLayerImports: the runtime is the one place a job's key groups,
// CMMs, storage and KMS clients are made. The planner and the policy
// reconciler hold them through it, so neither imports the caching CMM,
// the KMS keyring, kmsblob or an AWS SDK; the executor applies items and
// reads no spec. No package of the job layer imports an AWS SDK service.
func TestJobLayerImports(t *testing.T) {
	const mod = "github.com/encjob/encjob/"
	sdk := "github.com/aws/aws-sdk-go-v2/service/"
	forbidden := map[string][]string{
		"../../planner":  {mod + "crypto/caching", mod + "crypto/awskms", mod + "internal/kmsblob"},
		"../policy":      {mod + "crypto/caching", mod + "internal/kmsblob"},
		"../../executor": {mod + "spec", mod + "crypto/caching", mod + "crypto/awskms"},
		".":              {},
		"../report":      {mod + "spec"},
	}
	for dir, bad := range forbidden {
		for p := range imports(t, dir) {
			if strings.HasPrefix(p, sdk) {
				t.Errorf("%s imports the AWS SDK service %s (only sources/ and the KMS packages may)", dir, p)
			}
			for _, b := range bad {
				if p == b {
					t.Errorf("%s imports %s", dir, b)
				}
			}
		}
	}
}

// TestExecutorReadsNoSpec: the executor applies what the plan items and
// the runtime's derived settings say; it does not reach the job spec
// through the planner's runtime either (no selector ".Job").
func TestExecutorReadsNoSpec(t *testing.T) {
	files, _ := filepath.Glob("../../executor/*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Job" {
				t.Errorf("%s reads the spec (.Job)", f)
			}
			return true
		})
	}
}
