package sources

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestProvenTemporaries: only names a journal proves are reported; a user's
// look-alike, a record pointing outside the root and a root without the
// marker report nothing.
func TestProvenTemporaries(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const run = "0123456789abcdef0123456789abcdef"
	tmpA := TempPrefix + run + "-1"
	tmpB := TempPrefix + run + "-2"
	write("a/"+tmpA, "half of a commit")
	write("b/"+tmpB, "named temporary without O_TMPFILE")
	write("b/"+TempPrefix+"notes.txt", "a user's file")
	write("c/"+TempPrefix+"ffff-1", "another run's name, not journalled")
	outside := filepath.Join(t.TempDir(), tmpA)
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	if got, err := ProvenTemporaries(root); err != nil || len(got) != 0 {
		t.Fatalf("without a state directory: %v %v", got, err)
	}
	var journal []byte
	journal = append(journal, record{kind: 'P', key: "a/x.enc", tmp: tmpA, print: "local:1"}.encode()...)
	journal = append(journal, record{kind: 'D', key: "b"}.encode()...)
	journal = append(journal, record{kind: 'P', key: "../escape/x", tmp: tmpA}.encode()...)
	journal = append(journal, []byte("torn line without newline")...)
	write(StateDir+"/runs/20261201T000000-"+run+journalSuffix, string(journal))
	if got, _ := ProvenTemporaries(root); len(got) != 0 {
		t.Fatalf("without the marker the directory is not encjob's, got %v", got)
	}
	write(StateDir+"/"+stateMarker, markerText)
	got, err := ProvenTemporaries(root)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{filepath.Join(root, "a", tmpA), filepath.Join(root, "b", tmpB)}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("proven temporaries %v, want %v", got, want)
	}
}
