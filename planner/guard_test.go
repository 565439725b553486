package planner

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/spec"
)

// guardFixture is a directory with a raw AES key ("k.key") and a tree
// "in" holding one ordinary file.
func guardFixture(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	write(t, filepath.Join(dir, "k.key"), key, 0o600)
	write(t, filepath.Join(dir, "in", "data.txt"), []byte("data"), 0o644)
	return dir
}

func write(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}

func rawJob(op spec.Operation, keyFile string, out spec.Output, srcs ...spec.Source) *spec.Job {
	j := &spec.Job{Operation: op, Sources: srcs, Output: out,
		KeyGroups: map[string]*spec.KeyGroup{"dev": {Provider: spec.ProviderRawAES, KeyFile: keyFile, Namespace: "n", Name: "k"}}}
	if op != spec.OpDecrypt {
		j.Encrypt.KeyGroup = "dev"
	}
	if op != spec.OpEncrypt {
		j.Decrypt.KeyGroup = "dev"
	}
	j.Defaults()
	return j
}

func plan(t *testing.T, job *spec.Job, o Options) (*Plan, error) {
	t.Helper()
	rt, err := Prepare(context.Background(), job, o)
	if err != nil {
		return nil, err
	}
	return Build(context.Background(), rt, BuildOptions{})
}

func byInput(p *Plan, base string) map[string]Item {
	m := map[string]Item{}
	for _, it := range p.Items {
		m[strings.TrimPrefix(it.Input, base+"/")] = it
	}
	return m
}

// Every kind of encjob's own file inside a source tree is skipped, with
// the reason, whatever path reaches it.
func TestOwnFilesAreSkipped(t *testing.T) {
	dir := guardFixture(t)
	in := filepath.Join(dir, "in")
	key := make([]byte, 32)
	rand.Read(key)
	write(t, filepath.Join(in, ".encjob", "protect.key"), key, 0o600)
	write(t, filepath.Join(in, "job.yaml"), []byte("spec"), 0o644)
	write(t, filepath.Join(in, "saved.plan"), []byte("{}"), 0o644)
	write(t, filepath.Join(in, "log.jsonl"), []byte(`{"mode":"encrypt","input":"x"}`+"\n"), 0o644)
	write(t, filepath.Join(in, "cli.jsonl"), []byte(`{"mode": "decrypt", "input": "y"}`+"\n"), 0o644)
	write(t, filepath.Join(in, "out", "old.encrypted"), []byte("x"), 0o644)
	if err := os.Link(filepath.Join(dir, "k.key"), filepath.Join(in, "hardlink.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "k.key"), filepath.Join(in, "symlink.key")); err != nil {
		t.Fatal(err)
	}
	job := rawJob(spec.OpEncrypt, "k.key", spec.Output{Path: "in/out"}, spec.Source{Path: "./in", FollowSymlinks: true})
	job.KeyGroups["other"] = &spec.KeyGroup{Provider: spec.ProviderRawAES, KeyFile: "in/.encjob/protect.key", Namespace: "n", Name: "o"}
	job.KeyGroups["future"] = &spec.KeyGroup{Provider: spec.ProviderRawRSA, KeyFile: "in/.encjob/rsa.pem", Namespace: "n", Name: "r"}
	job.Metadata.Output = "./in//log.jsonl"
	t.Chdir(dir)
	p, err := plan(t, job, Options{BaseDir: dir, SpecFiles: []string{"in/../in/job.yaml"}, PlanFile: in + "/saved.plan", MetadataLog: "in/cli.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	items := byInput(p, in)
	for name, why := range map[string]string{
		".encjob/protect.key": "key file (key group other)",
		"hardlink.key":        "key file (key group dev)",
		"symlink.key":         "key file (key group dev)",
		"job.yaml":            "spec file",
		"saved.plan":          "saved plan",
		"log.jsonl":           "metadata log",
		"cli.jsonl":           "metadata log",
		"out/old.encrypted":   "output (output.path)",
	} {
		it, ok := items[name]
		if !ok {
			t.Errorf("%s: not in the plan", name)
			continue
		}
		if it.Action != Skip || it.Reason != "encjob's own "+why {
			t.Errorf("%s: %s %q, want skip %q", name, it.Action, it.Reason, "encjob's own "+why)
		}
	}
	if it := items["data.txt"]; it.Action != Encrypt {
		t.Errorf("data.txt: %s %q, want encrypt", it.Action, it.Reason)
	}
	// Not yet written by anyone: planned as the future path's item would
	// be, and the generated key of the next test.
	if err := os.WriteFile(filepath.Join(in, ".encjob", "rsa.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err = plan(t, job, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if it := byInput(p, in)[".encjob/rsa.pem"]; it.Action != Skip {
		t.Errorf("rsa.pem created after the spec named it: %s %q, want skip", it.Action, it.Reason)
	}
}

// An in-place job refuses to start when a key, spec, log or plan would be
// one of its items - existing or not yet, by any path - and starts when
// the file is excluded.
func TestInPlaceRefusesOwnFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string, job *spec.Job, o *Options)
		ok    bool
	}{
		{"key in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			os.MkdirAll(filepath.Join(dir, "in", ".encjob"), 0o755)
			os.Rename(filepath.Join(dir, "k.key"), filepath.Join(dir, "in", ".encjob", "protect.key"))
			job.KeyGroups["dev"].KeyFile = "in/.encjob/protect.key"
		}, false},
		{"key to be generated in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			job.KeyGroups["dev"].KeyFile = "./in/new/gen.key"
			job.KeyGroups["dev"].Generate = true
		}, false},
		{"unused group's key in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			job.KeyGroups["spare"] = &spec.KeyGroup{Provider: spec.ProviderRawRSA, KeyFile: dir + "/in/spare.pem", Namespace: "n", Name: "s"}
		}, false},
		{"hard link to the key in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			os.Link(filepath.Join(dir, "k.key"), filepath.Join(dir, "in", "copy"))
		}, false},
		{"spec in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			write(t, filepath.Join(dir, "in", "job.yaml"), []byte("x"), 0o644)
			o.SpecFiles = []string{filepath.Join(dir, "in", "job.yaml")}
		}, false},
		{"log (not yet written) in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			job.Metadata.Output = "in/logs/run.jsonl"
		}, false},
		{"log through a symlinked dir", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			os.Symlink(filepath.Join(dir, "in"), filepath.Join(dir, "alias"))
			o.MetadataLog = filepath.Join(dir, "alias", "run.jsonl")
		}, false},
		{"plan in tree", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			o.PlanFile = filepath.Join(dir, "in", "p.json")
		}, false},
		{"log excluded", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			job.Sources[0].Exclude = []string{"*.jsonl"}
			job.Metadata.Output = "in/run.jsonl"
		}, true},
		{"everything outside", func(t *testing.T, dir string, job *spec.Job, o *Options) {
			job.Metadata.Output = "run.jsonl"
			o.PlanFile = filepath.Join(dir, "p.json")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := guardFixture(t)
			job := rawJob(spec.OpEncrypt, "k.key", spec.Output{InPlace: true}, spec.Source{Path: "in"})
			o := Options{BaseDir: dir}
			tc.setup(t, dir, job, &o)
			before := snapshotDir(t, filepath.Join(dir, "in"))
			p, err := plan(t, job, o)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if p.Counts()[Encrypt] != 1 {
					t.Fatalf("want data.txt encrypted, got %v", p.Counts())
				}
				return
			}
			var se *SetupError
			if !errors.As(err, &se) {
				t.Fatalf("want a SetupError, got %v (plan %v)", err, p)
			}
			if !strings.Contains(err.Error(), "encjob's own") {
				t.Errorf("message does not say why: %v", err)
			}
			if after := snapshotDir(t, filepath.Join(dir, "in")); after != before {
				t.Errorf("the tree changed:\n%s\nwant\n%s", after, before)
			}
		})
	}
}

func snapshotDir(t *testing.T, root string) string {
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			b.WriteString(strings.TrimPrefix(p, root) + " " + fi.Mode().String() + "\n")
		}
		return nil
	})
	return b.String()
}

// Overlap is decided by identity: every spelling of "the output is the
// source directory" or "the source tree is inside the output" is refused.
func TestOverlapRefused(t *testing.T) {
	dir := guardFixture(t)
	os.Symlink(filepath.Join(dir, "in"), filepath.Join(dir, "inlink"))
	os.Symlink(dir, filepath.Join(dir, "top"))
	write(t, filepath.Join(dir, "x.encrypted"), []byte("msg"), 0o644)
	write(t, filepath.Join(dir, "in", "sub", "f"), []byte("f"), 0o644)
	bind := filepath.Join(dir, "bind")
	os.Mkdir(bind, 0o755)
	bound := exec.Command("mount", "--bind", filepath.Join(dir, "in"), bind).Run() == nil
	if bound {
		t.Cleanup(func() { exec.Command("umount", bind).Run() })
	} else {
		t.Log("mount --bind is not available here: the bind-mount alias is replaced by a symlink alias")
		os.Remove(bind)
		os.Symlink(filepath.Join(dir, "in"), bind)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		name string
		op   spec.Operation
		src  string
		out  string
		want string
	}{
		{"same dir, ./", spec.OpEncrypt, "in", "./in/", "same directory"},
		{"same dir, $PWD//", spec.OpEncrypt, "in", dir + "//in", "same directory"},
		{"same dir, ..", spec.OpEncrypt, "in", "in/../in", "same directory"},
		{"same dir, symlink", spec.OpDecrypt, "in", "inlink", "same directory"},
		{"same dir, symlinked parent", spec.OpDecrypt, "top/in", dir + "/in", "same directory"},
		{"same dir, bind mount", spec.OpDecrypt, "in", bind, "same directory"},
		{"tree inside output", spec.OpEncrypt, "in", ".", "is inside"},
		{"tree inside output, alias", spec.OpEncrypt, "bind", dir, "is inside"},
		{"tree inside output via symlink", spec.OpEncrypt, "inlink", "top", "is inside"},
		{"tree inside output's bind-mount alias", spec.OpEncrypt, "in/sub", "bind", "is inside"},
		{"tree inside output's symlink alias", spec.OpEncrypt, "in/sub", "inlink/", "is inside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := rawJob(tc.op, "k.key", spec.Output{Path: tc.out, Overwrite: spec.OverwriteAlways}, spec.Source{Path: tc.src})
			_, err := plan(t, job, Options{BaseDir: dir})
			var se *SetupError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a SetupError saying %q, got %v", tc.want, err)
			}
		})
	}
	// One file as its own output, however spelled (a hard link too), is
	// not a setup error: its item is skipped, as aws-encryption-cli skips
	// it, and nothing is written.
	if err := os.Link(filepath.Join(dir, "x.encrypted"), filepath.Join(dir, "xhard")); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{dir + "/x.encrypted", "top/x.encrypted", "xhard"} {
		job := rawJob(spec.OpDecrypt, "k.key", spec.Output{Path: out, Overwrite: spec.OverwriteAlways}, spec.Source{Path: "./x.encrypted"})
		p, err := plan(t, job, Options{BaseDir: dir})
		if err != nil {
			t.Fatalf("-o %s: %v", out, err)
		}
		if len(p.Items) != 1 || p.Items[0].Action != Skip || !strings.HasPrefix(p.Items[0].Reason, SameAsSource) {
			t.Errorf("-o %s: items %+v", out, p.Items)
		}
	}
}

// An output directory inside the source tree is allowed: everything under
// it is encjob's and skipped, so later runs never re-encrypt outputs.
func TestOutputInsideSourceSkipped(t *testing.T) {
	dir := guardFixture(t)
	write(t, filepath.Join(dir, "in", "enc", "data.txt.encrypted"), []byte("old"), 0o644)
	write(t, filepath.Join(dir, "in", "enc", ".encjob-state", "lock"), nil, 0o644)
	os.Symlink(filepath.Join(dir, "in", "enc"), filepath.Join(dir, "in", "enclink"))
	job := rawJob(spec.OpEncrypt, "k.key", spec.Output{Path: "in/enc", Overwrite: spec.OverwriteAlways}, spec.Source{Path: "in", FollowSymlinks: true})
	p, err := plan(t, job, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range p.Items {
		name := strings.TrimPrefix(it.Input, dir+"/in/")
		want := Skip
		if name == "data.txt" {
			want = Encrypt
		}
		if it.Action != want {
			t.Errorf("%s: %s %q, want %s", name, it.Action, it.Reason, want)
		}
	}
	if len(p.Items) < 4 {
		t.Errorf("want data.txt and three skipped outputs, got %d items", len(p.Items))
	}
}

// Per item: an output that is its own source file is skipped ("source and
// destination are the same"); one that is one of encjob's own files is a
// conflict; two spellings of one file are one item.
func TestOutputClashes(t *testing.T) {
	dir := guardFixture(t)
	write(t, filepath.Join(dir, "d", "x"), []byte("plain"), 0o644)
	// Encrypt with no suffix into the file's own directory: the output is
	// the source.
	job := rawJob(spec.OpEncrypt, "k.key", spec.Output{Path: "d", Overwrite: spec.OverwriteAlways}, spec.Source{Path: "d/x"})
	job.Output.Suffix = ""
	p, err := plan(t, job, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if it := p.Items[0]; it.Action != Skip || !strings.HasPrefix(it.Reason, SameAsSource) {
		t.Errorf("output onto its own source: %s %q (want skipped, as aws-encryption-cli)", it.Action, it.Reason)
	}
	// Decrypt to a name that is the key file.
	write(t, filepath.Join(dir, "e", "k.key.encrypted"), []byte("msg"), 0o644)
	job = rawJob(spec.OpEncrypt, "k.key", spec.Output{Path: ".", Overwrite: spec.OverwriteAlways}, spec.Source{Path: "e/k.key.encrypted"})
	job.Output.Suffix, job.Output.StripSuffix = "", ".encrypted"
	p, err = plan(t, job, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if it := p.Items[0]; it.Action != Conflict || !strings.Contains(it.Reason, "encjob's own key file") {
		t.Errorf("output onto the key file: %s %q", it.Action, it.Reason)
	}
	// The same tree listed twice through two spellings, in place.
	os.Symlink(filepath.Join(dir, "d"), filepath.Join(dir, "dlink"))
	job = rawJob(spec.OpEncrypt, "k.key", spec.Output{InPlace: true}, spec.Source{Path: "d"}, spec.Source{Path: "dlink"})
	p, err = plan(t, job, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Counts(); c[Encrypt] != 1 || c[Conflict] != 1 {
		t.Errorf("one file through two sources: %v, want 1 encrypt and 1 conflict", c)
	}
}
