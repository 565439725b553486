package partition_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/internal/partition"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/s3test"
)

func localStore(t *testing.T, dir string) partition.Store {
	t.Helper()
	loc, err := sources.Parse(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sources.NewLocalSource(loc, sources.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := partition.NewStore(src, sources.NewLocalDestination(dir, sources.LocalDestOptions{Sync: sources.SyncNone}))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// items are 10 listed items over two sources, one with an error and one
// skipped, assigned to parts by index.
func items() []partition.Line {
	var out []partition.Line
	for i := range 10 {
		si := sources.Item{Key: fmt.Sprintf("k/%02d", i), Size: int64(i), ModTime: time.Unix(int64(1e9+i), 0).UTC(), Print: sources.Fingerprint(fmt.Sprintf("fp%d", i))}
		switch i {
		case 3:
			si.Err = errors.New("permission denied")
		case 4:
			si.Skipped = "fifo"
		}
		out = append(out, partition.LineOf(i%2, si))
	}
	return out
}

func write(t *testing.T, st partition.Store, shards int) *partition.Manifest {
	t.Helper()
	m, err := partition.Write(context.Background(), st, partition.Manifest{Name: "job", SpecDigest: "sha256:abc", Shards: shards, Sources: []string{"a", "b"}},
		func(add func(int, partition.Line) error) error {
			for i, l := range items() {
				if err := add(i%shards, l); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// roundTrip: what Write stores, ReadManifest and ReadPart give back,
// every line in its part in listing order, errors and skips included.
func roundTrip(t *testing.T, st partition.Store) {
	ctx := context.Background()
	w := write(t, st, 3)
	m, err := partition.ReadManifest(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check("sha256:abc"); err != nil {
		t.Fatal(err)
	}
	if m.Items != 10 || len(m.Parts) != 3 || m.Name != "job" || m.FormatVersion != partition.FormatVersion || m.Kind != partition.Kind || m.Parts[1].SHA256 != w.Parts[1].SHA256 {
		t.Fatalf("manifest %+v", m)
	}
	all := items()
	for p := range 3 {
		lines, err := partition.ReadPart(ctx, st, m.Parts[p])
		if err != nil {
			t.Fatal(err)
		}
		var want []partition.Line
		for i := p; i < len(all); i += 3 {
			want = append(want, all[i])
		}
		if fmt.Sprint(lines) != fmt.Sprint(want) {
			t.Errorf("part %d: %v, want %v", p, lines, want)
		}
		for _, l := range lines {
			it := l.Item()
			if l.Key == "k/03" && (it.Err == nil || it.Err.Error() != "permission denied") || l.Key == "k/04" && it.Skipped != "fifo" {
				t.Errorf("%s: item %+v", l.Key, it)
			}
		}
	}
	if err := m.Check("sha256:other"); err == nil || !strings.Contains(err.Error(), "another spec") {
		t.Errorf("Check with another digest: %v", err)
	}
}

func TestLocalRoundTrip(t *testing.T) { roundTrip(t, localStore(t, t.TempDir())) }

func TestS3RoundTrip(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket(t, "parts")
	loc, _ := sources.Parse("s3://parts/runs/x/items/")
	o := sources.S3Options{Client: srv.Client}
	src, _ := sources.NewS3Source(loc, o)
	dst, _ := sources.NewS3Destination(loc, o)
	st, err := partition.NewStore(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, st)
	// A rewrite deletes the old manifest first: while it runs, shards see
	// no manifest instead of a stale one.
	if err := st.Delete(context.Background(), partition.ManifestName); err != nil {
		t.Fatal(err)
	}
	if _, err := partition.ReadManifest(context.Background(), st); !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
}

// Refusals: a missing manifest is ErrNotFound; another version or kind,
// unknown fields, a part rewritten after the manifest, and a part count
// that does not match the shards are errors naming the cause.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := localStore(t, dir)
	if _, err := partition.ReadManifest(ctx, st); !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("no manifest: %v", err)
	}
	m := write(t, st, 2)
	edit := func(from, to string) {
		b, _ := os.ReadFile(filepath.Join(dir, partition.ManifestName))
		os.WriteFile(filepath.Join(dir, partition.ManifestName), bytes.Replace(b, []byte(from), []byte(to), 1), 0o644)
	}
	edit(`"format_version": 1`, `"format_version": 2`)
	if got, err := partition.ReadManifest(ctx, st); err != nil || got.Check("sha256:abc") == nil || !strings.Contains(got.Check("sha256:abc").Error(), "version 2") {
		t.Errorf("version 2: %v", err)
	}
	edit(`"format_version": 2`, `"format_version": 1, "extra": true`)
	if _, err := partition.ReadManifest(ctx, st); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("unknown field: %v", err)
	}
	bad := *m
	bad.Parts = bad.Parts[:1]
	if err := bad.Check("sha256:abc"); err == nil || !strings.Contains(err.Error(), "1 parts for 2 shards") {
		t.Errorf("parts/shards: %v", err)
	}
	// Part 0 rewritten by another run (another content, another digest).
	other := localStore(t, t.TempDir())
	write(t, other, 1)
	rc, _ := other.Get(ctx, partition.PartName(0))
	b, _ := io.ReadAll(rc)
	rc.Close()
	os.WriteFile(filepath.Join(dir, partition.PartName(0)), b, 0o644)
	if _, err := partition.ReadPart(ctx, st, m.Parts[0]); err == nil || !strings.Contains(err.Error(), "does not match the manifest") {
		t.Errorf("rewritten part: %v", err)
	}
	os.Remove(filepath.Join(dir, partition.PartName(1)))
	if _, err := partition.ReadPart(ctx, st, m.Parts[1]); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("missing part: %v", err)
	}
	if _, err := partition.Write(ctx, st, partition.Manifest{Shards: 2}, func(add func(int, partition.Line) error) error {
		return add(2, partition.Line{Key: "x"})
	}); err == nil {
		t.Error("a line assigned to a part that does not exist was accepted")
	}
}
