// Package doctest makes the shell examples of the documentation
// executable: its tests run every `sh` block of README.md and
// docs/cli.md through the real binary, in a fresh copy of the
// repository, and check the output the documents show.
//
// The convention, for anyone writing those documents:
//
//   - A fenced block with info string `sh` is run. All runnable blocks of
//     one document run in order in one bash (`set -euo pipefail`, so a
//     failing command fails the test; `cd` and `export` carry over), from
//     the root of a fresh copy of the repository, with an isolated HOME, no
//     AWS_* variables and `encjob` on PATH.
//   - A block whose first line is `# needs: aws`, `# needs: kubernetes` or
//     `# not run: <why>` is not run (the test lists it). Any other
//     `# needs:` is an error, so a typo cannot silently skip a block.
//   - A `text` block that follows an `sh` block, with nothing in between
//     but blank lines, HTML comments and at most one short line ending in
//     a colon (such as "Output:"), is that block's expected output: each
//     of its non-blank lines must appear, in this order, within the lines
//     the block printed (stdout and stderr together). "…" in an expected
//     line matches any text, for timings, sizes and absolute paths.
//   - A block that shows a command failing says so in shell, e.g.
//     `encjob apply PLAN || echo "exit code $?"`, and expects the line
//     `exit code 3`.
//   - Other info strings (`text` not after `sh`, `yaml`, `console`, none)
//     are never run.
package doctest

import (
	"fmt"
	"regexp"
	"strings"
)

// Block is one fenced code block of a Markdown document.
type Block struct {
	Lang string // first word of the info string ("sh", "text", "")
	Line int    // 1-based line of the opening fence
	Body string // the lines between the fences, each ending in "\n"
	// Skip is why a `sh` block is not run ("needs: aws", "not run: …"),
	// "" when it runs.
	Skip string
	// Expect holds the expected output lines of a `sh` block (from the
	// `text` block after it), nil when it shows none.
	Expect []string
	// ExpectLine is the line of the expected-output block's fence.
	ExpectLine int
}

// Runs reports whether the block is executed.
func (b *Block) Runs() bool { return b.Lang == "sh" && b.Skip == "" }

// knownNeeds are the only `# needs:` values; anything else is a typo
// that must not silently turn a block off.
var knownNeeds = map[string]bool{"aws": true, "kubernetes": true}

var fenceRE = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})\\s*([^`\\s]*)")

// Parse returns the fenced code blocks of a Markdown document, with the
// skip reasons and expected outputs of its `sh` blocks. It fails on an
// unterminated fence, an unknown `# needs:` or a `# not run:` without a
// reason.
func Parse(name, doc string) ([]Block, error) {
	lines := strings.SplitAfter(doc, "\n")
	var (
		blocks []Block
		// between holds the non-blank prose lines since the last fence
		// closed, to tell whether a text block belongs to the sh block
		// before it.
		between []string
	)
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			if t := strings.TrimSpace(lines[i]); t != "" {
				between = append(between, t)
			}
			continue
		}
		fence, lang := m[1], m[2]
		b := Block{Lang: lang, Line: i + 1}
		var body strings.Builder
		closed := false
		for i++; i < len(lines); i++ {
			t := strings.TrimSpace(lines[i])
			if strings.HasPrefix(t, fence[:3]) && strings.Trim(t, fence[:1]) == "" && len(t) >= len(fence) {
				closed = true
				break
			}
			body.WriteString(strings.TrimSuffix(lines[i], "\n") + "\n")
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: code block is never closed", name, b.Line)
		}
		b.Body = body.String()
		if lang == "sh" {
			skip, err := skipReason(b.Body)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, b.Line, err)
			}
			b.Skip = skip
		}
		if lang == "text" && len(blocks) > 0 && blocks[len(blocks)-1].Lang == "sh" && introducesOutput(between) {
			prev := &blocks[len(blocks)-1]
			for _, l := range strings.Split(b.Body, "\n") {
				if strings.TrimSpace(l) != "" {
					prev.Expect = append(prev.Expect, strings.TrimSpace(l))
				}
			}
			prev.ExpectLine = b.Line
		}
		blocks = append(blocks, b)
		between = nil
	}
	return blocks, nil
}

// introducesOutput: only blank lines, HTML comments and at most one
// short line ending in ':' ("Output:") stand between an sh block and
// the text block that shows its output.
func introducesOutput(between []string) bool {
	prose := 0
	for _, l := range between {
		if strings.HasPrefix(l, "<!--") && strings.HasSuffix(l, "-->") {
			continue
		}
		if !strings.HasSuffix(l, ":") || len(l) > 80 {
			return false
		}
		prose++
	}
	return prose <= 1
}

func skipReason(body string) (string, error) {
	first, _, _ := strings.Cut(body, "\n")
	first = strings.TrimSpace(first)
	switch {
	case strings.HasPrefix(first, "# needs:"):
		what := strings.TrimSpace(strings.TrimPrefix(first, "# needs:"))
		if !knownNeeds[what] {
			return "", fmt.Errorf("%q: unknown need %q (known: aws, kubernetes)", first, what)
		}
		return "needs: " + what, nil
	case strings.HasPrefix(first, "# not run:"):
		why := strings.TrimSpace(strings.TrimPrefix(first, "# not run:"))
		if why == "" {
			return "", fmt.Errorf("%q: say why the block is not run", first)
		}
		return "not run: " + why, nil
	}
	return "", nil
}

// MatchLine reports whether an output line matches an expected line:
// the expected text appears within the line, "…" (or "...") matching any
// run of characters.
func MatchLine(expected, line string) bool {
	expected = strings.ReplaceAll(expected, "...", "…")
	parts := strings.Split(expected, "…")
	pos := 0
	for _, p := range parts {
		if p == "" {
			continue
		}
		j := strings.Index(line[pos:], p)
		if j < 0 {
			return false
		}
		pos += j + len(p)
	}
	return true
}

// MissingLines returns the expected lines that do not appear, in order,
// in output: each expected line must match an output line after the one
// the previous expected line matched.
func MissingLines(expected []string, output string) []string {
	lines := strings.Split(output, "\n")
	var missing []string
	at := 0
	for _, e := range expected {
		found := false
		for k := at; k < len(lines); k++ {
			if MatchLine(e, lines[k]) {
				at, found = k+1, true
				break
			}
		}
		if !found {
			missing = append(missing, e)
		}
	}
	return missing
}
