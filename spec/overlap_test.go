package spec

import (
	"strings"
	"testing"
)

func TestValidateOverlap(t *testing.T) {
	key := func(path string) map[string]*KeyGroup {
		return map[string]*KeyGroup{"k": {Provider: ProviderRawAES, KeyFile: path, Namespace: "n", Name: "k"}}
	}
	for _, tc := range []struct {
		name    string
		srcs    []Source
		out     Output
		meta    string
		keyFile string
		want    string // substring of the one error, "" = valid
	}{
		{"same dir", []Source{{Path: "./in"}}, Output{Path: "in"}, "", "k.key", "spec.output.path: invalid value \"in\": is also spec.sources[0].path"},
		{"same dir trailing slash", []Source{{Path: "in/"}}, Output{Path: "./in//"}, "", "k.key", "is also spec.sources[0].path"},
		{"same file dotdot", []Source{{Path: "a/../x.enc"}}, Output{Path: "x.enc"}, "", "k.key", "is also spec.sources[0].path"},
		{"same absolute", []Source{{Path: "/data/in"}}, Output{Path: "/data//in/"}, "", "/k.key", "is also spec.sources[0].path"},
		{"tree inside output", []Source{{Path: "out/in/"}}, Output{Path: "out"}, "", "k.key", "contains spec.sources[0].path"},
		{"glob inside output", []Source{{Path: "out/**/*.txt"}}, Output{Path: "out"}, "", "k.key", "contains spec.sources[0].path"},
		{"output inside source: allowed", []Source{{Path: "in"}}, Output{Path: "in/out"}, "", "k.key", ""},
		{"file inside output dir: allowed", []Source{{Path: "d/x.txt"}}, Output{Path: "d"}, "", "k.key", ""},
		{"apart", []Source{{Path: "in"}}, Output{Path: "out"}, "", "k.key", ""},
		{"mixed relativity: left to the planner", []Source{{Path: "in"}}, Output{Path: "/abs/in"}, "", "k.key", ""},
		{"s3 same prefix", []Source{{Path: "s3://bkt/in/"}}, Output{Path: "s3://bkt/in"}, "", "k.key", "is also spec.sources[0].path"},
		{"s3 prefix inside output", []Source{{Path: "s3://bkt/out/in/"}}, Output{Path: "s3://bkt/out/"}, "", "k.key", "contains spec.sources[0].path"},
		{"s3 whole bucket output", []Source{{Path: "s3://bkt/in/"}}, Output{Path: "s3://bkt"}, "", "k.key", "contains spec.sources[0].path"},
		{"s3 other bucket", []Source{{Path: "s3://bkt/in/"}}, Output{Path: "s3://other/in/"}, "", "k.key", ""},
		{"log is a source", []Source{{Path: "in/log.jsonl"}}, Output{Path: "out"}, "./in/log.jsonl", "k.key", "spec.metadata.output: invalid value \"./in/log.jsonl\": is also spec.sources[0].path"},
		{"log is the output", []Source{{Path: "in"}}, Output{Path: "out.bin"}, "out.bin", "k.key", "is also spec.output.path"},
		{"log in in-place tree", []Source{{Path: "tree"}}, Output{InPlace: true}, "tree/log.jsonl", "k.key", "is inside in-place source spec.sources[0].path"},
		{"log in in-place tree, excluded", []Source{{Path: "tree", Exclude: []string{"*.jsonl"}}}, Output{InPlace: true}, "tree/log.jsonl", "k.key", ""},
		{"log in in-place tree, glob misses it", []Source{{Path: "tree/**/*.csv"}}, Output{InPlace: true}, "tree/log.jsonl", "k.key", ""},
		{"log in in-place s3 prefix", []Source{{Path: "s3://bkt/tree/"}}, Output{InPlace: true}, "s3://bkt/tree/log.jsonl", "k.key", "is inside in-place source"},
		{"key in in-place tree", []Source{{Path: "./tree"}}, Output{InPlace: true}, "", "tree/.encjob/protect.key", "spec.keyGroups.k.keyFile: invalid value \"tree/.encjob/protect.key\": is inside in-place source spec.sources[0].path"},
		{"key in in-place tree with include", []Source{{Path: "tree", Include: []string{"**/*.key"}}}, Output{InPlace: true}, "", "tree/a.key", "is inside in-place source"},
		{"key excluded from in-place tree", []Source{{Path: "tree", Exclude: []string{".encjob/**"}}}, Output{InPlace: true}, "", "tree/.encjob/protect.key", ""},
		{"key is the in-place source", []Source{{Path: "k.key"}}, Output{InPlace: true}, "", "./k.key", "is inside in-place source"},
		{"key beside the tree", []Source{{Path: "tree"}}, Output{InPlace: true}, "", "tree.key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := OpEncrypt
			j := &Job{Operation: op, Sources: tc.srcs, Output: tc.out, KeyGroups: key(tc.keyFile),
				Encrypt: EncryptSettings{KeyGroup: "k"}, Metadata: MetadataLog{Output: tc.meta}}
			errs := validateOverlap(NewPath("spec"), j)
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("got %v, want one error containing %q", errs, tc.want)
			}
		})
	}
}

// An S3 key with an empty, "." or ".." segment is refused wherever a
// location is given: AWS S3 keeps "in//x" and "in/./x" as written, while
// file-backed servers (versitygw) merge them with "in/x", so an output
// "s3://b/in//" wrote into the source prefix "s3://b/in/" there.
func TestAmbiguousS3Keys(t *testing.T) {
	for _, tc := range []struct {
		loc  string
		want string // "" = valid
	}{
		{"s3://bkt/in//", "an empty segment"},
		{"s3://bkt//in/", "an empty segment"},
		{"s3://bkt/a//b", "an empty segment"},
		{"s3://bkt/./in/", `a "." segment`},
		{"s3://bkt/in/.", `a "." segment`},
		{"s3://bkt/in/sub/..", `a ".." segment`},
		{"s3://bkt/in/../out/", `a ".." segment`},
		{"s3://bkt/in/**/../*.csv", `a ".." segment`},
		{"s3://bkt", ""},
		{"s3://bkt/", ""},
		{"s3://bkt/in/", ""},
		{"s3://bkt/in/x.enc", ""},
		{"s3://bkt/in/**/*.csv", ""},
		{"s3://bkt/in/.hidden/..x", ""},
	} {
		e := validateLocation(NewPath("spec.output.path"), tc.loc)
		switch {
		case tc.want == "" && e != nil:
			t.Errorf("%s: want valid, got %v", tc.loc, e)
		case tc.want != "" && (e == nil || !strings.Contains(e.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error saying %q", tc.loc, e, tc.want)
		}
	}
	// Through a whole job: sources and output alike.
	j := &Job{Operation: OpEncrypt, Sources: []Source{{Path: "s3://bkt/./in/"}}, Output: Output{Path: "s3://bkt/in//"},
		KeyGroups: map[string]*KeyGroup{"k": {Provider: ProviderRawAES, KeyFile: "k.key", Namespace: "n", Name: "k"}}, Encrypt: EncryptSettings{KeyGroup: "k"}}
	errs := j.Validate(nil)
	var n int
	for _, e := range errs {
		if strings.Contains(e.Error(), "S3 servers disagree") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("want the source and the output refused, got %v", errs)
	}
}
