package doctest

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseBlocksSkipsAndExpectations(t *testing.T) {
	doc := strings.Join([]string{
		"# Title",
		"",
		"```sh",
		"encjob plan -f x.yaml",
		"```",
		"",
		"Output:",
		"",
		"```text",
		"Plan x: …2 to encrypt",
		"",
		"  done  ",
		"```",
		"",
		"```sh",
		"# needs: aws",
		"aws s3 ls",
		"```",
		"```text",
		"attached to the skipped block, never checked",
		"```",
		"Some prose that explains the next block.",
		"",
		"```text",
		"just text",
		"```",
		"~~~~sh",
		"# not run: starts a server",
		"```",
		"~~~~",
		"```yaml",
		"a: 1",
		"```",
	}, "\n") + "\n"
	blocks, err := Parse("doc.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	var langs []string
	for _, b := range blocks {
		langs = append(langs, b.Lang)
	}
	if want := []string{"sh", "text", "sh", "text", "text", "sh", "yaml"}; !reflect.DeepEqual(langs, want) {
		t.Fatalf("langs %v, want %v", langs, want)
	}
	first := blocks[0]
	if !first.Runs() || first.Line != 3 || first.Body != "encjob plan -f x.yaml\n" {
		t.Errorf("first block %+v", first)
	}
	if want := []string{"Plan x: …2 to encrypt", "done"}; !reflect.DeepEqual(first.Expect, want) || first.ExpectLine != 9 {
		t.Errorf("expect %q at %d, want %q at 9", first.Expect, first.ExpectLine, want)
	}
	if blocks[2].Runs() || blocks[2].Skip != "needs: aws" {
		t.Errorf("aws block: runs=%v skip=%q", blocks[2].Runs(), blocks[2].Skip)
	}
	for _, b := range blocks {
		for _, e := range b.Expect {
			if e == "just text" {
				t.Errorf("a text block after prose became the expected output of line %d", b.Line)
			}
		}
	}
	if b := blocks[5]; b.Runs() || b.Skip != "not run: starts a server" || b.Body != "# not run: starts a server\n```\n" {
		t.Errorf("tilde block %+v", b)
	}
}

func TestParseRejectsTyposAndOpenFences(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown need":    "```sh\n# needs: aws-account\nx\n```\n",
		"no reason":       "```sh\n# not run:\nx\n```\n",
		"unclosed":        "text\n```sh\necho hi\n",
		"short close fen": "````sh\necho hi\n```\n",
	} {
		if _, err := Parse("doc.md", doc); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "doc.md:") {
			t.Errorf("%s: error %q does not name the file and line", name, err)
		}
	}
}

func TestMissingLines(t *testing.T) {
	out := "encjob: key group \"local\": will generate a 256-bit AES key at /tmp/x/examples/.encjob/q.key (mode 0600) on apply\n" +
		"Plan quickstart: 2 to encrypt (+), 0 unchanged (=)\n" +
		"encjob: done: 2 encrypted (+), 0 failed (x); 51 B in, 947 B out, 139ms\n"
	for _, c := range []struct {
		expect  []string
		missing []string
	}{
		{[]string{"will generate a 256-bit AES key at …/examples/.encjob/q.key (mode 0600)", "…2 to encrypt (+)…", "encjob: done: 2 encrypted (+), 0 failed (x)…"}, nil},
		{[]string{"encjob: done: 2 encrypted (+), 0 failed (x)...", "2 to encrypt"}, []string{"2 to encrypt"}}, // order matters
		{[]string{"3 to encrypt"}, []string{"3 to encrypt"}},
		{[]string{"Plan …: 2 to encrypt…0 unchanged"}, nil},
		{[]string{"0 unchanged…2 to encrypt"}, []string{"0 unchanged…2 to encrypt"}},
	} {
		if got := MissingLines(c.expect, out); !reflect.DeepEqual(got, c.missing) {
			t.Errorf("MissingLines(%q) = %q, want %q", c.expect, got, c.missing)
		}
	}
}
