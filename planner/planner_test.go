package planner

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

func strp(s string) *string { return &s }

func TestMissingContext(t *testing.T) {
	have := crypto.EncryptionContext{"tenant": "acme", "stage": "prod"}
	for _, tc := range []struct {
		name      string
		req       map[string]*string
		wantKeys  []string
		wantPairs [][]string
	}{
		{"none required", nil, nil, nil},
		{"all present", map[string]*string{"tenant": strp("acme"), "stage": nil}, nil, nil},
		{"key missing", map[string]*string{"owner": nil}, []string{"owner"}, nil},
		{"value differs", map[string]*string{"tenant": strp("other")}, nil, [][]string{{"tenant", "other"}}},
		{"pair missing", map[string]*string{"zone": strp("a"), "owner": nil}, []string{"owner"}, [][]string{{"zone", "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, pairs := missingContext(have, tc.req)
			if !reflect.DeepEqual(keys, tc.wantKeys) || !reflect.DeepEqual(pairs, tc.wantPairs) {
				t.Fatalf("got %v %v, want %v %v", keys, pairs, tc.wantKeys, tc.wantPairs)
			}
		})
	}
}

func TestOutputFor(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "outdir"), 0o755)
	for _, tc := range []struct {
		name     string
		src      string
		out      spec.Output
		item     sources.Item
		wantOut  string
		wantRoot string
		wantKey  string
	}{
		{"tree mirrors with suffix", dir + "/in", spec.Output{Path: dir + "/outdir", Suffix: ".encrypted"},
			sources.Item{Key: "a/b.txt"}, dir + "/outdir/a/b.txt.encrypted", dir + "/outdir", "a/b.txt.encrypted"},
		{"single file into a directory", dir + "/in/x.txt", spec.Output{Path: dir + "/outdir", Suffix: ".encrypted"},
			sources.Item{Key: "x.txt", IsSingle: true}, dir + "/outdir/x.txt.encrypted", dir + "/outdir", "x.txt.encrypted"},
		{"single file to a named file", dir + "/in/x.txt", spec.Output{Path: dir + "/named.bin", Suffix: ".encrypted"},
			sources.Item{Key: "x.txt", IsSingle: true}, dir + "/named.bin", dir, "named.bin"},
		{"strip suffix", dir + "/in", spec.Output{Path: dir + "/outdir", Suffix: ".decrypted", StripSuffix: ".encrypted"},
			sources.Item{Key: "y.encrypted"}, dir + "/outdir/y", dir + "/outdir", "y"},
		{"in place", dir + "/in", spec.Output{InPlace: true}, sources.Item{Key: "a/b"}, dir + "/in/a/b", dir + "/in", "a/b"},
		{"stdout", dir + "/in", spec.Output{Stdout: true}, sources.Item{Key: "a"}, "<stdout>", "-", "a"},
		{"s3 prefix", "s3://bkt/in/", spec.Output{Path: "s3://bkt/out/", Suffix: ".enc"}, sources.Item{Key: "k/1"}, "s3://bkt/out/k/1.enc", "s3://bkt/out/", "k/1.enc"},
		{"s3 in place single object", "s3://bkt/in/obj", spec.Output{InPlace: true}, sources.Item{Key: "obj", IsSingle: true}, "s3://bkt/in/obj", "s3://bkt/in", "obj"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := sources.Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			rt := bareRuntime(&spec.Job{Output: tc.out}, loc)
			out, root, key := rt.outputFor(0, tc.item)
			if out != tc.wantOut || root != tc.wantRoot || key != tc.wantKey {
				t.Fatalf("got (%q, %q, %q), want (%q, %q, %q)", out, root, key, tc.wantOut, tc.wantRoot, tc.wantKey)
			}
		})
	}
}

func TestMarkDuplicateOutputs(t *testing.T) {
	items := []Item{
		{Action: Decrypt, Input: "a.txt", Output: "out/a"},
		{Action: Decrypt, Input: "a.txt.encrypted", Output: "out/a"},
		{Action: Unchanged, Input: "b", Output: "out/b"},
		{Action: Decrypt, Input: "c", Output: "out/b"},
	}
	markDuplicateOutputs(items)
	want := []Action{Decrypt, Conflict, Unchanged, Decrypt}
	for i, it := range items {
		if it.Action != want[i] {
			t.Errorf("item %d: %s, want %s (%s)", i, it.Action, want[i], it.Reason)
		}
	}
}
