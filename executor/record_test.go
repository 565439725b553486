package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/sources"
)

func doneRecord(input, print string) *Record {
	return &Record{Mode: "encrypt", Input: input, Action: "encrypt", Status: "done", Fingerprint: print}
}

// TestMetadataLogTornTail is issue 12.6: a log whose last line was cut
// short (SIGKILL, ENOSPC) gets the next record on a line of its own, and
// resume skips the torn line with a warning and reads every other record.
func TestMetadataLogTornTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	good, _ := json.Marshal(doneRecord("a", "fp-a"))
	os.WriteFile(p, append(append(good, '\n'), `{"mode":"encrypt","input":"b","act`...), 0o644)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := NewMetadataLog(f)
	if err := l.Write(doneRecord("c", "fp-c")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, _ := os.ReadFile(p)
	if lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], `{"mode":"encrypt","input":"c"`) {
		t.Fatalf("log after append:\n%s", data)
	}
	var warns []string
	got, err := report.ReadCompleted(bytes.NewReader(data), func(w string) { warns = append(warns, w) })
	if err != nil || got["a"] != "fp-a" || got["c"] != "fp-c" || len(got) != 2 {
		t.Fatalf("completed = %v, %v", got, err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "line 2") {
		t.Errorf("warnings = %q", warns)
	}
	s, err := report.Merge(bytes.NewReader(data))
	if err != nil || s.Items != 2 || len(s.Warnings) != 1 {
		t.Errorf("report: %+v, %v", s, err)
	}
}

// shortWriter writes half of the first write and fails (a disk that fills
// up mid-record), then works again.
type shortWriter struct {
	buf   bytes.Buffer
	fails int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if w.fails > 0 {
		w.fails--
		w.buf.Write(p[:len(p)/2])
		return len(p) / 2, errors.New("no space left on device")
	}
	return w.buf.Write(p)
}

// TestMetadataLogShortWrite: a record cut short by a failing write is
// never glued to the next record.
func TestMetadataLogShortWrite(t *testing.T) {
	w := &shortWriter{fails: 1}
	l := NewMetadataLog(w)
	if err := l.Write(doneRecord("a", "fp-a")); err == nil {
		t.Fatal("a short write reported no error")
	}
	if err := l.Write(doneRecord("b", "fp-b")); err != nil {
		t.Fatal(err)
	}
	got, err := report.ReadCompleted(bytes.NewReader(w.buf.Bytes()), nil)
	if err != nil || len(got) != 1 || got["b"] != "fp-b" {
		t.Fatalf("completed = %v, %v; log:\n%s", got, err, w.buf.String())
	}
}

// TestMetadataLogEveryLineReadable: a record of several MiB (a header with
// many EDKs) is read back by resume and report, beyond bufio.Scanner's
// default 64 KiB; a record that would exceed report.MaxLineBytes is
// written without its EDK lists, says so, and is still read; names that
// are not UTF-8 round-trip through input_b64.
func TestMetadataLogEveryLineReadable(t *testing.T) {
	edks := func(n, size int) *report.CLIHeader {
		h := &report.CLIHeader{Version: "2.0"}
		for range n {
			var k report.CLIDataKey
			k.EncryptedDataKey = strings.Repeat("A", size)
			h.EncryptedDataKeys = append(h.EncryptedDataKeys, k)
		}
		return h
	}
	var buf bytes.Buffer
	l := NewMetadataLog(&buf)
	mid := doneRecord("mid", "fp-mid")
	mid.Header = edks(1000, 4<<10) // about 4 MiB
	huge := doneRecord("huge", "fp-huge")
	huge.Header = edks(20000, 4<<10) // about 80 MiB: over the limit
	odd := doneRecord("/abs/dir/\xff\xfe.txt", "fp-odd")
	odd.Item = "dir/\xff\xfe.txt"
	odd.Output = "out/\xff\xfe.txt.encrypted"
	for _, r := range []*Record{mid, huge, odd} {
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
		if len(line) > report.MaxLineBytes {
			t.Errorf("line %d is %d bytes, over report.MaxLineBytes", i+1, len(line))
		}
		if i == 1 && !bytes.Contains(line, []byte(`"truncated":"20000 encrypted data keys`)) {
			t.Errorf("the over-long record does not say what it left out: %.200s", line)
		}
		if i == 2 && !bytes.Contains(line, []byte(`"item_b64":"ZGlyL//+LnR4dA=="`)) {
			t.Errorf("non-UTF-8 input not kept losslessly: %s", line)
		}
	}
	got, err := report.ReadCompleted(bytes.NewReader(buf.Bytes()), nil)
	want := map[string]sources.Fingerprint{"mid": "fp-mid", "huge": "fp-huge", "dir/\xff\xfe.txt": "fp-odd"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("completed = %v, %v", got, err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("completed[%q] = %q, want %q", k, got[k], v)
		}
	}
	s, err := report.Merge(bytes.NewReader(buf.Bytes()))
	if err != nil || s.Items != 3 || len(s.Warnings) != 0 {
		t.Fatalf("report: %+v, %v", s, err)
	}
}
