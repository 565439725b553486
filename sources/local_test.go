package sources_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/sources/sourcetest"
)

func localHarness(mode sources.SyncMode) sourcetest.Factory {
	return func(t *testing.T) *sourcetest.Harness {
		root := t.TempDir()
		return &sourcetest.Harness{
			Put: func(t testing.TB, key string, data []byte) {
				p := filepath.Join(root, filepath.FromSlash(key))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			Get: func(t testing.TB, key string) ([]byte, bool) {
				b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key)))
				return b, err == nil
			},
			Leftovers: func(t testing.TB) []string {
				var out []string
				filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
					if err == nil && strings.HasPrefix(de.Name(), sources.TempPrefix) {
						out = append(out, p)
					}
					return nil
				})
				return out
			},
			Source: func(t testing.TB, o sources.SourceOptions) sources.Source {
				loc, err := sources.Parse(root)
				if err != nil {
					t.Fatal(err)
				}
				s, err := sources.NewLocalSource(loc, o)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Destination: func(t testing.TB) sources.Destination {
				return sources.NewLocalDestination(root, sources.LocalDestOptions{Sync: mode})
			},
		}
	}
}

func TestLocalConformance(t *testing.T) {
	for _, m := range []struct {
		name string
		mode sources.SyncMode
	}{{"group", sources.SyncGroup}, {"each", sources.SyncEach}, {"none", sources.SyncNone}} {
		t.Run(m.name, func(t *testing.T) { sourcetest.Run(t, localHarness(m.mode)) })
	}
}

func listAll(t *testing.T, s sources.Source) []sources.Item {
	t.Helper()
	var out []sources.Item
	if err := s.List(context.Background(), func(it sources.Item) error { out = append(out, it); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func newLocal(t *testing.T, path string, o sources.SourceOptions) *sources.LocalSource {
	t.Helper()
	loc, err := sources.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sources.NewLocalSource(loc, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestLocalSpecialFiles(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(root, "a.txt"), "a")
	write(t, filepath.Join(outside, "secret"), "s")
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link-out"))
	os.Symlink(outside, filepath.Join(root, "dirlink"))
	os.Symlink(".", filepath.Join(root, "loop"))
	write(t, filepath.Join(root, sources.TempPrefix+"stale"), "tmp")

	got := map[string]string{}
	for _, it := range listAll(t, newLocal(t, root, sources.SourceOptions{})) {
		got[it.Key] = it.Skipped
	}
	want := map[string]string{"a.txt": "", "fifo": "named pipe (fifo)", "link-out": "symlink not followed",
		"dirlink": "symlink not followed", "loop": "symlink not followed", sources.TempPrefix + "stale": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("without FollowSymlinks: %v, want %v", got, want)
	}
	// Open never blocks on a fifo; it refuses it.
	if _, err := newLocal(t, root, sources.SourceOptions{}).Open(context.Background(), "fifo"); err == nil {
		t.Error("Open(fifo) succeeded")
	}

	got = map[string]string{}
	for _, it := range listAll(t, newLocal(t, root, sources.SourceOptions{FollowSymlinks: true})) {
		got[it.Key] = it.Skipped
	}
	want = map[string]string{"a.txt": "", "fifo": "named pipe (fifo)", "link-out": "",
		"dirlink/secret": "", "loop": "symlink loop", sources.TempPrefix + "stale": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with FollowSymlinks: %v, want %v", got, want)
	}
}

func TestLocalUnreadableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any directory; an unreadable directory cannot be made")
	}
	root := t.TempDir()
	write(t, filepath.Join(root, "a"), "a")
	write(t, filepath.Join(root, "locked/b"), "b")
	write(t, filepath.Join(root, "z"), "z")
	os.Chmod(filepath.Join(root, "locked"), 0)
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "locked"), 0o755) })
	items := listAll(t, newLocal(t, root, sources.SourceOptions{}))
	if len(items) != 3 || items[1].Key != "locked" || items[1].Err == nil || items[2].Key != "z" {
		t.Fatalf("items = %+v, want a, locked (error), z", items)
	}
}

func TestLocalSingleFileAndGlob(t *testing.T) {
	root := t.TempDir()
	for _, k := range []string{"x.csv", "d/y.csv", "d/e/z.csv", "d/n.txt"} {
		write(t, filepath.Join(root, k), k)
	}
	items := listAll(t, newLocal(t, filepath.Join(root, "d/y.csv"), sources.SourceOptions{}))
	if len(items) != 1 || items[0].Key != "y.csv" || !items[0].IsSingle || items[0].Mode != 0o640 {
		t.Fatalf("single file: %+v", items)
	}
	s := newLocal(t, filepath.Join(root, "d/y.csv"), sources.SourceOptions{})
	if it, err := s.Stat(context.Background(), "y.csv"); err != nil || it.Print != items[0].Print {
		t.Fatalf("single file Stat: %+v %v", it, err)
	}
	items = listAll(t, newLocal(t, root+"/**/*.csv", sources.SourceOptions{}))
	if got := fmt.Sprint(keysOf(items)); got != "[d/e/z.csv d/y.csv x.csv]" {
		t.Fatalf("glob **/*.csv: %s", got)
	}
	items = listAll(t, newLocal(t, root+"/d/*.csv", sources.SourceOptions{}))
	if got := fmt.Sprint(keysOf(items)); got != "[y.csv]" {
		t.Fatalf("glob d/*.csv: %s", got)
	}
}

// A glob source that matches nothing (or only what its filters exclude)
// is a missing source: a *NoMatchError, an fs.ErrNotExist, as -i says on
// the command line; a directory that lists nothing is just empty.
func TestGlobMatchingNothing(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "d/y.csv"), "y")
	os.Mkdir(filepath.Join(root, "empty"), 0o755)
	exclude, _ := sources.NewFilter(nil, []string{"y.csv"})
	for _, tc := range []struct {
		loc    string
		filter *sources.Filter
		want   bool // a NoMatchError
	}{
		{root + "/d/*.txt", nil, true},
		{root + "/**/*.txt", nil, true},
		{root + "/empty/*", nil, true},
		{root + "/d/*.csv", exclude, true},
		{root + "/d/*.csv", nil, false},
		{root + "/empty", nil, false},
	} {
		err := newLocal(t, tc.loc, sources.SourceOptions{Filter: tc.filter}).List(context.Background(), func(sources.Item) error { return nil })
		var nm *sources.NoMatchError
		if got := errors.As(err, &nm); got != tc.want || got && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want a NoMatchError: %v", tc.loc, err, tc.want)
		}
	}
}

func keysOf(items []sources.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

func TestLocalModes(t *testing.T) {
	root := t.TempDir()
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	ctx := context.Background()
	w, _ := d.Create(ctx, "new", sources.CreateOptions{})
	w.Write([]byte("x"))
	// An unnamed O_TMPFILE: nothing is visible before the commit.
	if tmps, _ := filepath.Glob(filepath.Join(root, sources.TempPrefix+"*")); len(tmps) != 0 {
		t.Fatalf("temporary files = %q, want none", tmps)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "new")); fi.Mode().Perm() != 0o666&^sources.Umask() {
		t.Errorf("final mode %v, want 0666 &^ umask", fi.Mode().Perm())
	}
	write(t, filepath.Join(root, "src"), "plain")
	os.Chmod(filepath.Join(root, "src"), 0o600)
	it, _ := d.Stat(ctx, "src")
	w, _ = d.Create(ctx, "src", sources.CreateOptions{IfMatch: it.Print})
	w.Write([]byte("cipher"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "src")); fi.Mode().Perm() != 0o600 {
		t.Errorf("in-place mode %v, want the source's 0600", fi.Mode().Perm())
	}
}

func TestLocalSymlinkedDirEscapes(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.Symlink(outside, filepath.Join(root, "sneaky"))
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	_, err := d.Create(context.Background(), "sneaky/x", sources.CreateOptions{})
	if !errors.Is(err, sources.ErrEscapes) {
		t.Fatalf("Create through symlinked dir = %v, want ErrEscapes", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote outside the root: %v", ents)
	}
}

// TestGroupCommitShares proves that concurrent commits share syncs: every
// file is committed, intact, and durable-then-renamed in fewer batches
// than files.
func TestGroupCommitShares(t *testing.T) {
	root := t.TempDir()
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	const n, workers = 400, 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += workers {
				w, err := d.Create(context.Background(), fmt.Sprintf("d%d/f%04d", i%3, i), sources.CreateOptions{})
				if err == nil {
					w.Write(bytes.Repeat([]byte{byte(i)}, 4096))
					err = w.Commit(context.Background())
				}
				if err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		b, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("d%d/f%04d", i%3, i)))
		if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{byte(i)}, 4096)) {
			t.Fatalf("file %d: %v", i, err)
		}
	}
	batches, files := sources.GroupCommitStats(d)
	if files != n || batches >= n {
		t.Fatalf("group commit: %d files in %d batches, want %d files in fewer batches", files, batches, n)
	}
	t.Logf("%d files committed in %d syncs", files, batches)
}

// TestGroupCommitPacesSyncs: files staged one at a time, as a stream of
// signed small files reaches the committer, are gathered into batches
// whose syncs start at least the batch interval apart. The bound holds
// however slow the machine is: a slower machine makes fewer batches.
func TestGroupCommitPacesSyncs(t *testing.T) {
	root := t.TempDir()
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	const n = 60
	start := time.Now()
	stageAndCommit(t, root, d, n, 200*time.Microsecond)
	elapsed := time.Since(start)
	batches, files := sources.GroupCommitStats(d)
	if most := 1 + int(elapsed/sources.BatchInterval); files != n || batches > most {
		t.Fatalf("%d files in %d batches over %v, want %d files in at most %d", files, batches, elapsed, n, most)
	}
	t.Logf("%d files in %d batches over %v", files, batches, elapsed)
}

// stageAndCommit writes files f000..f<n-1> (each holding its number) below
// root from one goroutine with CommitAsync, gap apart, waits for every
// commit and reads every file back.
func stageAndCommit(t *testing.T, root string, d *sources.LocalDestination, n int, gap time.Duration) {
	t.Helper()
	ctx := context.Background()
	var results []<-chan error
	for i := 0; i < n; i++ {
		w, err := d.Create(ctx, fmt.Sprintf("f%03d", i), sources.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(fmt.Sprint(i)))
		results = append(results, w.(sources.AsyncCommitter).CommitAsync(ctx))
		time.Sleep(gap)
	}
	for i, ch := range results {
		if err := <-ch; err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		if b, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("f%03d", i))); err != nil || string(b) != fmt.Sprint(i) {
			t.Fatalf("file %d = %q, %v", i, b, err)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want sources.Location
		bad  bool
	}{
		{in: "-", want: sources.Location{Kind: sources.Stdio, Raw: "-"}},
		{in: "./data/", want: sources.Location{Kind: sources.Local, Raw: "./data/", Path: "data"}},
		{in: "./data/**/*.csv", want: sources.Location{Kind: sources.Local, Raw: "./data/**/*.csv", Path: "data", Glob: "**/*.csv"}},
		{in: "*.csv", want: sources.Location{Kind: sources.Local, Raw: "*.csv", Path: ".", Glob: "*.csv"}},
		{in: "/abs/x", want: sources.Location{Kind: sources.Local, Raw: "/abs/x", Path: "/abs/x"}},
		{in: "s3://bkt", want: sources.Location{Kind: sources.S3, Raw: "s3://bkt", Bucket: "bkt"}},
		{in: "s3://bkt/pre/fix/", want: sources.Location{Kind: sources.S3, Raw: "s3://bkt/pre/fix/", Bucket: "bkt", Key: "pre/fix/"}},
		{in: "s3://bkt/logs/*/x.gz", want: sources.Location{Kind: sources.S3, Raw: "s3://bkt/logs/*/x.gz", Bucket: "bkt", Key: "logs/", Glob: "*/x.gz"}},
		{in: "", bad: true},
		{in: "s3://", bad: true},
		{in: "s3://B!/x", bad: true},
		{in: "gs://b/x", bad: true},
		{in: "./data/[a-", bad: true},
		{in: "./data/[a/]*", bad: true}, // a class never matches "/"
	}
	for _, c := range cases {
		got, err := sources.Parse(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("Parse(%q) = %+v, want error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// TestCommitAsync: one goroutine pipelines commits; every file lands
// intact and the batches are far fewer than the files.
func TestCommitAsync(t *testing.T) {
	root := t.TempDir()
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	const n = 300
	stageAndCommit(t, root, d, n, 0)
	if batches, files := sources.GroupCommitStats(d); files != n || batches >= n {
		t.Fatalf("%d files in %d batches, want %d in fewer", files, batches, n)
	}
}
