package planner

import (
	"bytes"
	"strings"
	"testing"

	"github.com/encjob/encjob/spec"
)

// A saved plan keeps file names that are not UTF-8 byte for byte (JSON
// strings alone would replace the bytes with U+FFFD), and still refuses
// unknown fields, inside items too.
func TestPlanKeepsNonUTF8Names(t *testing.T) {
	bad := "dir/bad\xff\xfe\x1b.txt"
	p := &Plan{FormatVersion: FormatVersion, Job: &spec.Job{}, Items: []Item{
		{Key: bad, Input: "/in/" + bad, Output: "/out/" + bad + ".encrypted", OutKey: bad + ".encrypted", OutRoot: "/out\xff", Rule: -1},
		{Key: "fine.txt", Input: "/in/fine.txt", Rule: -1},
	}}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "raw_names") != 1 {
		t.Errorf("raw_names written %d times, want once (only the non-UTF-8 item):\n%s", strings.Count(buf.String(), "raw_names"), buf.String())
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range p.Items {
		g := got.Items[i]
		if g.Key != want.Key || g.Input != want.Input || g.Output != want.Output || g.OutKey != want.OutKey || g.OutRoot != want.OutRoot {
			t.Errorf("item %d: read back %+v, want %+v", i, g, want)
		}
	}
	for _, edit := range []string{`"raw_names": {"shred": "eA=="}`, `"bogus": 1`} {
		s := strings.Replace(buf.String(), `"key": "fine.txt"`, `"key": "fine.txt", `+edit, 1)
		if _, err := Read(strings.NewReader(s)); err == nil {
			t.Errorf("plan with %s in an item was read", edit)
		}
	}
}
