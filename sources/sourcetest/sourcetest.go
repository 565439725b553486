// Package sourcetest is the conformance suite every sources.Source and
// sources.Destination implementation runs:
//
//	sourcetest.Run(t, func(t *testing.T) *sourcetest.Harness { ... })
//
// It checks listing order, filters, header and full reads, atomic
// create/commit/abort visibility, overwrite policies, in-place conflict
// detection and escape rejection.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/encjob/encjob/sources"
)

// Harness gives the suite one fresh, empty root.
type Harness struct {
	// Put writes content at key below the root directly (not through a
	// Destination), replacing what is there: the "other writer".
	Put func(t testing.TB, key string, data []byte)
	// Get returns the content at key, or false if absent.
	Get func(t testing.TB, key string) ([]byte, bool)
	// Leftovers lists everything below the root that is not a final
	// object: temporary files, open multipart uploads.
	Leftovers func(t testing.TB) []string
	// Source and Destination are rooted at the root.
	Source      func(t testing.TB, o sources.SourceOptions) sources.Source
	Destination func(t testing.TB) sources.Destination
}

// Factory returns a Harness over a new empty root.
type Factory func(t *testing.T) *Harness

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, *Harness)
	}{
		{"ListOrder", testListOrder},
		{"Filters", testFilters},
		{"OpenAndHeader", testOpen},
		{"StatMissing", testStatMissing},
		{"CommitVisibility", testCommitVisibility},
		{"Abort", testAbort},
		{"OverwriteNever", testOverwriteNever},
		{"OverwriteNeverRace", testOverwriteNeverRace},
		{"OverwriteAlways", testOverwriteAlways},
		{"InPlace", testInPlace},
		{"InPlaceChanged", testInPlaceChanged},
		{"Escape", testEscape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f(t)) })
	}
}

func list(t testing.TB, s sources.Source) []sources.Item {
	t.Helper()
	var items []sources.Item
	if err := s.List(context.Background(), func(it sources.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	return items
}

func keys(items []sources.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func testListOrder(t *testing.T, h *Harness) {
	in := []string{"b.txt", "a/x", "a.txt", "a/b/c", "c-d", "c/d", "Z", "a0"}
	for i, k := range in {
		h.Put(t, k, bytes.Repeat([]byte{'x'}, i+1))
	}
	items := list(t, h.Source(t, sources.SourceOptions{}))
	want := slices.Clone(in)
	sort.Strings(want)
	if got := keys(items); !slices.Equal(got, want) {
		t.Fatalf("list order = %q, want %q", got, want)
	}
	for _, it := range items {
		want := slices.Index(in, it.Key) + 1
		if it.Size != int64(want) || it.Print == "" || it.Skipped != "" || it.Err != nil || it.IsSingle {
			t.Errorf("item %q = %+v, want size %d, a fingerprint, not skipped", it.Key, it, want)
		}
	}
	// A second listing is identical: the order is deterministic.
	if again := keys(list(t, h.Source(t, sources.SourceOptions{}))); !slices.Equal(again, want) {
		t.Fatalf("second listing = %q, want %q", again, want)
	}
}

func testFilters(t *testing.T, h *Harness) {
	for _, k := range []string{"top.csv", "d/x.csv", "d/x.txt", "tmp/y.csv", "d/tmp/z.csv", "d/e/w.csv", "q?.csv"} {
		h.Put(t, k, []byte(k))
	}
	cases := []struct {
		include, exclude []string
		want             []string
	}{
		{[]string{"*.csv"}, []string{"tmp/**"}, []string{"d/e/w.csv", "d/x.csv", "q?.csv", "top.csv"}},
		{[]string{"/*.csv"}, nil, []string{"q?.csv", "top.csv"}},
		{nil, []string{"*.csv"}, []string{"d/x.txt"}},
		{[]string{"d/**"}, []string{"d/e/"}, []string{"d/tmp/z.csv", "d/x.csv", "d/x.txt"}},
		{[]string{"/d/[a-x]?csv"}, nil, []string{"d/x.csv"}},
		{[]string{"{top,q\\?}.csv"}, nil, []string{"q?.csv", "top.csv"}},
	}
	for _, c := range cases {
		f, err := sources.NewFilter(c.include, c.exclude)
		if err != nil {
			t.Fatal(err)
		}
		got := keys(list(t, h.Source(t, sources.SourceOptions{Filter: f})))
		if !slices.Equal(got, c.want) {
			t.Errorf("include %q exclude %q: got %q, want %q", c.include, c.exclude, got, c.want)
		}
	}
}

func testOpen(t *testing.T, h *Harness) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 000 bytes
	h.Put(t, "dir/big", data)
	h.Put(t, "empty", nil)
	s := h.Source(t, sources.SourceOptions{})
	ctx := context.Background()
	rc, err := s.Open(ctx, "dir/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Open read %d bytes (err %v), want %d identical", len(got), err, len(data))
	}
	hr, err := s.OpenHeader(ctx, "dir/big")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 100)
	if _, err := io.ReadFull(hr, head); err != nil || !bytes.Equal(head, data[:100]) {
		t.Fatalf("OpenHeader first bytes = %q (err %v)", head, err)
	}
	hr.Close()
	// Reading on through OpenHeader returns the whole object.
	hr, err = s.OpenHeader(ctx, "dir/big")
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(hr)
	hr.Close()
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("OpenHeader read all: %d bytes (err %v), want %d identical", len(all), err, len(data))
	}
	hr, err = s.OpenHeader(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(hr); err != nil || len(b) != 0 {
		t.Fatalf("OpenHeader on empty: %q, %v", b, err)
	}
	hr.Close()
}

func testStatMissing(t *testing.T, h *Harness) {
	h.Put(t, "here", []byte("x"))
	ctx := context.Background()
	if _, err := h.Source(t, sources.SourceOptions{}).Stat(ctx, "nothere"); !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("Source.Stat(missing) = %v, want ErrNotFound", err)
	}
	if _, err := h.Destination(t).Stat(ctx, "nothere"); !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("Destination.Stat(missing) = %v, want ErrNotFound", err)
	}
	it, err := h.Destination(t).Stat(ctx, "here")
	if err != nil || it.Size != 1 || it.Print == "" {
		t.Errorf("Destination.Stat(here) = %+v, %v", it, err)
	}
}

func create(t testing.TB, d sources.Destination, key string, o sources.CreateOptions, data []byte) sources.Writer {
	t.Helper()
	w, err := d.Create(context.Background(), key, o)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write(%q): %v", key, err)
	}
	return w
}

func noLeftovers(t testing.TB, h *Harness) {
	t.Helper()
	if l := h.Leftovers(t); len(l) > 0 {
		t.Errorf("leftovers after commit/abort: %q", l)
	}
}

func testCommitVisibility(t *testing.T, h *Harness) {
	d := h.Destination(t)
	data := []byte("hello, world")
	w := create(t, d, "out/sub/a.enc", sources.CreateOptions{ContentType: "application/octet-stream"}, data)
	if _, ok := h.Get(t, "out/sub/a.enc"); ok {
		t.Fatal("output visible before Commit")
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got, ok := h.Get(t, "out/sub/a.enc"); !ok || !bytes.Equal(got, data) {
		t.Fatalf("after Commit got %q (present %v), want %q", got, ok, data)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit = %v, want nil (no-op)", err)
	}
	if got, ok := h.Get(t, "out/sub/a.enc"); !ok || !bytes.Equal(got, data) {
		t.Fatal("Abort after Commit removed the output")
	}
	noLeftovers(t, h)
}

func testAbort(t *testing.T, h *Harness) {
	d := h.Destination(t)
	w := create(t, d, "gone", sources.CreateOptions{}, []byte("partial"))
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if _, ok := h.Get(t, "gone"); ok {
		t.Fatal("aborted output exists")
	}
	if err := w.Commit(context.Background()); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if _, ok := h.Get(t, "gone"); ok {
		t.Fatal("Commit after Abort created the output")
	}
	// A cancelled context at Commit aborts too.
	ctx, cancel := context.WithCancel(context.Background())
	w = create(t, d, "cancelled", sources.CreateOptions{}, []byte("x"))
	cancel()
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if _, ok := h.Get(t, "cancelled"); ok {
		t.Fatal("cancelled output exists")
	}
	noLeftovers(t, h)
}

func wantConflict(t testing.TB, err error, reason string) {
	t.Helper()
	var ce *sources.ConflictError
	if !errors.Is(err, sources.ErrConflict) || !errors.As(err, &ce) || ce.Reason != reason {
		t.Fatalf("err = %v, want a %s conflict", err, reason)
	}
}

// createRefused creates, writes and commits an output the destination
// must refuse, and returns the refusal: Create may refuse it (local
// files), or the commit at the latest (S3's conditional writes).
func createRefused(t testing.TB, d sources.Destination, key string, o sources.CreateOptions) error {
	t.Helper()
	w, err := d.Create(context.Background(), key, o)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("must not land")); err != nil {
		w.Abort()
		return err
	}
	return w.Commit(context.Background())
}

func testOverwriteNever(t *testing.T, h *Harness) {
	h.Put(t, "exists", []byte("old"))
	err := createRefused(t, h.Destination(t), "exists", sources.CreateOptions{Overwrite: sources.OverwriteNever})
	wantConflict(t, err, sources.ConflictExists)
	if got, _ := h.Get(t, "exists"); string(got) != "old" {
		t.Fatalf("existing content = %q, want old", got)
	}
	noLeftovers(t, h)
}

func testOverwriteNeverRace(t *testing.T, h *Harness) {
	w := create(t, h.Destination(t), "late", sources.CreateOptions{Overwrite: sources.OverwriteNever}, []byte("mine"))
	h.Put(t, "late", []byte("theirs")) // appears between Create and Commit
	wantConflict(t, w.Commit(context.Background()), sources.ConflictExists)
	if got, _ := h.Get(t, "late"); string(got) != "theirs" {
		t.Fatalf("content = %q, want the other writer's", got)
	}
	noLeftovers(t, h)
}

func testOverwriteAlways(t *testing.T, h *Harness) {
	h.Put(t, "exists", []byte("old"))
	w := create(t, h.Destination(t), "exists", sources.CreateOptions{Overwrite: sources.OverwriteAlways}, []byte("new"))
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Get(t, "exists"); string(got) != "new" {
		t.Fatalf("content = %q, want new", got)
	}
	noLeftovers(t, h)
}

func sourceItem(t testing.TB, h *Harness, key string) sources.Item {
	t.Helper()
	for _, it := range list(t, h.Source(t, sources.SourceOptions{})) {
		if it.Key == key {
			return it
		}
	}
	t.Fatalf("%q not listed", key)
	return sources.Item{}
}

func testInPlace(t *testing.T, h *Harness) {
	h.Put(t, "d/f", []byte("plaintext"))
	it := sourceItem(t, h, "d/f")
	w := create(t, h.Destination(t), "d/f", sources.CreateOptions{IfMatch: it.Print}, []byte("ciphertext"))
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Get(t, "d/f"); string(got) != "ciphertext" {
		t.Fatalf("content = %q, want ciphertext", got)
	}
	// The old fingerprint is now stale: a second in-place write conflicts.
	err := createRefused(t, h.Destination(t), "d/f", sources.CreateOptions{IfMatch: it.Print})
	wantConflict(t, err, sources.ConflictChanged)
	if got, _ := h.Get(t, "d/f"); string(got) != "ciphertext" {
		t.Fatalf("content = %q after a refused write, want ciphertext", got)
	}
	noLeftovers(t, h)
}

func testInPlaceChanged(t *testing.T, h *Harness) {
	h.Put(t, "f", []byte("v1"))
	it := sourceItem(t, h, "f")
	w := create(t, h.Destination(t), "f", sources.CreateOptions{IfMatch: it.Print}, []byte("encrypted v1"))
	h.Put(t, "f", []byte("v2 from a concurrent writer"))
	wantConflict(t, w.Commit(context.Background()), sources.ConflictChanged)
	if got, _ := h.Get(t, "f"); string(got) != "v2 from a concurrent writer" {
		t.Fatalf("content = %q, want the concurrent writer's", got)
	}
	noLeftovers(t, h)
}

func testEscape(t *testing.T, h *Harness) {
	d := h.Destination(t)
	for _, k := range []string{"", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.", "a\x00b", "a/"} {
		_, err := d.Create(context.Background(), k, sources.CreateOptions{Overwrite: sources.OverwriteAlways})
		if !errors.Is(err, sources.ErrEscapes) {
			t.Errorf("Create(%q) = %v, want ErrEscapes", k, err)
		}
		if err != nil && !strings.Contains(err.Error(), "escapes") {
			t.Errorf("Create(%q) error %q does not say it escapes", k, err)
		}
	}
	noLeftovers(t, h)
	if got := list(t, h.Source(t, sources.SourceOptions{})); len(got) != 0 {
		t.Errorf("escape attempts created %q", keys(got))
	}
}
