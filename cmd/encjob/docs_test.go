package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

const cliDoc = "../../docs/cli.md"

// docFlagTable renders the flag table docs/cli.md holds for name: one
// command's flags, "global", or "crypto" (encrypt, decrypt and reencrypt
// in one table with the commands that take each flag).
func docFlagTable(name string) (string, error) {
	switch name {
	case "global":
		var ls logSettings
		return flagTable(globalFlagSet(&ls)), nil
	case "crypto":
		sets := map[string]*pflag.FlagSet{}
		for _, m := range []string{"encrypt", "decrypt", "reencrypt"} {
			sets[m] = flagSetOf(m)
		}
		var b strings.Builder
		b.WriteString("| Flag | Meaning | Commands |\n|---|---|---|\n")
		for _, f := range flagInfos(sets["reencrypt"]) {
			var in []string
			for _, m := range []string{"encrypt", "decrypt", "reencrypt"} {
				if sets[m].Lookup(f.long) != nil {
					in = append(in, strings.ToUpper(m[:1]))
				}
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.names, strings.ReplaceAll(f.usage, "|", `\|`), strings.Join(in, " "))
		}
		return b.String(), nil
	}
	fs := flagSetOf(name)
	if fs == nil {
		return "", fmt.Errorf("no flag set for %q", name)
	}
	return flagTable(fs), nil
}

var flagBlock = regexp.MustCompile(`(?s)<!-- flags: ([a-z]+) -->\n.*?<!-- end flags -->`)

// TestDocsFlagTables: the flag tables of docs/cli.md are generated from
// the flag sets; -update rewrites them.
func TestDocsFlagTables(t *testing.T) {
	doc, err := os.ReadFile(cliDoc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var failed error
	out := flagBlock.ReplaceAllStringFunc(string(doc), func(block string) string {
		name := flagBlock.FindStringSubmatch(block)[1]
		seen[name] = true
		table, err := docFlagTable(name)
		if err != nil {
			failed = err
			return block
		}
		return "<!-- flags: " + name + " -->\n" + table + "<!-- end flags -->"
	})
	if failed != nil {
		t.Fatal(failed)
	}
	for _, c := range commands {
		if c.hidden || c.name == "encrypt" || c.name == "decrypt" || c.name == "reencrypt" {
			continue
		}
		if flagSetOf(c.name) != nil && !seen[c.name] {
			t.Errorf("docs/cli.md has no flag table for %s (add <!-- flags: %s --><!-- end flags -->)", c.name, c.name)
		}
	}
	if *updateBadInputs {
		if err := os.WriteFile(cliDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out != string(doc) {
		t.Fatal("docs/cli.md flag tables are out of date; run: go test ./cmd/encjob -run TestDocsFlagTables -update")
	}
}
