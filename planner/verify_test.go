package planner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// A plan that went through a file is checked item by item against the
// job; every edit that would change what is read or written is refused
// with a PlanError naming the field, and the unedited plan passes.
func TestVerifyPlanRefusesEdits(t *testing.T) {
	dir := guardFixture(t)
	write(t, filepath.Join(dir, "in", "sub", "b.txt"), []byte("b"), 0o644)
	write(t, filepath.Join(dir, "in", "skip.me"), []byte("s"), 0o644)
	job := rawJob(spec.OpEncrypt, "k.key", spec.Output{Path: "out"}, spec.Source{Path: "in", Exclude: []string{"*.me"}})
	rt, err := Prepare(context.Background(), job, Options{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Build(context.Background(), rt, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPlan(context.Background(), rt, fresh); err != nil {
		t.Fatalf("a fresh plan: %v", err)
	}
	var saved bytes.Buffer
	if err := fresh.Write(&saved); err != nil {
		t.Fatal(err)
	}
	reload := func() *Plan {
		p, err := Read(bytes.NewReader(saved.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := VerifyPlan(context.Background(), rt, reload()); err != nil {
		t.Fatalf("the saved plan, unedited: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(p *Plan)
		field string
	}{
		{"source index", func(p *Plan) { p.Items[0].SourceIndex = 3 }, "source"},
		{"negative source index", func(p *Plan) { p.Items[0].SourceIndex = -5 }, "source"},
		{"action", func(p *Plan) { p.Items[0].Action = Decrypt }, "action"},
		{"unknown action", func(p *Plan) { p.Items[0].Action = "wipe" }, "action"},
		{"key ..", func(p *Plan) { p.Items[0].Key = "../k.key" }, "key"},
		{"key absolute", func(p *Plan) { p.Items[0].Key = dir + "/k.key" }, "key"},
		{"key empty segment", func(p *Plan) { p.Items[0].Key = "sub//b.txt" }, "key"},
		{"key excluded", func(p *Plan) { p.Items[0].Key = "skip.me" }, "key"},
		{"key missing", func(p *Plan) { p.Items[0].Key = "gone" }, "key"},
		{"fingerprint missing", func(p *Plan) { p.Items[0].Fingerprint = "" }, "fingerprint"},
		{"fingerprint other", func(p *Plan) { p.Items[0].Fingerprint = p.Items[1].Fingerprint }, "fingerprint"},
		{"input", func(p *Plan) { p.Items[0].Input = "/etc/shadow" }, "input"},
		{"out_root", func(p *Plan) { p.Items[0].OutRoot = dir }, "out_root"},
		{"out_key", func(p *Plan) { p.Items[0].OutKey = "../../x" }, "out_key"},
		{"output", func(p *Plan) { p.Items[0].Output = dir + "/k.key" }, "output"},
		{"duplicate", func(p *Plan) { p.Items = append(p.Items, p.Items[0]) }, "output"},
		// The plan as a whole.
		{"spec digest", func(p *Plan) { p.SpecDigest = "0000" }, "spec_digest"},
		{"another job", func(p *Plan) { p.Job.Output.Path = "elsewhere"; p.SpecDigest = p.Job.Digest() }, "job"},
		{"base dir", func(p *Plan) { p.BaseDir = "/elsewhere" }, "base_dir"},
		{"errored item", func(p *Plan) { p.Items[1].Action, p.Items[1].Reason = Error, "unreadable" }, "items"},
		{"unchanged item whose source changed", func(p *Plan) {
			p.Items[1].Action = Unchanged
			p.Items[1].Fingerprint = "local:1:2:3:4:5"
		}, "fingerprint"},
		// How the item is written is the job's too (format 2).
		{"in place", func(p *Plan) { p.Items[0].InPlace = true }, "in_place"},
		{"overwrite", func(p *Plan) { p.Items[0].Overwrite = true }, "overwrite"},
		{"format", func(p *Plan) { p.Items[0].Format = "kms" }, "format"},
		{"input encoding", func(p *Plan) { p.Items[0].InputEncoding = "base64" }, "input_encoding"},
		{"output encoding", func(p *Plan) { p.Items[0].OutputEncoding = "base64" }, "output_encoding"},
		{"verify", func(p *Plan) { p.Items[0].Verify = true }, "verify"},
		{"decrypt key group", func(p *Plan) { p.Items[0].DecryptKeyGroup = "k" }, "decrypt_key_group"},
		{"no target", func(p *Plan) { p.Items[0].Target = nil }, "target"},
		{"target context", func(p *Plan) { p.Items[0].Target.Context = map[string]string{"tenant": "evil"} }, "target"},
		{"target key group", func(p *Plan) { p.Items[0].Target.KeyGroup = "other" }, "target"},
		{"target suite", func(p *Plan) { p.Items[0].Target.Suite = "0014" }, "target"},
		{"target frame length", func(p *Plan) { fl := 0; p.Items[0].Target.FrameLength = &fl }, "target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := reload()
			tc.edit(p)
			err := VerifyPlan(context.Background(), rt, p)
			var pe *PlanError
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("want a PlanError on %q, got %v", tc.field, err)
			}
		})
	}
	// Mode and size come from the source, not from the plan file.
	p := reload()
	p.Items[0].Mode, p.Items[0].Size = 0o777, 1
	if err := VerifyPlan(context.Background(), rt, p); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "in", p.Items[0].Key))
	if p.Items[0].Mode != uint32(fi.Mode().Perm()) || p.Items[0].Size != fi.Size() {
		t.Errorf("mode %o size %d kept from the plan file", p.Items[0].Mode, p.Items[0].Size)
	}
	if err := VerifyPlan(context.Background(), rt, nil); err == nil {
		t.Error("a nil plan passed")
	}
}

// S3 overlap is decided by bucket and prefix; outputs under a prefix
// inside a source prefix are the job's own.
func TestOverlapS3(t *testing.T) {
	for _, tc := range []struct {
		src, out string
		want     string // "" allowed
	}{
		{"s3://bkt/in/", "s3://bkt/in/", "same S3 location"},
		{"s3://bkt/in", "s3://bkt/in/", "same S3 location"},
		{"s3://bkt/in/**/*.csv", "s3://bkt/in/", "same S3 location"},
		{"s3://bkt/out/in/", "s3://bkt/out/", "is inside"},
		{"s3://bkt/in/", "s3://bkt/", "is inside"},
		{"s3://bkt/in/", "s3://bkt/in/out/", ""},
		{"s3://bkt/in/", "s3://other/in/", ""},
		{"s3://bkt/in/", "s3://bkt/input/", ""},
	} {
		t.Run(tc.src+" -> "+tc.out, func(t *testing.T) {
			job := &spec.Job{Operation: spec.OpEncrypt, Sources: []spec.Source{{Path: tc.src}}, Output: spec.Output{Path: tc.out}}
			rt := bareRuntime(job)
			loc, err := sources.Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			err = rt.checkOverlap(context.Background(), []sources.Location{loc})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	job := &spec.Job{Operation: spec.OpEncrypt, Sources: []spec.Source{{Path: "s3://bkt/in/"}}, Output: spec.Output{Path: "s3://bkt/in/enc"},
		Metadata: spec.MetadataLog{Output: "s3://bkt/in/log.jsonl"}}
	loc, _ := sources.Parse("s3://bkt/in/")
	rt := bareRuntime(job, loc)
	rt.buildGuard(rt.Locations)
	gp := rt.newGuardPass()
	for key, want := range map[string]string{"enc/a.encrypted": "encjob's own output (output.path)", "enc": "encjob's own output (output.path)",
		"log.jsonl": "encjob's own metadata log", "a": "", "encore": ""} {
		if v := gp.classify(0, sources.Item{Key: key}); v.reason != want {
			t.Errorf("%s: %q, want %q", key, v.reason, want)
		}
	}
}

// TestReadRefusesOtherVersions: a plan of another format version is
// refused as such (before its fields are read), with what to do.
func TestReadRefusesOtherVersions(t *testing.T) {
	for _, tc := range []struct{ plan, want string }{
		{`{"format_version": 1, "name": "x", "job": {}, "items": [{"action": "encrypt", "source": 0, "key": "a", "input": "a", "size": 1, "rule": -1, "old_field": 1}]}`,
			"plan format version 1, this encjob reads only version 3 (run encjob plan again with this encjob)"},
		{`{"format_version": 2, "name": "x", "job": {}, "items": []}`, "plan format version 2"},
		{`{"format_version": 4}`, "plan format version 4"},
		{`{"name": "x"}`, "no format_version"},
	} {
		_, err := Read(strings.NewReader(tc.plan))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%.40s...) = %v, want %q", tc.plan, err, tc.want)
		}
	}
}

// TestReadRefusesEditedHeader: a saved plan whose base_dir, name or
// spec_digest was edited is refused when read, before a runtime opens
// anything under base_dir; the plan as written reads back.
func TestReadRefusesEditedHeader(t *testing.T) {
	job := &spec.Job{Operation: "encrypt"}
	p := &Plan{FormatVersion: FormatVersion, Name: "n", SpecDigest: job.Digest(), Job: job, BaseDir: "/work/a", Items: []Item{}}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatalf("the plan as written: %v", err)
	}
	for _, tc := range []struct{ old, new string }{
		{`"base_dir": "/work/a"`, `"base_dir": "/work/b"`},
		{`"base_dir": "/work/a"`, `"base_dir": "/work/a/"`},
		{`"name": "n"`, `"name": "m"`},
		{`"spec_digest": "` + p.SpecDigest[:8], `"spec_digest": "00000000`},
		{`"seal": "`, `"seal": "0`},
		{`"format_version": 3`, `"format_version": 3, "seal": "", "x": 1`},
	} {
		edited := bytes.Replace(b.Bytes(), []byte(tc.old), []byte(tc.new), 1)
		if bytes.Equal(edited, b.Bytes()) {
			t.Fatalf("%q not in the plan:\n%s", tc.old, b.Bytes())
		}
		if _, err := Read(bytes.NewReader(edited)); err == nil {
			t.Errorf("%s -> %s: read without error", tc.old, tc.new)
		}
	}
}
