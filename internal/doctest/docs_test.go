package doctest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// executableDocs are the documents whose `sh` blocks must work as shown.
var executableDocs = []string{"README.md", "docs/cli.md"}

// required are commands the README must run (not skip), each at least
// this often: the quickstart and its decryption, each once and once more
// to show the second run is a no-op, and the install step. Without this a
// block marked "# not run" could quietly take the quickstart out of the
// test.
var required = map[string]int{
	"go install ./cmd/encjob":                          1,
	"encjob apply -f examples/quickstart.yaml":         2,
	"encjob apply -f examples/quickstart-decrypt.yaml": 2,
}

// TestDocsRun runs every runnable `sh` block of README.md and docs/cli.md,
// in order, in one bash per document, in a fresh copy of the repository,
// and checks that each block succeeds, prints the lines its "Output:"
// block shows, and leaves nothing git would offer to commit.
func TestDocsRun(t *testing.T) {
	root := repoRoot(t)
	for _, doc := range executableDocs {
		t.Run(strings.ReplaceAll(doc, "/", "_"), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, doc))
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := Parse(doc, string(b))
			if err != nil {
				t.Fatal(err)
			}
			checkConventions(t, doc, blocks)
			var runs []*Block
			for i := range blocks {
				bl := &blocks[i]
				if bl.Lang != "sh" {
					continue
				}
				if bl.Runs() {
					runs = append(runs, bl)
				} else {
					t.Logf("%s:%d: skipped (%s)", doc, bl.Line, bl.Skip)
				}
			}
			if doc == "README.md" {
				checkRequired(t, runs)
			}
			if len(runs) == 0 {
				t.Logf("%s: no runnable sh blocks", doc)
				return
			}
			for _, p := range runDoc(t, doc, runs) {
				t.Error(p)
			}
		})
	}
}

// checkConventions: docs use the installed binary, never `go run`.
func checkConventions(t *testing.T, doc string, blocks []Block) {
	t.Helper()
	for _, b := range blocks {
		if strings.Contains(b.Body, "go run ./cmd/encjob") {
			t.Errorf("%s:%d: uses `go run ./cmd/encjob`; docs use `encjob …` (installed with `go install ./cmd/encjob`)", doc, b.Line)
		}
	}
}

func checkRequired(t *testing.T, runs []*Block) {
	t.Helper()
	for cmd, n := range required {
		re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(cmd) + `(\s|$)`)
		got := 0
		for _, b := range runs {
			got += len(re.FindAllString(b.Body, -1))
		}
		if got < n {
			t.Errorf("README.md: the runnable blocks run %q %d times, want at least %d", cmd, got, n)
		}
	}
}

// runDoc runs the blocks in one bash in a fresh sandbox and returns what
// went wrong: blocks that failed or never ran, expected lines missing
// from a block's output, files left that git would commit.
func runDoc(t *testing.T, doc string, runs []*Block) (problems []string) {
	t.Helper()
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s := newStableSandbox(t, doc)
	s.gitCommitAll(t)
	nonce := make([]byte, 6)
	rand.Read(nonce)
	mark := "@@doctest-" + hex.EncodeToString(nonce)
	var script strings.Builder
	// set -e stops at the first failing command; the ERR trap names it
	// (the shell's own message may be just an exit status).
	fmt.Fprintf(&script, "set -euo pipefail\ntrap 'echo \"%s failed: exit status $? at: $BASH_COMMAND\"' ERR\n", mark)
	for i, b := range runs {
		fmt.Fprintf(&script, "echo \"%s block %d ${EPOCHREALTIME:-}\"\n%s", mark, i, b.Body)
	}
	fmt.Fprintf(&script, "echo \"%s end ${EPOCHREALTIME:-}\"\n", mark)
	scriptPath := filepath.Join(s.Top, "doc.sh")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := s.run(t, 3*time.Minute, s.Repo, nil, "bash", scriptPath)
	t.Logf("%s: %d blocks in %v", doc, len(runs), time.Since(start).Round(time.Millisecond))

	outs, failed, ended := splitOutput(res.Output, mark)
	logTimes(t, doc, runs, res.Output, mark)
	for i, b := range runs {
		out, ran := outs[i]
		if !ran {
			errorf("%s:%d: block never ran (an earlier block failed)", doc, b.Line)
			continue
		}
		last := i == len(runs)-1 || !hasKey(outs, i+1)
		if last && !ended {
			errorf("%s:%d: block failed (exit status %d): %s\n--- its output:\n%s", doc, b.Line, res.Code, failed, tail(out, 60))
			continue
		}
		if missing := MissingLines(b.Expect, out); len(missing) > 0 {
			errorf("%s:%d: output lacks, in the order shown at %s:%d:\n  %s\n--- the block printed:\n%s",
				doc, b.Line, doc, b.ExpectLine, strings.Join(missing, "\n  "), tail(out, 60))
		}
	}
	if ended && res.Code != 0 {
		errorf("%s: the shell exited with status %d after the last block", doc, res.Code)
	}
	if ended {
		if left := s.uncommittable(t); len(left) > 0 {
			errorf("%s: after the docs ran, git would commit these (write outputs, logs and keys to git-ignored paths such as examples/out/, or add them to .gitignore):\n  %s",
				doc, strings.Join(left, "\n  "))
		}
	}
	return problems
}

// splitOutput cuts the combined output at the block markers: the output
// of each block that started, the failure line if a command failed, and
// whether the script reached its end.
func splitOutput(out, mark string) (outs map[int]string, failed string, ended bool) {
	outs = map[int]string{}
	cur := -1
	var buf strings.Builder
	flush := func() {
		if cur >= 0 {
			outs[cur] = buf.String()
		}
		buf.Reset()
	}
	for _, line := range strings.SplitAfter(out, "\n") {
		l := strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(l, mark+" block "):
			flush()
			fmt.Sscanf(strings.TrimPrefix(l, mark+" block "), "%d", &cur)
		case l == mark+" end" || strings.HasPrefix(l, mark+" end "):
			flush()
			cur, ended = -1, true
		case strings.HasPrefix(l, mark+" failed: "):
			failed = strings.TrimPrefix(l, mark+" failed: ")
		default:
			buf.WriteString(line)
		}
	}
	flush()
	return outs, failed, ended
}

func hasKey(m map[int]string, k int) bool { _, ok := m[k]; return ok }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// TestRunDocReportsProblems feeds the harness blocks that fail in each
// way it must catch, so a harness that stopped checking would fail here.
func TestRunDocReportsProblems(t *testing.T) {
	mk := func(body string, expect ...string) *Block {
		return &Block{Lang: "sh", Line: 1, Body: body + "\n", Expect: expect, ExpectLine: 2}
	}
	t.Run("passes", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "ambient-must-not-leak")
		p := runDoc(t, "ok.md", []*Block{
			mk("cd examples\necho \"in $(basename \"$PWD\")\"", "in examples"),
			mk("echo \"HOME is $HOME\"; env | grep -c '^AWS_' || true; command -v encjob", "HOME is …/home", "0", "…/encjob"),
			mk("mkdir -p out && echo x > out/a # examples/out is git-ignored"),
		})
		if len(p) > 0 {
			t.Fatalf("problems: %q", p)
		}
	})
	t.Run("mismatch and stray file", func(t *testing.T) {
		p := runDoc(t, "bad.md", []*Block{mk("echo foo", "bar"), mk("echo x > stray.txt")})
		if len(p) != 2 || !strings.Contains(p[0], "bad.md:1: output lacks") || !strings.Contains(p[0], "bar") ||
			!strings.Contains(p[1], "git would commit") || !strings.Contains(p[1], "stray.txt") {
			t.Fatalf("problems: %q", p)
		}
	})
	t.Run("failure stops the document", func(t *testing.T) {
		p := runDoc(t, "fail.md", []*Block{mk("echo one", "one"), mk("echo two; false; echo not here"), mk("echo three")})
		if len(p) != 2 || !strings.Contains(p[0], "block failed (exit status 1): exit status 1 at: false") ||
			!strings.Contains(p[0], "two") || !strings.Contains(p[1], "never ran") {
			t.Fatalf("problems: %q", p)
		}
	})
}

// logTimes logs how long each block took (from the markers' bash
// $EPOCHREALTIME), to find what makes a document slow.
func logTimes(t *testing.T, doc string, runs []*Block, out, mark string) {
	var at []float64
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, mark+" block ") && !strings.HasPrefix(l, mark+" end ") {
			continue
		}
		f := strings.Fields(l)
		var sec float64
		if _, err := fmt.Sscanf(f[len(f)-1], "%f", &sec); err == nil {
			at = append(at, sec)
		}
	}
	var parts []string
	for i := 0; i+1 < len(at) && i < len(runs); i++ {
		parts = append(parts, fmt.Sprintf("%s:%d %.1fs", doc, runs[i].Line, at[i+1]-at[i]))
	}
	if len(parts) > 0 {
		t.Logf("block times: %s", strings.Join(parts, ", "))
	}
}
