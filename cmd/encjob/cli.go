package main

// The command table and the conventions every command shares: per-command
// help (`encjob help CMD`, `CMD --help`), "did you mean" for mistyped
// commands and flags, refusal of a repeated single-valued flag, the
// flag listing used by help, shell completion and docs/cli.md's flag
// tables.
//
// Each command still defines its flags next to the code that uses them
// (through newFlagSet / newCryptoFlagSet). To list a command's flags
// without running it, flagSetOf runs the command with --help against a
// recorder: parseFlags stops at --help before the command does anything,
// so help, completion and docs can never disagree with the parser.
//
// spf13/cobra was considered (it would provide help, suggestions and
// completion): the aws-encryption-cli command lines (-e/-d as modes,
// nargs="+" flags folded by normalizeMulti, @argfiles) need the parsing
// done here anyway, so cobra would have replaced little code for a large
// migration.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/encjob/encjob/spec"
)

// command is one encjob subcommand.
type command struct {
	name  string
	usage string // arguments after the name
	short string // one line for the command list
	long  string // more help text (optional)
	run   func(ctx context.Context, e *env, c *console, args []string) error
	// hidden commands are not listed (aliases).
	hidden bool
}

// commands lists every subcommand in the order help shows them.
var commands []*command

func init() {
	commands = []*command{
		{name: "validate", usage: "-f FILE...", short: "check spec files; every error with file:line:col",
			run: func(_ context.Context, e *env, _ *console, a []string) error { return cmdValidate(e, a) }},
		{name: "plan", usage: "-f FILE [flags]", short: "show what apply would do (the items that change; -v all items)", run: cmdPlan},
		{name: "apply", usage: "(-f FILE | PLANFILE) [flags]", short: "run a job or a saved plan; a policy file reconciles every item", run: cmdApply},
		{name: "check", usage: "-f POLICY [flags]", short: "audit every item against a policy (headers only, no KMS call)",
			run: func(ctx context.Context, e *env, _ *console, a []string) error { return cmdPolicyCheck(ctx, e, a) }},
		{name: "explain", usage: "-f POLICY PATH", short: "which policy rule applies to PATH, and why",
			run: func(_ context.Context, e *env, _ *console, a []string) error { return cmdExplain(e, a) }},
		{name: "render", usage: "k8s -f FILE --shards N --image IMAGE [flags]", short: "a Kubernetes Indexed Job manifest",
			run: func(_ context.Context, e *env, _ *console, a []string) error { return cmdRender(e, a) }},
		{name: "partition", usage: "-f FILE --shards N --out PREFIX", short: "list once, one part of the items per shard", run: cmdPartition},
		{name: "inspect", usage: "[--decode] FILE|s3://BUCKET/KEY|-", short: "print a message header as JSON (no keys needed)",
			run: func(ctx context.Context, e *env, _ *console, a []string) error { return cmdInspect(ctx, e, a) }},
		{name: "report", usage: "[--json] LOG|DIR|s3://PREFIX/...", short: "merge (shard) metadata logs into one summary",
			run: func(ctx context.Context, e *env, _ *console, a []string) error { return cmdReportMerge(ctx, e, a) }},
		{name: "encrypt", usage: "-i IN -o OUT -w KEYS (-S | --metadata-output FILE) [flags]", short: "encrypt files or objects (aws-encryption-cli compatible)", run: cryptoCmd("encrypt")},
		{name: "decrypt", usage: "-i IN -o OUT -w KEYS (-S | --metadata-output FILE) [flags]", short: "decrypt files or objects (aws-encryption-cli compatible)", run: cryptoCmd("decrypt")},
		{name: "reencrypt", usage: "-i IN -o OUT --source-wrapping-keys KEYS -w KEYS [flags]", short: "re-encrypt under new keys in one streaming pass", run: cryptoCmd("reencrypt")},
		{name: "keystore", usage: "create-key|version-key|describe --table T [--kms-key ARN] [flags]", short: "create, rotate and list hierarchical keyring branch keys",
			long: keystoreUsage, run: cmdKeystore},
		{name: "version", usage: "", short: "print the version and VCS revision",
			run: func(_ context.Context, e *env, _ *console, a []string) error { return cmdVersion(e, a) }},
		{name: "completion", usage: "bash|zsh|fish", short: "print a shell completion script",
			long: "Load it with, e.g.:\n  bash: source <(encjob completion bash)\n  zsh:  encjob completion zsh > \"${fpath[1]}/_encjob\"\n  fish: encjob completion fish > ~/.config/fish/completions/encjob.fish\n",
			run:  func(_ context.Context, e *env, _ *console, a []string) error { return cmdCompletion(e, a) }},
		{name: "help", usage: "[COMMAND]", short: "help for a command",
			run: func(_ context.Context, e *env, _ *console, a []string) error { return cmdHelp(e, a) }},
	}
}

func cryptoCmd(mode string) func(context.Context, *env, *console, []string) error {
	return func(ctx context.Context, e *env, c *console, a []string) error { return cmdCrypto(ctx, e, c, mode, a) }
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func commandNames() []string {
	var out []string
	for _, c := range commands {
		if !c.hidden {
			out = append(out, c.name)
		}
	}
	return out
}

// unknownCommand is the error for a mistyped command, with suggestions.
func unknownCommand(name string) error {
	u := usageErrorf(sanitize(name), "unknown command")
	if s := suggest(name, commandNames()); len(s) > 0 {
		return u.withHint("did you mean %s?", strings.Join(s, " or "))
	}
	return u.withHint("run 'encjob help' for the commands")
}

// suggest returns the candidates within a small edit distance of s (or
// that s is a prefix of), closest first.
func suggest(s string, candidates []string) []string {
	type cand struct {
		name string
		d    int
	}
	var found []cand
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		switch {
		case d <= max(1, min(2, len(c)/3)):
			found = append(found, cand{c, d})
		case len(s) >= 2 && strings.HasPrefix(c, s):
			found = append(found, cand{c, 3})
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].d < found[j].d })
	var out []string
	for _, f := range found {
		out = append(out, f.name)
	}
	if len(out) > 3 {
		out = out[:3]
	}
	return out
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance: transposed letters ("paln") count as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// parseFlagSet parses args into fs and refuses a single-valued flag given
// more than once (as aws-encryption-cli does for -i a -i b: the last one
// silently winning hides a mistake). Repeatable flags are the list and
// count flags. Unknown flags get "did you mean" hints.
func parseFlagSet(fs *pflag.FlagSet, args []string) error {
	if err := checkDashForms(fs, args); err != nil {
		return err
	}
	seen := map[string]int{}
	err := fs.ParseAll(args, func(f *pflag.Flag, value string) error {
		seen[f.Name]++
		if seen[f.Name] > 1 && !repeatable(f) {
			return &usageError{Flag: flagLabel(f), Msg: "given more than once; give it once"}
		}
		return fs.Set(f.Name, value)
	})
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return err
	}
	var u *usageError
	if errors.As(err, &u) {
		return u
	}
	return flagParseError(fs, err)
}

// checkDashForms refuses the argument spellings pflag would misread or
// act on silently, as aws-encryption-cli (argparse) refuses them:
//   - a single-dash word that is a long flag or the start of one
//     ("-input", "-help", "-recurs"): pflag would read "-input" as -i with
//     the value "nput", and "-help" as a request for help that printed
//     nothing and exited 0;
//   - "h" inside a cluster of short flags ("-vh"), and "--help=x": pflag
//     answers both with ErrHelp, which would end the command silently.
//
// Only "-h" and "--help" ask for help (dispatch prints it). Values of
// flags are skipped, so a value that starts with "-" is not misjudged.
func checkDashForms(fs *pflag.FlagSet, args []string) error {
	longs := []string{"help"}
	fs.VisitAll(func(f *pflag.Flag) { longs = append(longs, f.Name) })
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return nil
		case strings.HasPrefix(a, "--help="):
			return usageErrorf(sanitize(a), "unknown flag").withHint("--help takes no value")
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			if f := fs.Lookup(name); f != nil && !hasValue && f.NoOptDefVal == "" {
				i++ // its value
			}
			continue
		case len(a) < 2 || a[0] != '-':
			continue
		}
		if a == "-h" {
			continue
		}
		word, _, _ := strings.Cut(a[1:], "=")
		if len(word) > 1 {
			var like []string
			for _, l := range longs {
				if len(l) > 1 && strings.HasPrefix(l, word) {
					like = append(like, "--"+l)
				}
			}
			if len(like) > 0 {
				return usageErrorf(sanitize(a), "unknown flag (a long flag takes two dashes)").withHint("did you mean %s?", strings.Join(like, " or "))
			}
		}
		for j := 1; j < len(a); j++ {
			if a[j] == 'h' {
				return usageErrorf(sanitize(a), "-h cannot be combined with other flags").withHint("run '%s --help' for help", fs.Name())
			}
			f := fs.ShorthandLookup(a[j : j+1])
			if f == nil {
				break // pflag reports the unknown shorthand
			}
			if f.NoOptDefVal == "" { // takes a value: the rest, or the next argument
				if j == len(a)-1 {
					i++
				}
				break
			}
		}
	}
	return nil
}

// repeatable reports whether a flag may be given several times.
func repeatable(f *pflag.Flag) bool {
	t := f.Value.Type()
	return t == "count" || strings.HasSuffix(t, "Array") || strings.HasSuffix(t, "Slice")
}

func flagLabel(f *pflag.Flag) string {
	if f.Shorthand != "" && f.Shorthand != f.Name {
		return "-" + f.Shorthand + "/--" + f.Name
	}
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// flagParseError turns a pflag error into a usage error with a hint: the
// closest flag names for an unknown flag, else where the flags are listed.
func flagParseError(fs *pflag.FlagSet, err error) error {
	msg := err.Error()
	u := &usageError{Msg: sanitize(msg), Hint: "run '" + fs.Name() + " --help' for the flags"}
	name := ""
	if rest, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		name = rest
	} else if rest, ok := strings.CutPrefix(msg, "unknown shorthand flag: "); ok {
		name, _, _ = strings.Cut(strings.Trim(rest, "'"), "'")
	}
	if name != "" {
		var names []string
		fs.VisitAll(func(f *pflag.Flag) {
			if !f.Hidden {
				names = append(names, f.Name)
			}
		})
		if s := suggest(name, names); len(s) > 0 {
			for i := range s {
				s[i] = "--" + s[i]
			}
			u.Hint = "did you mean " + strings.Join(s, " or ") + "?"
		}
	}
	return u
}

// helpRequested reports whether args ask for help before any "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" {
			return true
		}
	}
	return false
}

// flagSetOf returns the flags of a command without running it (nil when it
// has none), by running it with --help against a recorder.
func flagSetOf(name string) *pflag.FlagSet {
	switch name {
	case "encrypt", "decrypt", "reencrypt":
		var f cryptoFlags
		return newCryptoFlagSet(name, &f, io.Discard)
	case "completion", "help":
		return nil
	}
	c := lookupCommand(name)
	if c == nil {
		return nil
	}
	var rec *pflag.FlagSet
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" },
		onFlagSet: func(fs *pflag.FlagSet) { rec = fs }}
	args := []string{"--help"}
	if name == "render" {
		args = []string{"k8s", "--help"}
	}
	_ = c.run(context.Background(), e, &console{w: io.Discard}, args)
	return rec
}

// commandHelp writes the help of one command: usage, description, flags.
func commandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: encjob %s %s\n\n%s.\n", c.name, c.usage, upperFirst(c.short))
	if c.long != "" {
		fmt.Fprintf(w, "\n%s", c.long)
	}
	if fs := flagSetOf(c.name); fs != nil {
		fmt.Fprintf(w, "\nFlags:\n%s", flagUsages(fs))
	}
	if c.name != "completion" && c.name != "help" && c.name != "version" {
		var ls logSettings
		fmt.Fprintf(w, "\nGlobal flags:\n%s", flagUsages(globalFlagSet(&ls)))
	}
	fmt.Fprintln(w, "\ndocs/cli.md is the reference.")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// cmdHelp: encjob help [COMMAND]
func cmdHelp(e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, usageText())
		return nil
	}
	c := lookupCommand(args[0])
	if c == nil {
		return unknownCommand(args[0])
	}
	commandHelp(e.stdout, c)
	return nil
}

// flagInfo is one flag as help, completion and docs show it.
type flagInfo struct {
	names string // "-f, --file FILE"
	usage string
	long  string // "file"
	short string // "f"
	value string // "" for flags without a value
}

// valueNames name the values of flags in help ("-f, --file FILE").
var valueNames = map[string]string{
	"file": "FILE", "name": "NAME", "shard": "I/N", "shards": "N", "out": "PATH", "input": "IN", "output": "OUT",
	"wrapping-keys": "K=V…", "source-wrapping-keys": "K=V…", "encryption-context": "K=V…", "remove-context": "KEY…",
	"caching": "K=V…", "suffix": "SUFFIX", "strip-suffix": "SUFFIX", "metadata-output": "FILE", "commitment-policy": "POLICY",
	"required-context-keys": "KEY…", "reproduced-encryption-context": "K=V…", "algorithm": "SUITE", "frame-length": "BYTES", "max-length": "BYTES", "env": "K=V", "image": "IMAGE",
	"namespace": "NAMESPACE", "items": "PREFIX", "metadata-prefix": "PREFIX", "service-account": "NAME",
	"requests-cpu": "CPU", "limits-cpu": "CPU", "requests-memory": "SIZE", "limits-memory": "SIZE", "s3-region": "REGION",
	"log-level": "LEVEL", "log-format": "FORMAT",
}

// flagInfos lists the visible flags of fs in definition order. The value
// name is the first `backquoted` word of the usage, else derived from the
// type; defaults are shown only where they say something ((default 3),
// not (default -1) sentinels or (default false)).
func flagInfos(fs *pflag.FlagSet) []flagInfo {
	var out []flagInfo
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		varname, usage := pflag.UnquoteUsage(f)
		if n, ok := valueNames[f.Name]; ok {
			varname = n
		}
		switch varname {
		case "string", "stringArray", "strings":
			varname = "VALUE"
		case "int", "int32", "int64", "uint":
			varname = "N"
		}
		switch f.Value.Type() {
		case "bool", "count":
			varname = ""
		}
		varname = strings.ToUpper(varname)
		fi := flagInfo{long: f.Name, value: varname, usage: usage}
		var b strings.Builder
		switch {
		case len(f.Name) == 1:
			b.WriteString("-" + f.Name)
		case f.Shorthand != "":
			fi.short = f.Shorthand
			b.WriteString("-" + f.Shorthand + ", --" + f.Name)
		default:
			b.WriteString("--" + f.Name)
		}
		if varname != "" {
			if f.NoOptDefVal != "" {
				b.WriteString(" [" + varname + "]")
			} else {
				b.WriteString(" " + varname)
			}
		}
		fi.names = b.String()
		if d := f.DefValue; d != "" && d != "0" && d != "-1" && d != "false" && d != "[]" && f.Value.Type() != "count" &&
			!strings.Contains(usage, "default") {
			fi.usage += " (default " + d + ")"
		}
		out = append(out, fi)
	})
	return out
}

// flagUsages renders flagInfos as aligned help lines.
func flagUsages(fs *pflag.FlagSet) string {
	infos := flagInfos(fs)
	width := 0
	for _, f := range infos {
		width = max(width, len(f.names))
	}
	var b strings.Builder
	for _, f := range infos {
		fmt.Fprintf(&b, "  %-*s   %s\n", width, f.names, f.usage)
	}
	return b.String()
}

// flagTable renders the flags of a command as the Markdown table of
// docs/cli.md (regenerated by TestDocsFlagTables).
func flagTable(fs *pflag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| Flag | Meaning |\n|---|---|\n")
	for _, f := range flagInfos(fs) {
		fmt.Fprintf(&b, "| `%s` | %s |\n", f.names, strings.ReplaceAll(f.usage, "|", `\|`))
	}
	return b.String()
}

// docCommands are the commands whose flag tables docs/cli.md holds.
func docCommands() []string {
	var out []string
	for _, c := range commands {
		if !c.hidden && flagSetOf(c.name) != nil && !slices.Contains([]string{"decrypt", "reencrypt"}, c.name) {
			out = append(out, c.name)
		}
	}
	return append(out, "decrypt", "reencrypt")
}

// specStdinName names a spec read from standard input in positions.
const specStdinName = "<stdin>"

// maxSpecStdin bounds a spec read from standard input (the spec loader
// refuses files above its own, smaller limit with a clear error).
const maxSpecStdin = 32 << 20

// loadSpec loads a spec file; "-" reads standard input, once per run (a
// command that looks at the spec twice, e.g. for a policy and then a job,
// sees the same text). Relative paths in a spec from stdin resolve from
// the working directory.
func loadSpec(e *env, file string) ([]spec.Document, error) {
	if file != "-" {
		return spec.LoadFile(file, nil)
	}
	if !e.specRead {
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxSpecStdin+1))
		if err != nil {
			return nil, fmt.Errorf("-f -: reading the spec from standard input: %w", err)
		}
		e.specStdin, e.specRead = b, true
	}
	if len(e.specStdin) > maxSpecStdin {
		return nil, fmt.Errorf("-f -: the spec on standard input is larger than %d bytes", maxSpecStdin)
	}
	if len(bytes.TrimSpace(e.specStdin)) == 0 {
		return nil, fmt.Errorf("-f -: standard input holds no spec")
	}
	return spec.Parse(specStdinName, e.specStdin, nil)
}
