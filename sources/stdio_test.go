package sources_test

import (
	"bytes"
	"context"
	"io"
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
