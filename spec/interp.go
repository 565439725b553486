package spec

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Env looks up an environment variable; os.LookupEnv has this shape.
type Env func(name string) (string, bool)

// interpolate expands ${VAR}, ${VAR:-default} (default when unset or
// empty), ${VAR-default} (default when unset) and $$ (a literal $) in
// s. A "$" followed by anything else is kept as is. Values substituted
// are not expanded again. off is the byte offset of the first problem.
func interpolate(s string, env Env) (out string, problem string, bad string, off int) {
	if !strings.Contains(s, "$") {
		return s, "", "", 0
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", "unterminated ${ (write $$ for a literal $)", s[i:], i
		}
		expr := s[i+2 : i+2+end]
		ref := s[i : i+3+end]
		name, def, mode := expr, "", ""
		if j := strings.IndexAny(expr, ":-"); j >= 0 {
			name = expr[:j]
			switch {
			case strings.HasPrefix(expr[j:], ":-"):
				mode, def = ":-", expr[j+2:]
			case expr[j] == '-':
				mode, def = "-", expr[j+1:]
			default:
				return "", "unsupported expansion (want ${VAR}, ${VAR:-default} or ${VAR-default})", ref, i
			}
		}
		if !validEnvName(name) {
			return "", "invalid variable name (want letters, digits and _, not starting with a digit)", ref, i
		}
		v, ok := env(name)
		switch {
		case mode == ":-" && (!ok || v == ""):
			v = def
		case mode == "-" && !ok:
			v = def
		case !ok:
			return "", "environment variable " + name + " is not set (set it or write ${" + name + ":-default})", ref, i
		}
		b.WriteString(v)
		i += len(ref)
	}
	return b.String(), "", "", 0
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// interpolateNode expands every value scalar below n in place (mapping
// keys are left alone); positions stay those of the original text. An
// unset variable is reported at its own column when the scalar is plain
// and on one line, else at the scalar.
func (d *decoder) interpolateNode(n *yaml.Node, path *Path, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] || !d.spend(n) {
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.interpolateNode(c, path, seen)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			d.interpolateNode(c, path.Index(i), seen)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.interpolateNode(n.Content[i+1], path.Key(n.Content[i].Value), seen)
		}
	case yaml.AliasNode:
		d.interpolateNode(n.Alias, path, seen)
	case yaml.ScalarNode:
		if d.env == nil || !strings.Contains(n.Value, "$") {
			return
		}
		out, problem, bad, off := interpolate(n.Value, d.env)
		if problem != "" {
			pos := d.pos(n)
			if n.Style == 0 && !strings.Contains(n.Value, "\n") {
				pos.Column += off
			}
			t := ErrorTypeInvalid
			if strings.HasPrefix(problem, "environment variable") {
				t = ErrorTypeRequired
			}
			d.errs = append(d.errs, &Error{Type: t, Field: path.String(), BadValue: bad, Detail: problem, Pos: pos})
			d.interpErr[path.String()] = true
			return
		}
		n.Value = out
	}
}
