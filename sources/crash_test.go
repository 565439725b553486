package sources

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// crashItem is one output of the crash scenario.
type crashItem struct {
	key, data string
	inPlace   bool
	overwrite Overwrite
	batch     int
}

var crashItems = []crashItem{
	{key: "new.txt", data: "NEW new.txt", batch: 1},
	{key: "old.txt", data: "NEW old.txt", overwrite: OverwriteAlways, batch: 1},
	{key: "sub/inplace.txt", data: "NEW inplace", inPlace: true, batch: 1},
	{key: "sub/deep/n.txt", data: "NEW deep", batch: 2},
	{key: "sub/inplace2.txt", data: "NEW inplace2", inPlace: true, batch: 2},
}

// crashInitial is the tree before the run: the files replaced, plus user
// files that must survive untouched (one named like a temporary).
var crashInitial = map[string]string{
	"old.txt":               "OLD old.txt",
	"sub/inplace.txt":       "OLD inplace",
	"sub/inplace2.txt":      "OLD inplace2",
	"keep.txt":              "user",
	".encjob-tmp-notes.txt": "user notes",
}

func printFor(key string) Fingerprint { return Fingerprint("src:" + key) }

// runCrashScenario is one run: the planner's Provenance look-ups, then two
// group-commit batches, through the group committer's pipeline (the first
// batch's links made durable by the second's syncfs) under SyncGroup.
// Only items not yet done (per done) are written. Errors are returned,
// not fatal: after the crash point every call fails. reported, when not
// nil, receives the keys whose commit was reported done.
func runCrashScenario(fsys *crashFS, mode SyncMode, done func(crashItem) bool, reported map[string]bool) error {
	ctx := context.Background()
	d := newLocalDest(newRootState("/root", fsys), LocalDestOptions{Sync: mode})
	for _, it := range crashItems {
		if _, _, err := d.Provenance(ctx, it.key); err != nil {
			return err
		}
	}
	var held *placedBatch
	var reqs []*commitReq
	for batch := 1; batch <= 2; batch++ {
		var ws []*localWriter
		for _, it := range crashItems {
			if it.batch != batch || done(it) {
				continue
			}
			o := CreateOptions{Overwrite: it.overwrite, SourcePrint: printFor(it.key)}
			if it.inPlace {
				cur, err := d.Stat(ctx, it.key)
				if err != nil {
					return err
				}
				o.IfMatch = cur.Print
			}
			w, err := d.Create(ctx, it.key, o)
			if err != nil {
				return err
			}
			lw := w.(*localWriter)
			if _, err := lw.Write([]byte(it.data)); err != nil {
				lw.Abort()
				return err
			}
			if err := lw.stage(ctx); err != nil {
				return err
			}
			ws = append(ws, lw)
		}
		if len(ws) == 0 {
			continue
		}
		if mode == SyncEach { // one file at a time, as Commit does
			for _, w := range ws {
				if err := d.commitBatch([]*localWriter{w})[0]; err != nil {
					return err
				}
				if reported != nil {
					reported[w.key] = true
				}
			}
			continue
		}
		var batchReqs []*commitReq
		for _, w := range ws {
			batchReqs = append(batchReqs, &commitReq{w: w, res: make(chan error, 1)})
		}
		held = d.gc.commitNext(held, batchReqs)
		reqs = append(reqs, batchReqs...)
	}
	d.gc.commitNext(held, nil)
	var errs []error
	for _, r := range reqs {
		err := <-r.res
		if err == nil && reported != nil {
			reported[r.w.key] = true
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func newCrashTree(noTmpfile bool) *crashFS {
	f := newCrashFS()
	f.noTmpfile = noTmpfile
	for k, v := range crashInitial {
		f.put(k, v, 0o644)
	}
	return f
}

// checkRecovered runs the next run's recovery on a crash image and checks
// every item is fully old or fully new, new ones proven encjob's by
// Provenance, old ones not, user files untouched and nothing stray.
func checkRecovered(t *testing.T, where string, g *crashFS, external string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	st := newRootState("/root", g)
	if err := st.lock(); err != nil {
		t.Fatalf("%s: recovery: %v", where, err)
	}
	d := newLocalDest(st, LocalDestOptions{})
	files := g.files()
	isNew := map[string]bool{}
	known := map[string]bool{}
	for _, it := range crashItems {
		known[it.key] = true
		got, ok := files[it.key]
		old, hadOld := crashInitial[it.key]
		p, proven, err := d.Provenance(ctx, it.key)
		switch {
		case err != nil:
			t.Fatalf("%s: Provenance(%s): %v", where, it.key, err)
		case it.key == external:
			// Another writer replaced it right before encjob's exchange:
			// their content must win, whatever the crash point.
			if got != "EXTERNAL" || proven {
				t.Fatalf("%s: %s = %q (proven %v), want the external writer's content", where, it.key, got, proven)
			}
		case ok && got == it.data:
			isNew[it.key] = true
			if !proven || p != printFor(it.key) {
				t.Fatalf("%s: %s holds the new content but Provenance = %q %v: the next run would call it a conflict", where, it.key, p, proven)
			}
		case ok && hadOld && got == old, !ok && !hadOld:
			if proven {
				t.Fatalf("%s: %s is old but Provenance vouches for it", where, it.key)
			}
		default:
			t.Fatalf("%s: %s is neither old nor new: present %v, %q", where, it.key, ok, got)
		}
	}
	for k, v := range crashInitial {
		if !known[k] && files[k] != v {
			t.Fatalf("%s: user file %s = %q, want %q", where, k, files[k], v)
		}
	}
	for p := range files {
		if !known[p] && crashInitial[p] == "" && !strings.HasPrefix(p, StateDir+"/") {
			t.Fatalf("%s: stray file %s left after recovery (tree %v)", where, p, files)
		}
	}
	st.closeAll()
	return isNew
}

// TestCrashConsistency runs the commit protocol (new, overwrite and
// in-place outputs, in two group-commit batches) over the recording file
// system, then for every crash point - after each mkdir, create, write,
// fchmod, fsync, syncfs, link, rename, exchange and unlink - rebuilds the
// disk as a reboot would show it (unsynced data lost; unsynced directory
// entries lost, or all kept), runs the next run's recovery and checks each
// item is fully old or fully new, nothing lost, nothing stray, and that
// the rerun then completes every item.
func TestCrashConsistency(t *testing.T) {
	for _, c := range []struct {
		noTmpfile bool
		race      string
		mode      SyncMode
	}{{false, "", SyncGroup}, {true, "", SyncGroup}, {false, "inplace.txt", SyncGroup}, {true, "inplace.txt", SyncGroup},
		{false, "", SyncEach}, {true, "", SyncEach}, {false, "inplace.txt", SyncEach}} {
		name := "O_TMPFILE " + map[bool]string{true: "off", false: "on"}[c.noTmpfile] +
			map[SyncMode]string{SyncGroup: ", group commit", SyncEach: ", fsync each"}[c.mode]
		if c.race != "" {
			name += ", external writer replaces sub/" + c.race + " before the exchange"
		}
		tree := func() *crashFS {
			f := newCrashTree(c.noTmpfile)
			f.raceName = c.race
			return f
		}
		full := tree()
		err := runCrashScenario(full, c.mode, func(crashItem) bool { return false }, nil)
		if c.race == "" && err != nil {
			t.Fatalf("%s: crash-free run: %v", name, err)
		}
		if c.race != "" && !errors.Is(err, ErrConflict) {
			t.Fatalf("%s: crash-free run: %v, want a conflict", name, err)
		}
		external := func(f *crashFS) string {
			if f.raced {
				return "sub/" + c.race
			}
			return ""
		}
		n := len(full.ops)
		checkRecovered(t, name+", no crash", full.image(false), external(full))
		points := 0
		for k := 0; k <= n; k++ {
			f := tree()
			f.crashAt = k
			reported := map[string]bool{}
			runCrashScenario(f, c.mode, func(crashItem) bool { return false }, reported)
			last := "start"
			if k > 0 {
				last = f.ops[k-1]
			}
			for _, eager := range []bool{false, true} {
				where := name + ", crash after op " + itoa(k) + " (" + last + "), entries " + map[bool]string{true: "eager", false: "as synced"}[eager]
				g := f.image(eager)
				isNew := checkRecovered(t, where, g, external(f))
				for key := range reported {
					if !isNew[key] {
						t.Fatalf("%s: %s was reported committed but the crash image holds its old content", where, key)
					}
				}
				// The rerun writes what is not done (the externally
				// written file included: it is a new version) and ends
				// with every item new.
				if err := runCrashScenario(g, c.mode, func(it crashItem) bool { return isNew[it.key] }, nil); err != nil {
					t.Fatalf("%s: rerun: %v", where, err)
				}
				after := checkRecovered(t, where+", after the rerun", g.image(false), "")
				for _, it := range crashItems {
					if !after[it.key] {
						t.Fatalf("%s: after the rerun %s is not new", where, it.key)
					}
				}
				points++
			}
		}
		t.Logf("%s: %d recorded operations, %d crash images checked", name, n, points)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// Where a directory cannot be flocked (NFS), the lock falls back to the
// state directory's lock file and still excludes a second run.
func TestLockFallbackNFS(t *testing.T) {
	f := newCrashTree(false)
	f.nfsFlock = true
	a, b := newRootState("/root", f), newRootState("/root", f)
	if err := a.lock(); err != nil {
		t.Fatal(err)
	}
	var le *LockError
	if err := b.lock(); !errors.As(err, &le) {
		t.Fatalf("second run: %v, want a LockError", err)
	}
	a.closeAll()
	if err := newRootState("/root", f).lock(); err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
}
