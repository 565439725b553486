package sources_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/encjob/encjob/sources"
)

func TestStdio(t *testing.T) {
	ctx := context.Background()
	s := sources.NewStdinSource(strings.NewReader("piped"))
	items := listAll(t, s)
	if len(items) != 1 || items[0].Key != "-" || !items[0].IsSingle {
		t.Fatalf("stdin items: %+v", items)
	}
	rc, err := s.Open(ctx, "-")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "piped" {
		t.Fatalf("stdin read %q", b)
	}
	if _, err := s.Open(ctx, "-"); err == nil {
		t.Fatal("stdin opened twice")
	}
	var out bytes.Buffer
	d := sources.NewStdoutDestination(&out)
	w, _ := d.Create(ctx, "x", sources.CreateOptions{})
	w.Write([]byte("out"))
	if err := w.Commit(ctx); err != nil || out.String() != "out" {
		t.Fatalf("stdout got %q, %v", out.String(), err)
	}
	w, _ = d.Create(ctx, "y", sources.CreateOptions{}) // the lock was released
	w.Abort()
}

// TestStdoutStagesUntilCommit: nothing reaches the stream before Commit,
// also beyond the memory stage (spilled to an unnamed temporary file that
// leaves nothing in TempDir); Abort releases nothing.
func TestStdoutStagesUntilCommit(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	var out bytes.Buffer
	d := sources.NewStdoutDestination(&out)
	d.TempDir = tmp
	big := bytes.Repeat([]byte("0123456789abcdef"), (sources.StdoutMemory+5000)/16)
	for _, commit := range []bool{false, true} {
		w, _ := d.Create(ctx, "x", sources.CreateOptions{})
		for p := big; len(p) > 0; p = p[min(len(p), 70000):] {
			if _, err := w.Write(p[:min(len(p), 70000)]); err != nil {
				t.Fatal(err)
			}
		}
		if out.Len() != 0 {
			t.Fatalf("%d bytes reached the stream before Commit", out.Len())
		}
		if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
			t.Fatalf("the staging file has a name: %v", entries)
		}
		if !commit {
			w.Abort()
			if out.Len() != 0 {
				t.Fatalf("Abort released %d bytes", out.Len())
			}
			continue
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), big) {
			t.Fatalf("committed %d bytes, want %d", out.Len(), len(big))
		}
	}
}
