package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetadataLogWriteFailureKeepsDone is issue 12.6 through the binary:
// the metadata log cannot be written (/dev/full: ENOSPC on every write),
// the outputs are committed, and the run says both facts — the items are
// done, not failed, and the unwritten records make the exit code 1.
func TestMetadataLogWriteFailureKeepsDone(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir, files := setup(t)
	r := encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc", "-r", rawKey, "--metadata-output", "/dev/full")...)
	wantCode(t, r, 1)
	if strings.Contains(r.stderr, "failed:") || !strings.Contains(r.stderr, "3 encrypted (+), 0 failed") {
		t.Errorf("items reported failed because their log write failed:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "records not written") || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("the unwritten records are not reported:\n%s", r.stderr)
	}
	for name := range files {
		if _, err := os.Stat(filepath.Join(dir, "enc", name+".encrypted")); err != nil {
			t.Errorf("output of %s not committed: %v", name, err)
		}
	}
}

// TestMetadataLogTornResume: a log whose last record was cut short (as
// SIGKILL or ENOSPC leave it) is appended to on a new line, resume reads
// past the torn line (with a warning) and matches every done item, also
// one whose name is not UTF-8 (kept losslessly as input_b64); report
// reads the log too.
func TestMetadataLogTornResume(t *testing.T) {
	dir, _ := setup(t)
	odd := filepath.Join(dir, "in", "b", "caf\xe9-\xff.bin")
	if err := os.WriteFile(odd, []byte("latin-1 name"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() result {
		return encjob(t, dir, nil, args("encrypt", "-i", "in", "-o", "enc", "-r", rawKey, "--metadata-output", "log.jsonl")...)
	}
	wantCode(t, run(), 0)
	logPath := filepath.Join(dir, "log.jsonl")
	f, _ := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"mode":"encrypt","input":"in/b/c.bin","action":"enc`) // torn, no newline
	f.Close()

	r := run()
	wantCode(t, r, 0) // every item resumed as done: no conflicts with the existing outputs
	if !strings.Contains(r.stderr, "cut short") {
		t.Errorf("no warning about the torn record:\n%s", r.stderr)
	}
	data, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	torn := -1
	for i, l := range lines {
		if strings.HasPrefix(l, `{"mode":"encrypt","input":"in/b/c.bin","action":"enc`) && !strings.HasSuffix(l, "}") {
			torn = i
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("line %d is not a record (glued to the torn one?): %.200s", i+1, l)
		}
	}
	if torn < 0 || torn == len(lines)-1 {
		t.Fatalf("torn line not kept on its own line (at %d of %d):\n%s", torn, len(lines), data)
	}
	if !bytes.Contains(data, []byte(`"input_b64"`)) {
		t.Errorf("the non-UTF-8 name has no input_b64:\n%s", data)
	}
	r = encjob(t, dir, nil, "report", "--json", "log.jsonl")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "cut short") {
		t.Errorf("report does not warn about the torn record:\n%s\n%s", r.stdout, r.stderr)
	}
}
