package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/encjob/encjob/internal/k8s"
)

// parseEnv is the env argument parsing needs: none of its I/O is used.
func parseEnv() *env {
	return &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
}

// wantUsage checks that err is a usage error naming flag (any flag when
// flag is "").
func wantUsage(t *testing.T, err error, flag string) {
	t.Helper()
	var u *usageError
	if !errors.As(err, &u) {
		t.Fatalf("want a usage error naming %q, got %v", flag, err)
	}
	if flag != "" && u.Flag != flag {
		t.Fatalf("usage error names %q, want %q: %v", u.Flag, flag, err)
	}
}

// TestParseCommandArgs: each subcommand's flags parse in a pure function
// (args -> typed struct or usage error), as Terraform's arguments.ParseX;
// the crypto commands' table is TestParseCryptoArgs.
func TestParseCommandArgs(t *testing.T) {
	type tc struct {
		args    []string
		want    any    // the parsed value, when no error
		errFlag string // else the flag the usage error names ("?" any)
	}
	run := func(t *testing.T, name string, cases []tc, parse func([]string) (any, error)) {
		t.Run(name, func(t *testing.T) {
			for _, c := range cases {
				got, err := parse(c.args)
				if c.errFlag != "" {
					flag := c.errFlag
					if flag == "?" {
						flag = ""
					}
					wantUsage(t, err, flag)
					continue
				}
				if err != nil {
					t.Fatalf("%q: %v", c.args, err)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("%q: got %+v, want %+v", c.args, got, c.want)
				}
			}
		})
	}
	run(t, "version", []tc{
		{args: nil, want: false},
		{args: []string{"--json"}, want: true},
		{args: []string{"extra"}, errFlag: "extra"},
		{args: []string{"-json"}, errFlag: "-json"},
	}, func(a []string) (any, error) { return parseVersionArgs(parseEnv(), a) })
	run(t, "validate", []tc{
		{args: []string{"-f", "a.yaml", "b.yaml", "--file=c.yaml"}, want: []string{"a.yaml", "c.yaml", "b.yaml"}},
		{args: []string{"x.yaml"}, want: []string{"x.yaml"}},
		{args: nil, errFlag: "-f"},
		{args: []string{"-file", "a"}, errFlag: "-file"},
	}, func(a []string) (any, error) { return parseValidateArgs(parseEnv(), a) })
	run(t, "inspect", []tc{
		{args: []string{"--decode", "m.b64"}, want: &inspectArgs{name: "m.b64", decode: true}},
		{args: []string{"-"}, want: &inspectArgs{name: "-"}},
		{args: []string{"--s3-path-style", "--s3-region", "eu-west-1", "s3://bucket/k"}, want: &inspectArgs{name: "s3://bucket/k", pathStyle: true, region: "eu-west-1"}},
		{args: []string{"s3://bucket/prefix/"}, errFlag: "s3://bucket/prefix/"},
		{args: []string{"s3://bucket/*.enc"}, errFlag: "s3://bucket/*.enc"},
		{args: []string{"a", "b"}, errFlag: "FILE"},
		{args: nil, errFlag: "FILE"},
	}, func(a []string) (any, error) { return parseInspectArgs(parseEnv(), a) })
	run(t, "partition", []tc{
		{args: []string{"-f", "job.yaml", "--out", "s3://b/items/", "--shards", "8", "-q"}, want: &partitionArgs{file: "job.yaml", out: "s3://b/items/", shards: 8, shardsSet: true, quiet: true}},
		{args: []string{"-f", "job.yaml", "--out", "dir", "--name", "n"}, want: &partitionArgs{file: "job.yaml", out: "dir", name: "n"}},
		{args: []string{"--out", "dir"}, errFlag: "-f"},
		{args: []string{"-f", "job.yaml"}, errFlag: "--out"},
		{args: []string{"-f", "job.yaml", "--out", "d", "extra"}, errFlag: "extra"},
		{args: []string{"-f", "a", "-f", "b", "--out", "d"}, errFlag: "-f/--file"},
		{args: []string{"-f", "a", "--out", "d", "--shards", "x"}, errFlag: "?"},
	}, func(a []string) (any, error) { return parsePartitionArgs(parseEnv(), a) })
	run(t, "report", []tc{
		{args: []string{"--json", "s3://b/logs/", "local.jsonl"}, want: &reportS3Args{asJSON: true, logs: []string{"s3://b/logs/", "local.jsonl"}}},
		{args: []string{"--s3-path-style", "--s3-region", "r", "s3://b/x.jsonl"}, want: &reportS3Args{pathStyle: true, region: "r", logs: []string{"s3://b/x.jsonl"}}},
		{args: []string{"--json"}, errFlag: "report"},
	}, func(a []string) (any, error) { return parseReportS3Args(parseEnv(), a) })
	run(t, "plan", []tc{
		{args: []string{"-f", "job.yaml", "--json", "--out", "p.json", "--detailed-exitcode", "-vv", "--shard", "1/4"},
			want: &planArgs{jobFlags: jobFlags{file: "job.yaml", shard: "1/4", verbose: 2}, asJSON: true, out: "p.json", detailed: true}},
		{args: []string{"--file=job.yaml", "--name", "n", "--shards", "3", "-q"}, want: &planArgs{jobFlags: jobFlags{file: "job.yaml", name: "n", shards: 3, quiet: true}}},
		{args: nil, errFlag: "-f"},
		{args: []string{"-f", "job.yaml", "extra"}, errFlag: "extra"},
		{args: []string{"-f", "job.yaml", "-detailed-exitcode"}, errFlag: "-detailed-exitcode"},
	}, func(a []string) (any, error) { return parsePlanArgs(parseEnv(), a) })
	run(t, "apply", []tc{
		{args: []string{"-f", "job.yaml", "--metadata-output", "m.jsonl", "--overwrite-metadata", "--no-progress", "--auto-approve", "--json"},
			want: &applyArgs{jobFlags: jobFlags{file: "job.yaml", metadataOutput: "m.jsonl", overwriteMetadata: true, noProgress: true}, autoApprove: true, asJSON: true, metadataSet: true, overwriteSet: true}},
		{args: []string{"plan.json"}, want: &applyArgs{planFile: "plan.json"}},
		{args: []string{"plan.json", "-f", "job.yaml"}, want: &applyArgs{jobFlags: jobFlags{file: "job.yaml"}, planFile: "plan.json"}},
		{args: []string{"-f", "job.yaml", "--items", "s3://bucket/items/", "--shard", "0/4"}, want: &applyArgs{jobFlags: jobFlags{file: "job.yaml", shard: "0/4"}, items: "s3://bucket/items/"}},
		{args: nil, errFlag: "-f"},
		{args: []string{"a.json", "b.json"}, errFlag: "b.json"},
		{args: []string{"--items", "dir", "plan.json"}, errFlag: "--items"},
		{args: []string{"-f", "job.yaml", "-q", "-v"}, errFlag: "-q"},
		{args: []string{"-f", "job.yaml", "--metadata-output", "a", "--metadata-output", "b"}, errFlag: "--metadata-output"},
	}, func(a []string) (any, error) { return parseApplyArgs(parseEnv(), a) })
	run(t, "check", []tc{
		{args: []string{"-f", "p.yaml", "--json", "-v", "--resolve-aliases"}, want: &checkArgs{file: "p.yaml", asJSON: true, verbose: true, resolveAliases: true}},
		{args: []string{"p.yaml"}, want: &checkArgs{file: "p.yaml"}},
		{args: nil, errFlag: "-f"},
		{args: []string{"-f", "p.yaml", "extra"}, errFlag: "extra"},
		{args: []string{"a.yaml", "b.yaml"}, errFlag: "a.yaml"},
		{args: []string{"-json", "p.yaml"}, errFlag: "-json"},
	}, func(a []string) (any, error) { return parseCheckArgs(parseEnv(), a) })
	run(t, "explain", []tc{
		{args: []string{"-f", "p.yaml", "prod/a.txt"}, want: [2]string{"p.yaml", "prod/a.txt"}},
		{args: []string{"prod/a.txt"}, errFlag: "-f"},
		{args: []string{"-f", "p.yaml"}, errFlag: "-f"},
		{args: []string{"-f", "p.yaml", "a", "b"}, errFlag: "-f"},
	}, func(a []string) (any, error) {
		f, p, err := parseExplainArgs(parseEnv(), a)
		return [2]string{f, p}, err
	})
	dir := t.TempDir()
	for _, n := range []string{"shard-0.jsonl", "shard-1.jsonl", "other.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type report struct {
		files  []string
		asJSON bool
	}
	run(t, "report (local)", []tc{
		{args: []string{"--json", "a.jsonl", dir}, want: report{[]string{"a.jsonl", filepath.Join(dir, "shard-0.jsonl"), filepath.Join(dir, "shard-1.jsonl")}, true}},
		{args: []string{"m.jsonl"}, want: report{[]string{"m.jsonl"}, false}},
		{args: nil, errFlag: "report"},
		{args: []string{"-json", "m.jsonl"}, errFlag: "-json"},
	}, func(a []string) (any, error) {
		files, asJSON, err := parseReportArgs(parseEnv(), a)
		return report{files, asJSON}, err
	})
	renderWant := func(file string, edit func(o *k8s.Options)) *renderArgs {
		r := &renderArgs{file: file, opts: k8s.Options{Shards: 1, BackoffLimitPerIndex: k8s.DefaultBackoffLimitPerIndex, Env: map[string]string{},
			Requests: k8s.Resources{CPU: "1", Memory: "256Mi"}, Limits: k8s.Resources{CPU: "2", Memory: "512Mi"}}}
		edit(&r.opts)
		return r
	}
	run(t, "render", []tc{
		{args: []string{"k8s", "-f", "job.yaml", "--shards", "8", "--image", "img:1", "--namespace", "ns", "--env", "A=b=c", "--env", "B="},
			want: renderWant("job.yaml", func(o *k8s.Options) {
				o.Shards, o.Image, o.Namespace, o.Env = 8, "img:1", "ns", map[string]string{"A": "b=c", "B": ""}
			})},
		{args: []string{"k8s", "-f", "job.yaml", "--items", "s3://b/items/", "--parallelism", "2"},
			want: renderWant("job.yaml", func(o *k8s.Options) { o.ItemsPrefix, o.Parallelism = "s3://b/items/", 2 })},
		{args: []string{"helm", "-f", "job.yaml"}, errFlag: "render"},
		{args: nil, errFlag: "render"},
		{args: []string{"k8s"}, errFlag: "-f"},
		{args: []string{"k8s", "-f", "job.yaml", "--env", "NOEQUALS"}, errFlag: "--env"},
		{args: []string{"k8s", "-f", "job.yaml", "extra"}, errFlag: "extra"},
		{args: []string{"k8s", "-f", "job.yaml", "--shards", "x"}, errFlag: "?"},
	}, func(a []string) (any, error) { return parseRenderArgs(parseEnv(), a) })
	run(t, "completion", []tc{
		{args: []string{"bash"}, want: "bash"},
		{args: []string{"fish"}, want: "fish"},
		{args: []string{"zsh"}, want: "zsh"},
		{args: []string{"bsh"}, errFlag: "bsh"},
		{args: nil, errFlag: "completion"},
		{args: []string{"bash", "zsh"}, errFlag: "completion"},
	}, func(a []string) (any, error) { return parseCompletionArgs(a) })
}
