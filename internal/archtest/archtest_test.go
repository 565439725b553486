// Package archtest holds the tests that keep the module's architecture
// honest: who may import whom, and how long a function may grow. They read
// the source with go/parser, so they see exactly what the compiler sees
// (build tags aside) and need no build.
package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/encjob/encjob"

// pkg is one directory's non-test Go files.
type pkg struct {
	dir     string // slash path relative to the module root, "." for the root
	imports map[string]bool
	files   []*ast.File
	fset    *token.FileSet
}

// loadPackages parses every non-test .go file of the main module (the
// interop module, testdata and node_modules are not part of it).
func loadPackages(t *testing.T) map[string]*pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", ".encjob-state":
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module (interop/, peers)
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := pkgs[rel]
		if p == nil {
			p = &pkg{dir: rel, imports: map[string]bool{}, fset: fset}
			pkgs[rel] = p
		}
		p.files = append(p.files, f)
		for _, im := range f.Imports {
			p.imports[strings.Trim(im.Path.Value, `"`)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages under %s: the walk is broken", len(pkgs), root)
	}
	return pkgs
}

// under reports whether dir is prefix or inside it.
func under(dir, prefix string) bool {
	return dir == prefix || strings.HasPrefix(dir, prefix+"/")
}

// TestImportGraph asserts the layering of the design: the engine knows no
// job, the executor executes plans without reading specs, and only the
// storage and KMS keyring packages talk to AWS services directly.
func TestImportGraph(t *testing.T) {
	pkgs := loadPackages(t)
	jobPkgs := []string{"spec", "planner", "executor", "sources", "internal/job", "internal/keygroup",
		"internal/policy", "internal/report", "internal/shard", "internal/k8s", "cmd"}
	awsSDK := []string{
		"github.com/aws/aws-sdk-go-v2/service/s3",
		"github.com/aws/aws-sdk-go-v2/service/kms",
		"github.com/aws/aws-sdk-go-v2/service/dynamodb",
	}
	// Packages allowed to hold an AWS service client: storage, the KMS
	// keyrings and blob format, the hierarchical keyring's key store, the
	// KMS emulator and the tools that drive real servers (tests, benchmarks,
	// the CLI that builds clients from flags).
	sdkAllowed := []string{"sources", "crypto/awskms", "crypto/keystore", "internal/kmsblob", "kmsemu",
		"internal/kmsconformance", "internal/dynamotest", "bench", "cmd"}
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		p := pkgs[d]
		if under(d, "crypto") {
			for _, j := range jobPkgs {
				if p.imports[module+"/"+j] || hasPrefixImport(p.imports, module+"/"+j+"/") {
					t.Errorf("%s imports job package %s: the message engine must not know jobs", d, j)
				}
			}
		}
		if under(d, "executor") && p.imports[module+"/spec"] {
			t.Errorf("%s imports spec: the executor executes plan items, it does not interpret specs", d)
		}
		allowed := false
		for _, a := range sdkAllowed {
			if under(d, a) {
				allowed = true
			}
		}
		if !allowed {
			for _, s := range awsSDK {
				if p.imports[s] {
					t.Errorf("%s imports %s: only storage (sources) and the KMS keyring packages talk to AWS services", d, s)
				}
			}
		}
	}
}

func hasPrefixImport(imports map[string]bool, prefix string) bool {
	for im := range imports {
		if strings.HasPrefix(im, prefix) {
			return true
		}
	}
	return false
}

// maxFuncLines is the longest a non-test function may be: beyond it a
// function does more than one thing and its branches go untested.
const maxFuncLines = 100

func TestFunctionLength(t *testing.T) {
	pkgs := loadPackages(t)
	var long []string
	for _, p := range pkgs {
		for _, f := range p.files {
			if ast.IsGenerated(f) {
				continue
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				start := p.fset.Position(fn.Pos())
				n := p.fset.Position(fn.End()).Line - start.Line + 1
				if n > maxFuncLines {
					long = append(long, fmt.Sprintf("%s: %s has %d lines", start, fn.Name.Name, n))
				}
			}
		}
	}
	sort.Strings(long)
	for _, l := range long {
		t.Errorf("%s (limit %d): split it by concern", l, maxFuncLines)
	}
}
