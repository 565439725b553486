package sources_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/encjob/encjob/sources"
)

func commitFile(t *testing.T, d sources.Destination, key, data string, o sources.CreateOptions) error {
	t.Helper()
	ctx := context.Background()
	w, err := d.Create(ctx, key, o)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	return w.Commit(ctx)
}

// Provenance answers only for the very file encjob committed, in this run
// and in the next one (the journal), and not for a rewritten or restored
// file.
func TestProvenanceLocal(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	for _, mode := range []sources.SyncMode{sources.SyncGroup, sources.SyncEach, sources.SyncNone} {
		d := sources.NewRunDestination(root, sources.LocalDestOptions{Sync: mode})
		for _, k := range []string{"a", "sub/b", "sub/rewritten", "sub/restored"} {
			if err := commitFile(t, d, k, "new "+k, sources.CreateOptions{Overwrite: sources.OverwriteAlways, SourcePrint: sources.Fingerprint("src-" + k)}); err != nil {
				t.Fatal(err)
			}
			if p, ok, err := d.Provenance(ctx, k); err != nil || !ok || p != sources.Fingerprint("src-"+k) {
				t.Fatalf("mode %d: same run: Provenance(%s) = %q %v %v", mode, k, p, ok, err)
			}
		}
		if _, ok, _ := d.Provenance(ctx, "never-written"); ok {
			t.Fatal("provenance for a key never written")
		}
		sources.EndRun(d)

		// Changes by others: same inode rewritten, and a restored copy
		// with the old mtime (a new inode).
		fi, _ := os.Stat(filepath.Join(root, "sub/restored"))
		os.WriteFile(filepath.Join(root, "sub/rewritten"), []byte("other"), 0o644)
		os.Remove(filepath.Join(root, "sub/restored"))
		os.WriteFile(filepath.Join(root, "sub/restored"), []byte("new sub/restored"), 0o644)
		os.Chtimes(filepath.Join(root, "sub/restored"), fi.ModTime(), fi.ModTime())

		for i := range 2 { // before and after the next run's recovery
			d2 := sources.NewRunDestination(root, sources.LocalDestOptions{Sync: mode})
			if i == 1 {
				if err := commitFile(t, d2, "other", "x", sources.CreateOptions{}); err != nil && !errors.Is(err, sources.ErrConflict) {
					t.Fatal(err)
				}
			}
			for k, want := range map[string]bool{"a": true, "sub/b": true, "sub/rewritten": false, "sub/restored": false} {
				p, ok, err := d2.Provenance(ctx, k)
				if err != nil || ok != want || (ok && p != sources.Fingerprint("src-"+k)) {
					t.Errorf("mode %d, next run (%d): Provenance(%s) = %q %v %v, want %v", mode, i, k, p, ok, err, want)
				}
			}
			sources.EndRun(d2)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, sources.StateDir, "runs")); len(ents) > 2 {
		t.Errorf("journals are not compacted: %d left", len(ents))
	}
}

// Two runs (two processes, two pods on one volume) never write below one
// root at once: the second gets a clear lock error and writes nothing.
func TestLockTwoRuns(t *testing.T) {
	root := t.TempDir()
	d1 := sources.NewRunDestination(root, sources.LocalDestOptions{})
	d2 := sources.NewRunDestination(root, sources.LocalDestOptions{})
	if err := commitFile(t, d1, "x", "one", sources.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := commitFile(t, d2, "y", "two", sources.CreateOptions{})
	var le *sources.LockError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "another encjob run holds the lock on "+root) ||
		!strings.Contains(err.Error(), "pid ") || !strings.Contains(err.Error(), "host ") {
		t.Fatalf("second run: %v, want a LockError naming the root and the holder", err)
	}
	if _, err := os.Stat(filepath.Join(root, "y")); err == nil {
		t.Fatal("the second run wrote")
	}
	sources.EndRun(d1)
	// The same destination's retry gets the lock once the holder is gone.
	defer sources.EndRun(d2)
	if err := commitFile(t, d2, "y", "two", sources.CreateOptions{}); err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
}

// Files named like encjob's temporaries are the user's: listed as items,
// never removed by Cleanup or by a run; the state directory is listed as
// one skipped item.
func TestTempLookalikesAreItems(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{".encjob-tmp-notes.txt", "sub/.encjob-tmp-1-y", ".encjob-tmp-0123456789abcdef0123456789abcdef-1"} {
		write(t, filepath.Join(root, n), "user data")
	}
	d := sources.NewRunDestination(root, sources.LocalDestOptions{})
	if err := commitFile(t, d, "sub/out", "o", sources.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sources.EndRun(d)
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(root, ".encjob-tmp-notes.txt"), old, old)
	if removed, err := sources.Cleanup(context.Background(), root); err != nil || len(removed) != 0 {
		t.Fatalf("Cleanup = %q, %v; want nothing removed", removed, err)
	}
	got := map[string]string{}
	for _, it := range listAll(t, newLocal(t, root, sources.SourceOptions{})) {
		got[it.Key] = it.Skipped
	}
	want := map[string]string{".encjob-state": "encjob state directory", ".encjob-tmp-notes.txt": "",
		".encjob-tmp-0123456789abcdef0123456789abcdef-1": "", "sub/.encjob-tmp-1-y": "", "sub/out": ""}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for k, v := range want {
		if s, ok := got[k]; !ok || s != v {
			t.Fatalf("listed %v, want %v", got, want)
		}
	}
	// A user's directory named like the state directory is ordinary.
	write(t, filepath.Join(root, "u", sources.StateDir, "mine"), "m")
	found := false
	for _, it := range listAll(t, newLocal(t, filepath.Join(root, "u"), sources.SourceOptions{})) {
		found = found || (it.Key == sources.StateDir+"/mine" && it.Skipped == "")
	}
	if !found {
		t.Fatal("a user's .encjob-state directory without the marker was not listed as ordinary")
	}
}

// A directory swapped for a symlink to elsewhere, again and again while a
// run writes below it, never gets a file placed outside the root.
func TestSymlinkSwapMidRun(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	d := sources.NewRunDestination(root, sources.LocalDestOptions{Sync: sources.SyncNone})
	defer sources.EndRun(d)
	if err := commitFile(t, d, "a/first", "x", sources.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a := filepath.Join(root, "a")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.Rename(a, filepath.Join(root, "a.moved"))
			os.Symlink(outside, a)
			time.Sleep(50 * time.Microsecond)
			os.Remove(a)
			os.RemoveAll(a)
			os.Rename(filepath.Join(root, "a.moved"), a)
		}
	}()
	var ok, escaped int
	for i := range 2000 {
		err := commitFile(t, d, "a/f"+strconv.Itoa(i), "data", sources.CreateOptions{})
		switch {
		case err == nil:
			ok++
		case errors.Is(err, sources.ErrEscapes):
			escaped++
		}
	}
	close(stop)
	<-done
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("%d files placed outside the root (first %s)", len(ents), ents[0].Name())
	}
	if escaped == 0 || ok == 0 {
		t.Logf("ok %d, refused %d: the swap did not interleave much", ok, escaped)
	}
}

// Outputs get 0666 &^ umask unless a mode is given; in place keeps the
// replaced file's mode; nothing is wider than the umask while written.
func TestUmaskModes(t *testing.T) {
	defer sources.SetUmaskForTest(sources.SetUmaskForTest(0o022))
	ctx := context.Background()
	for _, c := range []struct {
		umask int
		mode  os.FileMode
		want  os.FileMode
	}{{0o077, 0, 0o600}, {0o022, 0, 0o644}, {0o027, 0, 0o640}, {0o077, 0o640, 0o640}} {
		sources.SetUmaskForTest(c.umask)
		root := t.TempDir()
		d := sources.NewRunDestination(root, sources.LocalDestOptions{})
		if err := commitFile(t, d, "out", "plain", sources.CreateOptions{Mode: c.mode}); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(root, "out")); fi.Mode().Perm() != c.want {
			t.Errorf("umask %03o, mode %v: output %v, want %v", c.umask, c.mode, fi.Mode().Perm(), c.want)
		}
		write(t, filepath.Join(root, "inplace"), "old")
		os.Chmod(filepath.Join(root, "inplace"), 0o604)
		it, _ := d.Stat(ctx, "inplace")
		if err := commitFile(t, d, "inplace", "new", sources.CreateOptions{IfMatch: it.Print}); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(root, "inplace")); fi.Mode().Perm() != 0o604 {
			t.Errorf("umask %03o: in place %v, want the replaced file's 0604", c.umask, fi.Mode().Perm())
		}
		sources.EndRun(d)
	}
}

// An external writer that replaces (rename over) or rewrites the source
// after encjob's last check, right before the exchange, keeps its
// content: the swap is undone and the item conflicts.
func TestInPlaceExchangeRace(t *testing.T) {
	ctx := context.Background()
	for name, external := range map[string]func(p string){
		"renamed over": func(p string) {
			os.WriteFile(p+".x", []byte("external"), 0o644)
			os.Rename(p+".x", p)
		},
		"rewritten": func(p string) {
			time.Sleep(10 * time.Millisecond) // a later mtime tick
			os.WriteFile(p, []byte("external"), 0o644)
		},
	} {
		root := t.TempDir()
		p := filepath.Join(root, "f")
		write(t, p, "original")
		d := sources.NewExchangeHookDestination(root, sources.LocalDestOptions{}, func() { external(p) })
		it, _ := d.Stat(ctx, "f")
		err := commitFile(t, d, "f", "encjob", sources.CreateOptions{IfMatch: it.Print})
		var ce *sources.ConflictError
		if !errors.As(err, &ce) || ce.Reason != sources.ConflictChanged {
			t.Errorf("%s: commit = %v, want ConflictChanged", name, err)
		}
		if b, _ := os.ReadFile(p); string(b) != "external" {
			t.Errorf("%s: file holds %q, want the external writer's content", name, b)
		}
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.Name() != "f" && e.Name() != sources.StateDir {
				t.Errorf("%s: left %s", name, e.Name())
			}
		}
		sources.EndRun(d)
	}
}

// A root removed and made again between two runs of one process is
// written afresh, not through the old directory's descriptor.
func TestRootReplacedBetweenRuns(t *testing.T) {
	root := filepath.Join(t.TempDir(), "out")
	d := sources.NewLocalDestination(root, sources.LocalDestOptions{})
	if err := commitFile(t, d, "a", "1", sources.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(root)
	d = sources.NewLocalDestination(root, sources.LocalDestOptions{})
	if err := commitFile(t, d, "a", "2", sources.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a")); err != nil || string(b) != "2" {
		t.Fatalf("second run's output: %q %v", b, err)
	}
}

// No key (an S3 key mapped to a local file, say) can write into the state
// directory.
func TestKeyIntoStateDirRefused(t *testing.T) {
	root := t.TempDir()
	d := sources.NewRunDestination(root, sources.LocalDestOptions{})
	defer sources.EndRun(d)
	if err := commitFile(t, d, "a", "1", sources.CreateOptions{SourcePrint: "p"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{".encjob-state", ".encjob-state/provenance", ".encjob-state/runs/x.journal"} {
		if err := commitFile(t, d, k, "forged", sources.CreateOptions{Overwrite: sources.OverwriteAlways}); !errors.Is(err, sources.ErrEscapes) {
			t.Errorf("Create(%s) = %v, want ErrEscapes", k, err)
		}
	}
}
