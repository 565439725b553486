package main

import (
	"crypto/rand"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// guardDir is a directory with a raw AES key "key" and a tree in/ of
// three files plus "secret.txt" (excluded by the spec) and a symlink
// "link.txt" (not followed); empty out/.
func guardDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	writeFile(t, filepath.Join(dir, "key"), key, 0o600)
	for name, body := range map[string]string{"a.txt": "alpha", "b/c.txt": "gamma", "b/d.txt": "delta", "secret.txt": "do not touch"} {
		writeFile(t, filepath.Join(dir, "in", name), []byte(body), 0o644)
	}
	writeFile(t, filepath.Join(dir, "elsewhere", "x.txt"), []byte("outside"), 0o644)
	if err := os.Symlink("../elsewhere/x.txt", filepath.Join(dir, "in", "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../elsewhere", filepath.Join(dir, "in", "linkdir")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	return dir
}

const guardJob = `apiVersion: encjob.dev/v1
kind: EncryptionJob
metadata: {name: guarded}
spec:
  operation: encrypt
  sources: [{path: ./in, exclude: ["secret.txt"]}]
  output: {%s}
  keyGroups:
    dev: {provider: raw-aes, keyFile: ./key, namespace: encjob, name: dev}
  encrypt: {keyGroup: dev}
`

func writeJob(t *testing.T, dir, name, output string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, name), []byte(strings.Replace(guardJob, "%s", output, 1)), 0o644)
}

// editPlan loads a saved plan as generic JSON, lets edit change it and
// writes it back.
func editPlan(t *testing.T, path string, edit func(plan map[string]any, items []any, item func(suffix string) map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var plan map[string]any
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	items, _ := plan["items"].([]any)
	item := func(suffix string) map[string]any {
		for _, x := range items {
			m := x.(map[string]any)
			if strings.HasSuffix(m["input"].(string), suffix) {
				return m
			}
		}
		t.Fatalf("no plan item ends with %q", suffix)
		return nil
	}
	edit(plan, items, item)
	b, err = json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b, 0o644)
}

// A saved plan edited in any field that decides what is read or written
// is refused with exit 3, naming the item and the field; nothing is
// written and no source changes.
func TestE2ESavedPlanEditsRefused(t *testing.T) {
	type editFn = func(plan map[string]any, items []any, item func(string) map[string]any)
	set := func(suffix, field string, v any) editFn {
		return func(_ map[string]any, _ []any, item func(string) map[string]any) { item(suffix)[field] = v }
	}
	for _, tc := range []struct {
		name    string
		inPlace bool
		edit    editFn
		want    string // in stderr
	}{
		{"source index too large", false, set("/a.txt", "source", 7), "source: index 7 out of range"},
		{"source index negative", false, set("/a.txt", "source", -1), "source: index -1 out of range"},
		{"out_root elsewhere", false, set("/a.txt", "out_root", "@ELSEWHERE@"), "out_root:"},
		{"out_root onto the source tree", false, set("/a.txt", "out_root", "@IN@"), "out_root:"},
		{"out_key escaping", false, set("/a.txt", "out_key", "../escaped.encrypted"), "out_key:"},
		{"out_key renamed", false, set("/a.txt", "out_key", "b/c.txt"), "out_key:"},
		{"output renamed", false, set("/a.txt", "output", "@OUT@/zzz"), "output:"},
		{"key with ..", false, set("/a.txt", "key", "../key"), "key:"},
		{"absolute key", false, set("/a.txt", "key", "/etc/passwd"), "key:"},
		{"key excluded by the spec", false, set("/a.txt", "key", "secret.txt"), "key:"},
		{"key that does not exist", false, set("/a.txt", "key", "nope.txt"), "key:"},
		{"key through an unfollowed symlink", false, set("/a.txt", "key", "linkdir/x.txt"), "key:"},
		{"key that is an unfollowed symlink", false, set("/a.txt", "key", "link.txt"), "key:"},
		{"action of another operation", false, set("/a.txt", "action", "decrypt"), "action:"},
		{"unknown action", false, set("/a.txt", "action", "shred"), "action:"},
		{"skip turned into encrypt", false, set("/link.txt", "action", "encrypt"), "plan item"},
		{"input renamed", false, set("/a.txt", "input", "@IN@/other.txt"), "input:"},
		{"fingerprint removed", false, set("/a.txt", "fingerprint", ""), "fingerprint:"},
		{"fingerprint removed in place", true, set("/a.txt", "fingerprint", ""), "fingerprint:"},
		{"out_root edited in place", true, set("/a.txt", "out_root", "@ELSEWHERE@"), "out_root:"},
		{"out_key edited in place", true, set("/a.txt", "out_key", "b/c.txt"), "out_key:"},
		{"key edited in place", true, set("/a.txt", "key", "secret.txt"), "key:"},
		{"item listed twice", false, func(p map[string]any, items []any, item func(string) map[string]any) {
			dup := maps.Clone(item("/a.txt"))
			p["items"] = append(items, dup)
		}, "is also the output of item"},
		{"item listed twice in place", true, func(p map[string]any, items []any, item func(string) map[string]any) {
			dup := maps.Clone(item("/b/c.txt"))
			p["items"] = append(items, dup)
		}, "is also the output of item"},
		{"base_dir edited", false, func(p map[string]any, _ []any, _ func(string) map[string]any) { p["base_dir"] = "@ELSEWHERE@" }, "base_dir"},
		{"base_dir edited in place", true, func(p map[string]any, _ []any, _ func(string) map[string]any) { p["base_dir"] = "/" }, "base_dir"},
		{"name edited", false, func(p map[string]any, _ []any, _ func(string) map[string]any) { p["name"] = "other" }, "seal"},
		{"seal removed", false, func(p map[string]any, _ []any, _ func(string) map[string]any) { delete(p, "seal") }, "seal"},
		{"wrong JSON type", false, set("/a.txt", "source", "zero"), "reading plan"},
		{"items not a list", false, func(p map[string]any, _ []any, _ func(string) map[string]any) { p["items"] = map[string]any{"a": 1} }, "reading plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := guardDir(t)
			out := "path: ./out"
			if tc.inPlace {
				out = "inPlace: true"
			}
			writeJob(t, dir, "job.yaml", out)
			wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p.json"), 0)
			fix := strings.NewReplacer("@ELSEWHERE@", filepath.Join(dir, "elsewhere"), "IN", filepath.Join(dir, "in"), "OUT", filepath.Join(dir, "out"))
			editPlan(t, filepath.Join(dir, "p.json"), func(p map[string]any, items []any, item func(string) map[string]any) {
				tc.edit(p, items, item)
				if b, ok := p["base_dir"].(string); ok {
					p["base_dir"] = fix.Replace(b)
				}
				list, _ := p["items"].([]any)
				for _, x := range list {
					if m, ok := x.(map[string]any); ok {
						for k, v := range m {
							if s, ok := v.(string); ok {
								m[k] = fix.Replace(s)
							}
						}
					}
				}
			})
			before := snapshot(t, dir)
			delete(before, "p.json")
			r := encjob(t, dir, nil, "apply", "p.json")
			wantCode(t, r, 3)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, r.stderr)
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") {
				t.Fatalf("panicked:\n%s", r.stderr)
			}
			after := snapshot(t, dir)
			delete(after, "p.json")
			if !maps.Equal(before, after) {
				t.Errorf("a refused plan changed files:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// A plan whose base_dir was moved is refused when the spec is given.
	dir := guardDir(t)
	writeJob(t, dir, "job.yaml", "path: ./out")
	wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p.json"), 0)
	editPlan(t, filepath.Join(dir, "p.json"), func(p map[string]any, _ []any, _ func(string) map[string]any) {
		p["base_dir"] = filepath.Join(dir, "elsewhere")
	})
	r := encjob(t, dir, nil, "apply", "p.json", "-f", "job.yaml")
	wantCode(t, r, 3)
	if !strings.Contains(r.stderr, "base_dir") {
		t.Errorf("stderr: %s", r.stderr)
	}
	// The unedited plan applies (the checks refuse edits, not plans).
	wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p.json"), 0)
	wantCode(t, encjob(t, dir, nil, "apply", "p.json", "-f", "job.yaml"), 0)
	for _, f := range []string{"a.txt", "b/c.txt", "b/d.txt"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f+".encrypted")); err != nil {
			t.Errorf("unedited plan: %v", err)
		}
	}
}

// Source and destination are compared by identity: every spelling of the
// same file or tree is refused (exit 2) and nothing changes.
func TestE2EOverlapByIdentity(t *testing.T) {
	dir := guardDir(t)
	w := []string{"-w", "provider=raw-aes", "key-file=key", "namespace=encjob", "name=dev"}
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in/a.txt", "-o", "x.encrypted", w, "-S")...), 0)
	wantCode(t, encjob(t, dir, nil, args("encrypt", "-i", "in", "-r", "-o", "out", w, "-S")...), 0)
	os.Symlink("in", filepath.Join(dir, "inlink"))
	os.Symlink(".", filepath.Join(dir, "here"))
	bind := filepath.Join(dir, "bind")
	os.Mkdir(bind, 0o755)
	if err := exec.Command("mount", "--bind", filepath.Join(dir, "out"), bind).Run(); err == nil {
		t.Cleanup(func() { exec.Command("umount", bind).Run() })
	} else {
		t.Log("mount --bind unavailable: the bind alias is a symlink alias")
		os.Remove(bind)
		os.Symlink("out", bind)
	}
	for _, tc := range []struct {
		name string
		a    []string
	}{
		{"decrypt onto its ciphertext, $PWD", args("decrypt", "-i", "x.encrypted", "-o", dir+"/x.encrypted", w, "-S")},
		{"decrypt onto its ciphertext, $PWD//", args("decrypt", "-i", "x.encrypted", "-o", dir+"//x.encrypted", w, "-S")},
		{"decrypt onto its ciphertext, ./", args("decrypt", "-i", "./x.encrypted", "-o", "x.encrypted", w, "-S")},
		{"decrypt onto its ciphertext, ..", args("decrypt", "-i", "x.encrypted", "-o", "in/../x.encrypted", w, "-S")},
		{"decrypt onto its ciphertext, symlinked dir", args("decrypt", "-i", "x.encrypted", "-o", "here/x.encrypted", w, "-S")},
		{"tree onto itself, $PWD", args("decrypt", "-i", "out", "-r", "-o", dir+"/out", w, "-S")},
		{"tree onto itself, symlink", args("encrypt", "-i", "in", "-r", "-o", "inlink", w, "-S")},
		{"tree onto itself, bind mount", args("decrypt", "-i", "out", "-r", "-o", bind, w, "-S")},
		{"tree onto itself, trailing //", args("encrypt", "-i", "in", "-r", "-o", "in//", w, "-S")},
		{"source tree inside output", args("encrypt", "-i", "in/b", "-r", "-o", "in", w, "-S")},
		{"source tree inside output alias", args("encrypt", "-i", "in/b", "-r", "-o", "inlink", w, "-S")},
		{"source tree inside output, ..", args("encrypt", "-i", "in", "-r", "-o", "in/..", w, "-S")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, dir)
			r := encjob(t, dir, nil, tc.a...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, "same") && !strings.Contains(r.stderr, "inside") {
				t.Errorf("stderr does not name the overlap: %s", r.stderr)
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// Specs get the same checks.
	for _, tc := range []struct{ name, output string }{
		{"spec output is the source", "path: ./in/"},
		{"spec output is the source, absolute", "path: " + dir + "//in"},
		{"spec output is the source's alias", "path: ./inlink"},
		{"spec output contains the source", "path: ."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeJob(t, dir, "bad.yaml", tc.output)
			before := snapshot(t, dir)
			for _, cmd := range [][]string{{"plan", "-f", "bad.yaml"}, {"apply", "-f", "bad.yaml"}} {
				r := encjob(t, dir, nil, cmd...)
				wantCode(t, r, 2)
				if !strings.Contains(r.stderr, "spec.output.path") {
					t.Errorf("%v: stderr does not name the field: %s", cmd, r.stderr)
				}
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("files changed")
			}
		})
	}
	// An output directory inside the input directory is allowed, and its
	// files are never items: a second run re-encrypts nothing.
	writeJob(t, dir, "nested.yaml", "path: ./in/enc")
	os.Mkdir(filepath.Join(dir, "in", "enc"), 0o755)
	wantCode(t, encjob(t, dir, nil, "apply", "-f", "nested.yaml"), 0)
	r := encjob(t, dir, nil, "plan", "-f", "nested.yaml", "-v")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "encjob's own output") || strings.Contains(r.stdout, ".encrypted.encrypted") {
		t.Errorf("second plan: %s", r.stdout)
	}
	r = encjob(t, dir, nil, "apply", "-f", "nested.yaml")
	if r.code != 0 && r.code != 1 { // the earlier outputs exist: unchanged or conflicts (overwrite: never)
		t.Fatalf("second run: exit %d: %s", r.code, r.stderr)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "in", "enc", "enc", "*")); len(m) > 0 {
		t.Errorf("outputs were re-encrypted: %v", m)
	}
}

// encjob's own files are never items: skipped with the reason when the
// job writes elsewhere, refused (exit 2, nothing changed) in place.
func TestE2EOwnFilesNeverItems(t *testing.T) {
	dir := guardDir(t)
	key := make([]byte, 32)
	rand.Read(key)
	writeFile(t, filepath.Join(dir, "in", ".encjob", "protect.key"), key, 0o600)
	// A spec inside the tree it encrypts, with its key there too.
	inTree := strings.NewReplacer("path: ./in,", "path: .,", "keyFile: ./key", "keyFile: ./.encjob/protect.key", "%s", "path: ../out").Replace(guardJob)
	writeFile(t, filepath.Join(dir, "in", "job.yaml"), []byte(inTree), 0o644)
	job := strings.NewReplacer("keyFile: ./key", "keyFile: ./in/.encjob/protect.key", "%s", "path: ./out").Replace(guardJob)
	r := encjob(t, dir, nil, "plan", "-f", "in/job.yaml", "-v", "--out", "in/p.json")
	wantCode(t, r, 0)
	for _, want := range []string{".encjob/protect.key  (encjob's own key file (key group dev))", "job.yaml  (encjob's own spec file)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not show %q:\n%s", want, r.stdout)
		}
	}
	// Applying the saved plan (now inside the tree) leaves it alone too.
	r = encjob(t, dir, nil, "apply", "in/p.json", "--metadata-output", "in/meta.jsonl")
	wantCode(t, r, 0)
	for _, f := range []string{".encjob/protect.key", "job.yaml", "p.json", "meta.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f+".encrypted")); err == nil {
			t.Errorf("%s was encrypted", f)
		}
	}
	// In place: refused before anything is touched, whichever own file.
	for _, tc := range []struct {
		name string
		job  func(string) string
		args []string
	}{
		{"key in tree", func(j string) string { return j }, nil},
		{"key generated into tree", func(j string) string {
			return strings.Replace(j, "keyFile: ./in/.encjob/protect.key,", "keyFile: ./in/new.key, generate: true,", 1)
		}, nil},
		{"metadata log in tree", func(j string) string {
			return strings.Replace(j, "keyFile: ./in/.encjob/protect.key", "keyFile: ./key", 1) + "  metadata: {output: ./in/run.jsonl}\n"
		}, nil},
		{"metadata log flag into tree", func(j string) string {
			return strings.Replace(j, "keyFile: ./in/.encjob/protect.key", "keyFile: ./key", 1)
		}, []string{"--metadata-output", "inlink/run.jsonl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Symlink("in", filepath.Join(dir, "inlink"))
			j := strings.Replace(tc.job(job), "path: ./out", "inPlace: true", 1)
			writeFile(t, filepath.Join(dir, "inplace.yaml"), []byte(j), 0o644)
			before := snapshot(t, filepath.Join(dir, "in"))
			r := encjob(t, dir, nil, append([]string{"apply", "-f", "inplace.yaml"}, tc.args...)...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, "in-place source") {
				t.Errorf("stderr: %s", r.stderr)
			}
			if after := snapshot(t, filepath.Join(dir, "in")); !maps.Equal(before, after) {
				t.Errorf("the tree changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// guardBadCases are the rows of docs/bad-inputs.md for overlapping paths,
// encjob's own files and edited saved plans.
func guardBadCases() []badCase {
	link := func(target, name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	with := func(setup func(t *testing.T, dir string), a ...any) func(*testing.T, string, *goodMessage) []string {
		return func(t *testing.T, dir string, m *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "bad", "x.encrypted"), m.msg, 0o644)
			setup(t, dir)
			return args(a...)
		}
	}
	inPlace := strings.Replace(badSpecHead, "  keyGroups:", "  output: {inPlace: true}\n  encrypt: {keyGroup: dev}\n  keyGroups:", 1)
	editedPlan := func(edit func(item map[string]any)) func(*testing.T, string, *goodMessage) []string {
		return func(t *testing.T, dir string, _ *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "job.yaml"), []byte(jobYAML), 0o644)
			wantCode(t, encjob(t, dir, nil, "plan", "-f", "job.yaml", "--out", "p.json"), 0)
			editPlan(t, filepath.Join(dir, "p.json"), func(_ map[string]any, items []any, _ func(string) map[string]any) {
				edit(items[0].(map[string]any))
			})
			return []string{"apply", "p.json"}
		}
	}
	return []badCase{
		{name: "decrypt onto its own ciphertext through a symlinked directory", prepare: with(link("bad", "alias"), "decrypt", "-i", "bad/x.encrypted", "-o", "alias/x.encrypted", rawKey, "-S"),
			code: 2, want: []string{"alias/x.encrypted", "bad/x.encrypted", "same file"}},
		{name: "a tree encrypted onto itself through a symlink", prepare: with(link("in", "in2"), "encrypt", "-i", "in", "-r", "-o", "in2", rawKey, "-S"),
			code: 2, want: []string{"in2", "same directory"}},
		{name: "a source tree inside the output directory", prepare: with(func(*testing.T, string) {}, "encrypt", "-i", "in/b", "-r", "-o", "in", rawKey, "-S"),
			code: 2, want: []string{"source in/b is inside output directory in"}},
		{name: "in-place spec: key file inside the tree", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			writeFile(t, filepath.Join(dir, "in", ".encjob", "k.key"), make([]byte, 32), 0o600)
			return specCase("keyin.yaml", strings.Replace(inPlace, "keyFile: ./key", "keyFile: ./in/.encjob/k.key", 1))(t, dir, nil)
		}, code: 2, want: []string{"spec.keyGroups.dev.keyFile", "in-place source"}},
		{name: "in-place spec: a hard link to the key inside the tree", prepare: func(t *testing.T, dir string, _ *goodMessage) []string {
			if err := os.Link(filepath.Join(dir, "key"), filepath.Join(dir, "in", "key.bak")); err != nil {
				t.Fatal(err)
			}
			return specCase("hardlink.yaml", inPlace)(t, dir, nil)
		}, code: 2, want: []string{"in/key.bak", "encjob's own key file"}},
		{name: "in-place spec: metadata log inside the tree", prepare: specCase("login.yaml", inPlace+"  metadata: {output: ./in/run.jsonl}\n"),
			code: 2, want: []string{"spec.metadata.output", "in-place source"}},
		{name: "saved plan edited: out_root points elsewhere", prepare: editedPlan(func(it map[string]any) { it["out_root"] = "/tmp" }),
			code: 3, want: []string{"plan item 0", "out_root"}},
		{name: "saved plan edited: source index out of range", prepare: editedPlan(func(it map[string]any) { it["source"] = 9 }),
			code: 3, want: []string{"plan item 0", "source: index 9 out of range"}},
		{name: "saved plan edited: key escaping the tree", prepare: editedPlan(func(it map[string]any) { it["key"] = "../key" }),
			code: 3, want: []string{"plan item 0", "key:"}},
		{name: "saved plan edited: fingerprint removed", prepare: editedPlan(func(it map[string]any) { delete(it, "fingerprint") }),
			code: 3, want: []string{"plan item 0", "fingerprint: missing"}},
	}
}

// A policy kept at the root of the tree it governs: exempted by a rule it
// is never an item and apply works; matched by a rule it would be
// encrypted in place, so apply refuses (exit 2) and changes nothing.
func TestE2EPolicyFileInsideItsTree(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt string
		code   int
	}{
		{"exempt", "    - match: [\"*.yaml\"]\n      exempt: true\n", 0},
		{"matched", "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := guardDir(t)
			os.RemoveAll(filepath.Join(dir, "in", "linkdir"))
			os.Remove(filepath.Join(dir, "in", "link.txt"))
			pol := "apiVersion: encjob.dev/v1\nkind: EncryptionPolicy\nmetadata: {name: p}\nspec:\n  sources: [{path: .}]\n" +
				"  keyGroups:\n    dev: {provider: raw-aes, keyFile: ../key, namespace: encjob, name: dev}\n  rules:\n" + tc.exempt +
				"    - match: [\"**\"]\n      keyGroup: dev\n"
			writeFile(t, filepath.Join(dir, "in", "policy.yaml"), []byte(pol), 0o644)
			before := snapshot(t, filepath.Join(dir, "in"))
			r := encjob(t, dir, nil, "apply", "--auto-approve", "-f", "in/policy.yaml")
			wantCode(t, r, tc.code)
			after := snapshot(t, filepath.Join(dir, "in"))
			if after["policy.yaml"] != before["policy.yaml"] {
				t.Errorf("the policy file changed")
			}
			if tc.code == 0 {
				if after["a.txt"] == before["a.txt"] {
					t.Errorf("a.txt was not encrypted: %s", r.stderr)
				}
				return
			}
			if !strings.Contains(r.stderr, "encjob's own spec file") {
				t.Errorf("stderr: %s", r.stderr)
			}
			if !maps.Equal(before, after) {
				t.Errorf("a refused policy changed the tree")
			}
		})
	}
}
