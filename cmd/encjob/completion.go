package main

import (
	"fmt"
	"io"
	"strings"
)

// parseCompletionArgs parses encjob completion's one argument, the shell.
func parseCompletionArgs(args []string) (string, error) {
	if len(args) != 1 {
		return "", usageErrorf("completion", "give one shell: bash, zsh or fish").withHint("e.g. source <(encjob completion bash)")
	}
	switch args[0] {
	case "bash", "zsh", "fish":
		return args[0], nil
	}
	u := usageErrorf(sanitize(args[0]), "unknown shell; want bash, zsh or fish")
	if s := suggest(args[0], []string{"bash", "zsh", "fish"}); len(s) > 0 {
		u.withHint("did you mean %s?", s[0])
	}
	return "", u
}

// cmdCompletion: encjob completion bash|zsh|fish prints a completion
// script built from the command table and each command's flag set, so it
// lists exactly the commands and flags the parser accepts.
func cmdCompletion(e *env, args []string) error {
	shell, err := parseCompletionArgs(args)
	if err != nil {
		return err
	}
	switch shell {
	case "bash":
		bashCompletion(e.stdout)
	case "zsh":
		zshCompletion(e.stdout)
	default:
		fishCompletion(e.stdout)
	}
	return nil
}

// completionFlags lists, per command, its flags (nil for none).
func completionFlags() map[string][]flagInfo {
	out := map[string][]flagInfo{}
	var ls logSettings
	global := flagInfos(globalFlagSet(&ls))
	for _, c := range commands {
		if fs := flagSetOf(c.name); fs != nil {
			out[c.name] = flagInfos(fs)
		}
		if c.name != "completion" && c.name != "help" && c.name != "version" {
			out[c.name] = append(out[c.name], global...)
		}
	}
	return out
}

// positionalWords are the fixed words some commands take first.
var positionalWords = map[string]string{
	"render":     "k8s",
	"completion": "bash zsh fish",
}

func bashCompletion(w io.Writer) {
	flags := completionFlags()
	fmt.Fprintf(w, "# bash completion for encjob; load with: source <(encjob completion bash)\n")
	fmt.Fprintf(w, "_encjob() {\n")
	fmt.Fprintf(w, "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" opts=\"\"\n")
	fmt.Fprintf(w, "  if [[ $COMP_CWORD -eq 1 ]]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(commandNames(), " "))
	fmt.Fprintf(w, "  case \"${COMP_WORDS[1]}\" in\n")
	for _, c := range commands {
		var names []string
		for _, f := range flags[c.name] {
			if f.short != "" {
				names = append(names, "-"+f.short)
			}
			if len(f.long) == 1 {
				names = append(names, "-"+f.long)
			} else {
				names = append(names, "--"+f.long)
			}
		}
		names = append(names, "--help")
		words := positionalWords[c.name]
		if c.name == "help" {
			words = strings.Join(commandNames(), " ")
		}
		fmt.Fprintf(w, "    %s)\n      opts=%q\n", c.name, strings.Join(names, " "))
		if words != "" {
			fmt.Fprintf(w, "      if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", words)
		}
		fmt.Fprintf(w, "      ;;\n")
	}
	fmt.Fprintf(w, "  esac\n")
	fmt.Fprintf(w, "  if [[ \"$cur\" == -* ]]; then\n    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n  else\n    COMPREPLY=($(compgen -f -- \"$cur\"))\n  fi\n}\n")
	fmt.Fprintf(w, "complete -o default -o filenames -F _encjob encjob\n")
}

// zshQuote makes s safe inside a single-quoted _arguments spec.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", "'\\''", "[", "(", "]", ")", ":", " -", "\\", "/", "`", "")
	return r.Replace(s)
}

func zshCompletion(w io.Writer) {
	flags := completionFlags()
	fmt.Fprintf(w, "#compdef encjob\n# zsh completion for encjob; install with: encjob completion zsh > \"${fpath[1]}/_encjob\"\n")
	fmt.Fprintf(w, "_encjob() {\n  local -a cmds\n  cmds=(\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "    '%s:%s'\n", c.name, zshQuote(c.short))
		}
	}
	fmt.Fprintf(w, "  )\n  if (( CURRENT == 2 )); then\n    _describe 'command' cmds\n    return\n  fi\n")
	fmt.Fprintf(w, "  local cmd=$words[2]\n  shift words\n  (( CURRENT-- ))\n  case $cmd in\n")
	for _, c := range commands {
		fmt.Fprintf(w, "    %s)\n      _arguments -s \\\n", c.name)
		for _, f := range flags[c.name] {
			desc := zshQuote(f.usage)
			val := ""
			if f.value != "" {
				val = ":" + strings.ToLower(f.value) + ":_files"
			}
			rep := ""
			if f.value == "" && strings.Contains(f.names, "-v") && f.long == "verbose" {
				rep = "*"
			}
			long := "--" + f.long
			if len(f.long) == 1 {
				long = "-" + f.long
			}
			if f.short != "" {
				fmt.Fprintf(w, "        '(-%s %s)'%s{-%s,%s}'[%s]%s' \\\n", f.short, long, rep, f.short, long, desc, val)
			} else {
				fmt.Fprintf(w, "        '%s%s[%s]%s' \\\n", rep, long, desc, val)
			}
		}
		switch {
		case c.name == "help":
			fmt.Fprintf(w, "        '1:command:(%s)' \\\n", strings.Join(commandNames(), " "))
		case positionalWords[c.name] != "":
			fmt.Fprintf(w, "        '1:argument:(%s)' \\\n", positionalWords[c.name])
		default:
			fmt.Fprintf(w, "        '*:file:_files' \\\n")
		}
		fmt.Fprintf(w, "        '(- *)--help[show help]'\n      ;;\n")
	}
	fmt.Fprintf(w, "  esac\n}\n")
	fmt.Fprintf(w, "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n  _encjob \"$@\"\nelse\n  compdef _encjob encjob\nfi\n")
}

// fishQuote makes s safe inside a single-quoted fish string.
func fishQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func fishCompletion(w io.Writer) {
	flags := completionFlags()
	fmt.Fprintf(w, "# fish completion for encjob; install with: encjob completion fish > ~/.config/fish/completions/encjob.fish\n")
	fmt.Fprintf(w, "complete -c encjob -f\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "complete -c encjob -n '__fish_use_subcommand' -a %s -d '%s'\n", c.name, fishQuote(c.short))
		}
	}
	for _, c := range commands {
		cond := fmt.Sprintf("__fish_seen_subcommand_from %s", c.name)
		for _, f := range flags[c.name] {
			var b strings.Builder
			fmt.Fprintf(&b, "complete -c encjob -n '%s'", cond)
			if f.short != "" {
				fmt.Fprintf(&b, " -s %s", f.short)
			}
			if len(f.long) == 1 {
				fmt.Fprintf(&b, " -o %s", f.long)
			} else {
				fmt.Fprintf(&b, " -l %s", f.long)
			}
			if f.value != "" {
				b.WriteString(" -r -F")
			}
			fmt.Fprintf(&b, " -d '%s'\n", fishQuote(f.usage))
			io.WriteString(w, b.String())
		}
		switch {
		case c.name == "help":
			fmt.Fprintf(w, "complete -c encjob -n '%s' -a '%s'\n", cond, strings.Join(commandNames(), " "))
		case positionalWords[c.name] != "":
			fmt.Fprintf(w, "complete -c encjob -n '%s' -a '%s'\n", cond, positionalWords[c.name])
		default:
			fmt.Fprintf(w, "complete -c encjob -n '%s' -F\n", cond)
		}
	}
}
