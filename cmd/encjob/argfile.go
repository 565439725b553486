package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// maxArgfileDepth bounds @file expansion inside argument files.
const maxArgfileDepth = 8

// maxArgfileSize bounds one argument file; maxArgBytes bounds all the
// arguments an expansion yields (a file naming itself twice at every
// level would otherwise double them eight times).
const (
	maxArgfileSize = 1 << 20
	maxArgBytes    = 4 << 20
)

// readArgfile reads an argument file of at most maxArgfileSize bytes.
func readArgfile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxArgfileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxArgfileSize {
		return nil, fmt.Errorf("larger than %d bytes; not an argument file", maxArgfileSize)
	}
	return data, nil
}

// expandArgfiles replaces every "@FILE" argument with the arguments read
// from FILE, as aws-encryption-cli does: each line is split like a POSIX
// shell would (single and double quotes, backslash escapes), an unquoted
// "#" starts a comment that runs to the end of the line, and "~" and
// $VAR / ${VAR} are expanded in each argument (unknown variables are left
// as written). Argument files may name further argument files. Arguments
// after "--" are left alone.
func expandArgfiles(args []string, readFile func(string) ([]byte, error), lookup func(string) (string, bool)) ([]string, error) {
	out, err := expandArgfilesDepth(args, readFile, lookup, 0)
	if err != nil {
		return nil, err
	}
	if n := argBytes(out); n > maxArgBytes {
		return nil, usageErrorf("@file", "argument files expand to %d bytes of arguments, more than %d", n, maxArgBytes)
	}
	return out, nil
}

func argBytes(args []string) int {
	n := 0
	for _, a := range args {
		n += len(a) + 1
	}
	return n
}

func expandArgfilesDepth(args []string, readFile func(string) ([]byte, error), lookup func(string) (string, bool), depth int) ([]string, error) {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		if !strings.HasPrefix(a, "@") || len(a) == 1 {
			out = append(out, a)
			continue
		}
		if depth >= maxArgfileDepth {
			return nil, usageErrorf(a, "argument files nested deeper than %d levels", maxArgfileDepth)
		}
		name := a[1:]
		data, err := readFile(name)
		if err != nil {
			return nil, usageErrorf(a, "reading argument file: %v", err)
		}
		var fromFile []string
		for n, line := range strings.Split(string(data), "\n") {
			words, err := splitArgLine(line)
			if err != nil {
				return nil, usageErrorf(a, "%s:%d: %v", name, n+1, err)
			}
			for _, w := range words {
				fromFile = append(fromFile, expandVars(expandUser(w), lookup))
			}
		}
		sub, err := expandArgfilesDepth(fromFile, readFile, lookup, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
		if n := argBytes(out); n > maxArgBytes { // stop growing at once
			return nil, usageErrorf(a, "argument files expand to more than %d bytes of arguments", maxArgBytes)
		}
	}
	return out, nil
}

// splitArgLine splits one argument-file line into words.
func splitArgLine(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			switch {
			case c == quote:
				quote = 0
			case c == '\\' && i+1 < len(line) && (line[i+1] == quote || line[i+1] == '\\'):
				i++
				cur.WriteByte(line[i])
			default:
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\':
			if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			}
			inWord = true
		case c == '#':
			i = len(line)
		case c == ' ' || c == '\t' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func expandUser(s string) string {
	if s != "~" && !strings.HasPrefix(s, "~/") {
		return s
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return s
	}
	return home + s[1:]
}

var envRef = regexp.MustCompile(`\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})`)

// expandVars replaces $NAME and ${NAME} with their values; unset
// variables are left as written.
func expandVars(s string, lookup func(string) (string, bool)) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := lookup(name); ok {
			return v
		}
		return m
	})
}
