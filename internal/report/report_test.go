package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.*")

func openLogs(t *testing.T, names ...string) []io.Reader {
	t.Helper()
	var rs []io.Reader
	for _, n := range names {
		f, err := os.Open(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		rs = append(rs, f)
	}
	return rs
}

// Three shards: shard 1 re-ran after failures (appending to its log),
// shard 2 was killed while writing a line and also logged an item of
// shard 0.
func TestMergeShards(t *testing.T) {
	s, err := Merge(openLogs(t, "shard-0.jsonl", "shard-1.jsonl", "shard-2.jsonl")...)
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{
		Logs: 3, Lines: 13, Items: 9, Superseded: 4,
		Actions: map[string]int{"encrypt": 2, "decrypt": 1, "reencrypt": 1, "rewrap": 0, "unchanged": 2, "skip": 1, "conflict": 1, "error": 1},
		// Final lines: a (shard 2) 1000/1401, e 0/0, f 3000/3400, h 1400/1000, i 5000/5100.
		BytesIn:  1000 + 3000 + 1400 + 5000,
		BytesOut: 1401 + 3400 + 1000 + 5100,
		Shards:   []string{"0/3", "1/3", "2/3"},
		Failures: []Failure{{Input: "s3://acme/in/g.csv", Output: "s3://acme/out/g.csv.encrypted", Action: "encrypt",
			Shard: "1/3", Error: "s3: GetObject: timeout\nafter 3 attempts"}},
		Duplicates: []Duplicate{{Input: "s3://acme/in/a.csv", Shards: []string{"0/3", "2/3"}, Actions: []string{"encrypt", "encrypt"}}},
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "shard-2.jsonl:4") {
		t.Errorf("warnings = %q, want one about shard-2.jsonl:4 (cut off)", s.Warnings)
	}
	want.Warnings = s.Warnings
	if !reflect.DeepEqual(s, want) {
		t.Errorf("summary:\n got %+v\nwant %+v", s, want)
	}
	if s.OK() || s.Failed() != 1 {
		t.Errorf("OK() = %v, Failed() = %d; want false, 1", s.OK(), s.Failed())
	}

	// The text and JSON views.
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.golden.txt", text.Bytes())
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Summary
	dec := json.NewDecoder(&js)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decoding WriteJSON output: %v", err)
	}
	if !reflect.DeepEqual(&back, s) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v", &back, s)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended); got:\n%s", path, got)
	}
}

// Re-running an index supersedes its earlier lines whether it appends to
// the same log or writes a new one, as long as the lines name the shard.
func TestRerunInSeparateLog(t *testing.T) {
	first := `{"input":"x","action":"error","error":"boom","shard":"1/2"}
{"input":"y","action":"encrypt","bytes_in":5,"bytes_out":9,"shard":"1/2"}
`
	rerun := `{"input":"x","action":"encrypt","bytes_in":3,"bytes_out":7,"shard":"1/2"}
{"input":"y","action":"unchanged","shard":"1/2"}
`
	s, err := Merge(strings.NewReader(first), strings.NewReader(rerun))
	if err != nil {
		t.Fatal(err)
	}
	if !s.OK() || s.Items != 2 || s.Superseded != 2 || s.Actions["encrypt"] != 1 || s.Actions["unchanged"] != 1 ||
		s.BytesIn != 3 || s.BytesOut != 7 || !slices.Equal(s.Shards, []string{"1/2"}) {
		t.Errorf("summary = %+v", s)
	}

	// The same order reversed: the failure is now the last word.
	s, err = Merge(strings.NewReader(rerun), strings.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if s.OK() || len(s.Failures) != 1 || s.Failures[0].Input != "x" || s.Failures[0].Error != "boom" {
		t.Errorf("reversed: failures = %+v", s.Failures)
	}
}

// Without a shard field each log is a shard: the same input in two logs
// is a duplicate, and logs are named "log N" (or by their file name).
func TestShardFromLog(t *testing.T) {
	a := `{"input":"x","action":"encrypt"}
{"input":"z","action":"encrypt"}
{"input":"z","action":"encrypt"}
`
	b := `{"input":"x","action":"unchanged"}
{"input":"y","action":"decrypt","shard":7}
`
	s, err := Merge(strings.NewReader(a), strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []Duplicate{{Input: "x", Shards: []string{"log 1", "log 2"}, Actions: []string{"encrypt", "unchanged"}}}
	if !reflect.DeepEqual(s.Duplicates, want) {
		t.Errorf("duplicates = %+v, want %+v", s.Duplicates, want)
	}
	if !slices.Equal(s.Shards, []string{"7", "log 1", "log 2"}) {
		t.Errorf("shards = %q", s.Shards)
	}
	if s.Superseded != 2 || s.Items != 3 {
		t.Errorf("superseded %d items %d, want 2 and 3", s.Superseded, s.Items)
	}
}

// Lines as aws-encryption-cli writes them (no action) are understood.
func TestAWSEncryptionCLILines(t *testing.T) {
	log := `{"mode": "encrypt", "input": "/d/a", "output": "/d/a.encrypted"}
{"mode": "decrypt", "input": "/d/b.encrypted", "output": "/d/b.encrypted.decrypted"}
{"mode": "decrypt", "input": "/d/c.encrypted", "output": "/d/c.encrypted.decrypted", "skipped": true, "reason": "Missing encryption context key or value", "missing_encryption_context_keys": ["k"]}
`
	s, err := Merge(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if s.Actions["encrypt"] != 1 || s.Actions["decrypt"] != 1 || s.Actions["skip"] != 1 || !s.OK() {
		t.Errorf("actions = %v", s.Actions)
	}
}

func TestBadLines(t *testing.T) {
	cases := map[string]string{
		"not json":       "{\"input\":\"a\",\"action\":\"encrypt\"}\nnot json\n",
		"no input":       "{\"action\":\"encrypt\"}\n",
		"no action":      "{\"input\":\"a\"}\n",
		"unknown action": "{\"input\":\"a\",\"action\":\"shred\"}\n",
		"bad shard":      "{\"input\":\"a\",\"action\":\"encrypt\",\"shard\":[1]}\n",
		"negative bytes": "{\"input\":\"a\",\"action\":\"encrypt\",\"bytes_in\":-1}\n",
		"array":          "[1,2]\n",
	}
	for name, log := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Merge(strings.NewReader("{\"input\":\"ok\",\"action\":\"encrypt\"}\n"), strings.NewReader(log))
			var le *LineError
			if !errors.As(err, &le) || s != nil {
				t.Fatalf("Merge = %v, %v; want a *LineError", s, err)
			}
			wantLine := strings.Count(strings.TrimSuffix(log, "\n"), "\n") + 1
			if le.Log != "log 2" || le.Line != wantLine {
				t.Errorf("error at %s:%d, want log 2:%d (%v)", le.Log, le.Line, wantLine, err)
			}
		})
	}

	// A record cut short and then followed by a newline (the writer
	// repairs a torn tail before appending) is a warning, wherever it is;
	// a line that is not the start of a record is an error.
	s, err := Merge(strings.NewReader("{\"input\":\"a\",\"act\n{\"input\":\"b\",\"action\":\"encrypt\"}\n"))
	if err != nil || s.Items != 1 || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "cut short") {
		t.Errorf("torn record mid-log: %+v, %v", s, err)
	}
	if _, err := Merge(strings.NewReader("garbage\n")); err == nil {
		t.Error("a complete malformed line was accepted")
	}
	s, err = Merge(strings.NewReader("{\"input\":\"a\",\"action\":\"encrypt\"}\n{\"input\":\"b\",\"act"))
	if err != nil || s.Items != 1 || len(s.Warnings) != 1 {
		t.Errorf("cut-off log: %+v, %v", s, err)
	}
	// A whole final line without a newline counts.
	s, err = Merge(strings.NewReader("{\"input\":\"a\",\"action\":\"encrypt\"}"))
	if err != nil || s.Items != 1 || len(s.Warnings) != 0 {
		t.Errorf("final line without newline: %+v, %v", s, err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadError(t *testing.T) {
	_, err := Merge(failingReader{})
	var le *LineError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Merge = %v, want a *LineError with the cause", err)
	}
}

func TestEmpty(t *testing.T) {
	s, err := Merge()
	if err != nil {
		t.Fatal(err)
	}
	if !s.OK() || s.Items != 0 || len(s.Actions) != len(Actions) {
		t.Errorf("empty summary = %+v", s)
	}
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"failures": []`, `"duplicates": []`, `"shards": []`} {
		if !strings.Contains(js.String(), k) {
			t.Errorf("JSON of an empty summary lacks %s:\n%s", k, js.String())
		}
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(text.String(), "result: ok\n") {
		t.Errorf("text:\n%s", text.String())
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestLinesAnyLength is issue 12.6: report reads every line the writer
// can produce (a header line of megabytes, beyond bufio.Scanner's 64 KiB),
// skips a line over MaxLineBytes with a warning instead of stopping, reads
// a record an older writer glued to a torn one, and keys an input that is
// not UTF-8 by its bytes (input_b64).
func TestLinesAnyLength(t *testing.T) {
	big := strings.Repeat("x", 5<<20)
	log := `{"mode":"encrypt","input":"a","action":"encrypt","header":"` + big + `"}` + "\n" +
		`{"mode":"encrypt","input":"b","action":"encr{"mode":"encrypt","input":"c","action":"encrypt"}` + "\n" +
		`{"mode":"encrypt","input":"\ufffd","input_b64":"/w==","action":"encrypt","error":"boom"}` + "\n"
	s, err := Merge(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if s.Items != 3 || s.Actions["encrypt"] != 2 || len(s.Failures) != 1 || s.Failures[0].Input != "\xff" {
		t.Fatalf("summary %+v", s)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "glued") {
		t.Errorf("warnings %q", s.Warnings)
	}

	// A line over the limit (no writer makes one: the input is not a
	// log, e.g. /dev/zero) stops the read at once with an error.
	_, err = Merge(io.MultiReader(strings.NewReader(`{"input":"h","action":"encrypt","x":"`), repeatReader('y')))
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("endless line: %v", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
