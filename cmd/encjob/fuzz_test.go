package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/encjob/encjob/spec"
)

// Fuzz targets for the command line's key=value and argument-file parsers.
// scripts/fuzz.sh runs each for a fixed time; crashers found go under
// testdata/fuzz/FuzzXxx/ and run as regression seeds with go test.

// words splits a fuzz input into flag values the way normalizeMulti folds
// them: one value per groupSep-separated part.
func words(s string) []string { return strings.Split(s, groupSep) }

var pairSeeds = []string{
	"provider=raw-aes\x1fkey-file=/k\x1fnamespace=ns\x1fname=k",
	"key=arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\x1fregion=us-west-2",
	"discovery=true\x1fdiscovery-account=111122223333\x1fdiscovery-partition=aws",
	"provider=raw-rsa\x1fkey-file=k.pem\x1fnamespace=ns\x1fname=n\x1fpadding=oaep-sha256",
	"key=a\x1fkey=b\x1fgrant-token=t",
	"provider=raw-aes\x1fpadding=pkcs1",
	"discovery=maybe",
	"=v", "k=", "k", "a=b=c", "tenant=acme\x1fclass", "purpose=argfile test",
	"k=\xff\xfe", "",
}

// FuzzParseContext: parsePairs (the -c and --caching parser) never panics;
// on success every word re-joins from its parsed key and value, and on
// failure nothing is returned and the error names the flag.
func FuzzParseContext(f *testing.F) {
	for _, s := range pairSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ws := words(in)
		m, order, err := parsePairs("-c/--encryption-context", ws)
		if err != nil {
			var u *usageError
			if m != nil || order != nil || !errors.As(err, &u) || u.Flag != "-c/--encryption-context" {
				t.Fatalf("error %v with results %v %v", err, m, order)
			}
			return
		}
		seen := map[string]int{}
		for _, w := range ws {
			k, v, _ := strings.Cut(w, "=")
			if k == "" || v == "" || k+"="+v != w {
				t.Fatalf("accepted %q", w)
			}
			if m[k][seen[k]] != v {
				t.Fatalf("%q: value %q not recorded in order: %q", w, v, m[k])
			}
			seen[k]++
		}
		if len(order) != len(m) {
			t.Fatalf("order %q for map %v", order, m)
		}
		for _, k := range order {
			if len(m[k]) != seen[k] {
				t.Fatalf("%s: %d values, %d words", k, len(m[k]), seen[k])
			}
		}
	})
}

// FuzzParseWrappingKeys: one or two -w groups (separated by "\n") never
// panic; a parsed group has a known provider, raw groups name their key
// file, namespace and name as given, and aws-kms groups keep every key
// the words named, in order.
func FuzzParseWrappingKeys(f *testing.F) {
	for _, s := range pairSeeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Add("key=a\nkey=b\x1fregion=r", true)
	f.Add("provider=raw-aes\x1fkey-file=k\x1fnamespace=n\x1fname=m\nprovider=raw-aes\x1fkey-file=k\x1fnamespace=n\x1fname=m", false)
	f.Fuzz(func(t *testing.T, in string, forEncrypt bool) {
		var groups [][]string
		for _, g := range strings.Split(in, "\n") {
			groups = append(groups, words(g))
		}
		g, _, err := parseWrappingKeys("-w/--wrapping-keys", groups, forEncrypt)
		if err != nil {
			var u *usageError
			if g != nil || !errors.As(err, &u) || u.Flag != "-w/--wrapping-keys" {
				t.Fatalf("error %v with group %+v", err, g)
			}
			return
		}
		members := g.Singles()
		if len(g.Members) > 0 && g.Provider != "" {
			t.Fatalf("group with members has its own provider: %+v", g)
		}
		if len(members) != len(groups) {
			t.Fatalf("%d groups made %d members (one per group, as aws-encryption-cli)", len(groups), len(members))
		}
		for i, m := range members {
			has := func(w string) bool { return slices.Contains(groups[i], w) }
			checkMember(t, m, has, forEncrypt)
			if m.Provider != spec.ProviderAWSKMS {
				continue
			}
			// The group's distinct keys, in order: a key repeated in one
			// group is wrapped once.
			var want []string
			for _, w := range groups[i] {
				if k, ok := strings.CutPrefix(w, "key="); ok && !slices.Contains(want, k) {
					want = append(want, k)
				}
			}
			if !slices.Equal(m.Keys, want) {
				t.Fatalf("group %d: keys %q, want %q", i, m.Keys, want)
			}
		}
	})
}

// checkMember checks one single-provider member of a parsed -w group.
func checkMember(t *testing.T, g *spec.KeyGroup, has func(string) bool, forEncrypt bool) {
	t.Helper()
	switch g.Provider {
	case spec.ProviderRawAES, spec.ProviderRawRSA:
		if !has("key-file="+g.KeyFile) || !has("namespace="+g.Namespace) || !has("name="+g.Name) {
			t.Fatalf("raw group %+v not from the input", g)
		}
	case spec.ProviderAWSKMS:
		if forEncrypt && (len(g.Keys) == 0 || g.Discovery) {
			t.Fatalf("encrypt group without keys or with discovery: %+v", g)
		}
		if !g.Discovery && len(g.Keys) == 0 {
			t.Fatalf("group with neither keys nor discovery: %+v", g)
		}
	default:
		t.Fatalf("unknown provider accepted: %+v", g)
	}
}

// quoteArg writes s so splitArgLine reads it back as one word.
func quoteArg(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// FuzzArgfileLine: splitArgLine never panics, and the words it returns,
// quoted and joined, split back to the same words.
func FuzzArgfileLine(f *testing.F) {
	for _, s := range []string{
		`-i "my file.txt" -o out`, `-w key=$KEY 'region=us west'   # comment`, `-c a=b\ c @inner`,
		`--suffix .x # trailing comment`, `-i "unterminated`, `'it''s'`, `"a\"b" 'c\'d' e\\f`, "tab\there\r", `#only`, `\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got, err := splitArgLine(line)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with words %q", err, got)
			}
			return
		}
		var quoted []string
		for _, w := range got {
			if strings.Contains(w, "\n") {
				return // one line cannot hold a newline; argument files split lines first
			}
			quoted = append(quoted, quoteArg(w))
		}
		again, err := splitArgLine(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("%q -> %q -> %q (%v)", line, got, again, err)
		}
	})
}

// FuzzExpandArgfiles: expanding an argument file (which may name itself)
// never panics or loops; on success no "@file" argument is left before
// "--", and arguments not starting with "@" pass through in order.
func FuzzExpandArgfiles(f *testing.F) {
	f.Add("-i in -o out\n-w key=$KEY # c\n@self", "-S")
	f.Add("@self", "@self")
	f.Add(`-c "a b" 'c d'`, "--")
	f.Add("-x '", "@missing")
	f.Fuzz(func(t *testing.T, content, arg string) {
		read := func(name string) ([]byte, error) {
			if name == "self" {
				return []byte(content), nil
			}
			return nil, errors.New("no such file")
		}
		lookup := func(k string) (string, bool) { return "v-" + k, k == "KEY" }
		in := []string{"encrypt", arg, "@self", "tail"}
		out, err := expandArgfiles(in, read, lookup)
		if err != nil {
			var u *usageError
			if out != nil || !errors.As(err, &u) || !strings.HasPrefix(u.Flag, "@") {
				t.Fatalf("error %v with %q", err, out)
			}
			return
		}
		if out[0] != "encrypt" || out[len(out)-1] != "tail" && !slices.Contains(out, "--") {
			t.Fatalf("arguments around the file lost: %q", out)
		}
		for _, a := range out {
			if a == "--" {
				break
			}
			if strings.HasPrefix(a, "@") && len(a) > 1 && !strings.Contains(content, a) && a != arg {
				t.Fatalf("unexpanded %q in %q", a, out)
			}
		}
	})
}

// FuzzNormalizeMulti: folding multi-value flags never panics and never
// loses or reorders a value before "--".
func FuzzNormalizeMulti(f *testing.F) {
	f.Add("-w\x00key=a\x00key=b\x00-c\x00x=1\x00-i\x00-\x00--suffix\x00-S\x00--caching=capacity=1\x00max_age=2\x00-wkey=c")
	f.Add("--\x00-w\x00a")
	f.Add("-w")
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\x00")
		if slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, groupSep) }) {
			return // the separator cannot appear in real arguments
		}
		out := normalizeMulti(args)
		var flat []string
		for _, a := range out {
			for _, w := range strings.Split(a, groupSep) {
				flat = append(flat, w)
			}
		}
		// Every value (an argument not starting with "-", or "-") survives,
		// in order, possibly with a flag name prepended.
		j := 0
		for _, a := range args {
			if a == "--" {
				break
			}
			if strings.HasPrefix(a, "-") && a != "-" {
				continue
			}
			for j < len(flat) && !strings.HasSuffix(flat[j], a) {
				j++
			}
			if j == len(flat) {
				t.Fatalf("%q lost: %q -> %q", a, args, out)
			}
			j++
		}
	})
}
