package sources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// SyncMode says how a LocalDestination makes outputs durable.
type SyncMode int

const (
	// SyncGroup (the default): group commit, one syncfs(2) per batch of
	// concurrent commits, then one fsync per affected directory.
	SyncGroup SyncMode = iota
	// SyncEach: fsync the file and the journal, rename, fsync the
	// directory, per file.
	SyncEach
	// SyncNone: rename without syncing (tests, benchmarks, tmpfs).
	SyncNone
)

// LocalDestOptions tune a LocalDestination.
type LocalDestOptions struct {
	Sync SyncMode
}

// LocalDestination writes files below a root directory (created on first
// use). Keys are slash-separated paths below the root. Every directory,
// file and rename below the root goes through descriptors opened from the
// root's one descriptor, one component at a time and never following a
// symlink, so a key that would leave the root, or a directory swapped for
// a symlink at any moment of the run, fails with ErrEscapes instead of
// placing a file elsewhere.
//
// The first Create takes the root's lock (see StateDir), so one run at a
// time writes below a root; a second run's Create fails with *LockError.
type LocalDestination struct {
	root string
	opt  LocalDestOptions
	st   *rootState
	gc   groupCommitter
	dirs *dirCache
}

// NewLocalDestination returns a destination rooted at root. LocalDestinations
// of one process on one root share the root's lock, journal and provenance.
func NewLocalDestination(root string, o LocalDestOptions) *LocalDestination {
	if o.Sync == SyncGroup {
		reserveFDTable()
	}
	return newLocalDest(stateFor(filepath.Clean(root), unixOps{}), o)
}

func newLocalDest(st *rootState, o LocalDestOptions) *LocalDestination {
	d := &LocalDestination{root: filepath.Clean(st.root), opt: o, st: st, dirs: newDirCache(st.ops)}
	d.gc.d = d
	runtime.AddCleanup(d, func(c *dirCache) { c.closeAll() }, d.dirs)
	return d
}

func (d *LocalDestination) String() string { return d.root }

// Path maps a key to its file name, or fails with *EscapeError. It is for
// messages; the destination itself never opens a path.
func (d *LocalDestination) Path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Stat returns the item at key (ErrNotFound if missing).
func (d *LocalDestination) Stat(ctx context.Context, key string) (Item, error) {
	p, err := d.Path(key)
	if err != nil {
		return Item{}, err
	}
	d.st.mu.Lock()
	err = d.st.openRootLocked(false)
	var st fileStat
	if err == nil {
		st, err = d.st.statKeyLocked(key)
	}
	d.st.mu.Unlock()
	if errors.Is(err, unix.ENOENT) || errors.Is(err, ErrNotFound) {
		return Item{}, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return Item{}, fmt.Errorf("stat %s: %w", p, err)
	}
	it := Item{Key: key}
	fi := statInfo{name: baseKey(key), st: st}
	if !st.isReg() {
		it.Skipped = skipReason(fi.Mode())
		return it, nil
	}
	fillLocal(&it, fi)
	return it, nil
}

// Provenance implements ProvenanceReader: the SourcePrint recorded when
// encjob committed the file now at key, provided it is still that very
// file (same device, inode, size and mtime).
func (d *LocalDestination) Provenance(ctx context.Context, key string) (Fingerprint, bool, error) {
	if err := CheckKey(key); err != nil {
		return "", false, err
	}
	p, ok, err := d.st.provenance(key)
	if err != nil {
		return "", false, fmt.Errorf("destination %s: provenance of %s: %w", d.root, key, err)
	}
	return p, ok && p != "", nil
}

// Create starts an unnamed file (O_TMPFILE) in the key's directory; the
// name appears only at commit. Where the file system has no O_TMPFILE, a
// temporary ".encjob-tmp-<run id>-<n>" is created instead, its directory
// first recorded in the run's journal so the next run can prove it ours.
func (d *LocalDestination) Create(ctx context.Context, key string, o CreateOptions) (Writer, error) {
	final, err := d.Path(key)
	if err != nil {
		return nil, err
	}
	if key == StateDir || strings.HasPrefix(key, StateDir+"/") {
		// An S3 key ".encjob-state/provenance" must not become our journal.
		return nil, &EscapeError{Key: key, Reason: "inside encjob's state directory " + StateDir}
	}
	if err := d.st.lock(); err != nil {
		return nil, err
	}
	dk, name := dirKey(key), baseKey(key)
	var created []int
	de, err := d.dirs.get(d.st.rootFD, dk, true, &created) // rootFD is fixed once locked
	if err != nil {
		for _, fd := range created {
			d.st.ops.close(fd)
		}
		var ee *EscapeError
		if errors.As(err, &ee) {
			ee.Key = key
			return nil, ee
		}
		return nil, fmt.Errorf("create directory for %s: %w", final, err)
	}
	w := &localWriter{d: d, key: key, final: final, name: name, dk: dk, de: de, dir: de.fd, created: created, fd: -1, opt: o}
	fail := func(err error) (Writer, error) {
		w.release()
		return nil, err
	}
	ops := d.st.ops
	// A new output (never overwriting) is not looked up here: its commit
	// names it with link(2) or rename(RENAME_NOREPLACE), which fail with
	// EEXIST on any entry at the name, of any type, atomically (place then
	// says what the entry is). Looking the missing name up had the kernel
	// take the directory's lock shared for a slow lookup, against the
	// commit's links holding it exclusive: workers slept in lstat and the
	// committer in linkat (sched_switch, 4 KiB files).
	cur, statErr := fileStat{}, error(unix.ENOENT)
	if o.IfMatch != "" || o.Overwrite != OverwriteNever {
		cur, statErr = ops.lstat(w.dir, name)
	}
	switch {
	case o.IfMatch != "":
		if err := checkStat(key, name, cur, statErr, o.IfMatch); err != nil {
			return fail(err)
		}
		w.oldSt = cur
	case statErr == nil && cur.isDir():
		return fail(fmt.Errorf("create %s: is a directory", final))
	case statErr == nil && !cur.isReg():
		return fail(notFileConflict(key, cur))
	case statErr == nil && o.Overwrite == OverwriteNever:
		return fail(&ConflictError{Key: key, Reason: ConflictExists})
	}
	w.mode = uint32(o.Mode.Perm())
	if w.mode == 0 && o.IfMatch != "" {
		w.mode = cur.mode & 0o777
	}
	if w.mode == 0 {
		w.mode = 0o666 &^ processUmask()
	}
	// An unnamed file is invisible until linked, so it can be created
	// with its final mode, which saves the fchmod at commit (stage
	// checks and falls back to it).
	w.fd, err = ops.openTmp(w.dir, w.mode)
	if errors.Is(err, errNoTmpfile) {
		if err = d.st.noteTmpDir(dk); err == nil {
			w.tmp = d.st.tmpName()
			w.fd, err = ops.createExcl(w.dir, w.tmp, 0o600)
			if err != nil {
				w.tmp = ""
			}
		}
	} else {
		w.unnamed = true
	}
	if err != nil {
		w.fd = -1
		return fail(fmt.Errorf("create temporary file for %s: %w", final, err))
	}
	return w, nil
}

// notFileConflict is the refusal to replace a non-regular file at key.
func notFileConflict(key string, cur fileStat) error {
	return &ConflictError{Key: key, Reason: ConflictNotFile, Got: Fingerprint(strings.TrimSuffix(skipReason(statInfo{name: baseKey(key), st: cur}.Mode()), " not followed"))}
}

// checkStat fails with ConflictChanged unless cur (lstat of the name, or
// statErr) is a regular file with fingerprint want.
func checkStat(key, name string, cur fileStat, statErr error, want Fingerprint) error {
	if statErr != nil {
		if errors.Is(statErr, unix.ENOENT) {
			return &ConflictError{Key: key, Reason: ConflictChanged, Want: want}
		}
		return fmt.Errorf("stat %s: %w", key, statErr)
	}
	if got := LocalFingerprint(statInfo{name: name, st: cur}); got != want || !cur.isReg() {
		return &ConflictError{Key: key, Reason: ConflictChanged, Want: want, Got: got}
	}
	return nil
}

type localWriter struct {
	d       *LocalDestination
	key     string
	final   string // for messages
	name    string
	dk      string
	de      *dirEntry // the key's directory, held until release
	dir     int       // its descriptor
	created []int     // parents of directories made for this output
	fd      int
	unnamed bool   // fd is an O_TMPFILE
	tmp     string // current temporary name in dir, "" for none
	mode    uint32
	opt     CreateOptions
	oldSt   fileStat // in place: the file being replaced, at Create
	newSt   fileStat
	rec     record
	done    bool
	err     error
	// written and started: bytes written, and how many of them the disk
	// was asked to write back already (see Write and backgroundWriteback).
	written, started int64
	wb               *backgroundWriteback
	dio              *directOut // writing with O_DIRECT (directio.go), or nil
	dioOff           bool       // no (more) switch to O_DIRECT for this output
}

func (w *localWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: writer already committed or aborted", w.final)
	}
	if w.dio == nil && !w.dioOff && w.written >= directFrom {
		// O_DIRECT writes start at an aligned offset (see directio.go).
		if r := int(w.written % directAlign); r != 0 && len(p) > directAlign-r {
			n, err := w.writeBuffered(p[:directAlign-r])
			if err != nil {
				return n, err
			}
			m, err := w.Write(p[n:])
			return n + m, err
		}
	}
	if w.maybeDirect() {
		return w.writeDirect(p)
	}
	return w.writeBuffered(p)
}

func (w *localWriter) writeBuffered(p []byte) (int, error) {
	n, err := w.d.st.ops.write(w.fd, p)
	err = w.fail(err)
	w.written += int64(n)
	if w.written-w.started >= writebackChunk && w.d.opt.Sync != SyncNone {
		if w.wb == nil {
			w.wb = startWriteback(w.d.st.ops, w.fd)
		}
		w.wb.advance(w.written)
		w.started = w.written
	}
	return n, err
}

// release removes the temporary name (if any) and closes every descriptor.
func (w *localWriter) release() {
	ops := w.d.st.ops
	w.dropDirect()
	if w.wb != nil {
		w.wb.stop() // before the descriptor is closed (and its number reused); aborting, its error is moot
		w.wb = nil
	}
	if w.tmp != "" {
		ops.unlink(w.dir, w.tmp)
		w.tmp = ""
	}
	if w.fd >= 0 {
		ops.close(w.fd)
		w.fd = -1
	}
	w.closeDirs()
}

func (w *localWriter) closeDirs() {
	ops := w.d.st.ops
	for _, fd := range w.created {
		ops.close(fd)
	}
	w.created = nil
	if w.de != nil {
		w.d.dirs.put(w.de)
		w.de, w.dir = nil, -1
	}
}

func (w *localWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.release()
	return nil
}

func (w *localWriter) Commit(ctx context.Context) error {
	if err := w.stage(ctx); err != nil {
		return err
	}
	if w.d.opt.Sync == SyncGroup {
		return w.d.gc.commit(w)
	}
	return w.d.commitBatch([]*localWriter{w})[0]
}

// CommitAsync stages the output and returns at once; the channel yields
// Commit's result when the file is durable under its final name (or the
// commit failed). Under SyncGroup a single caller can thus keep many
// files in one sync batch. It implements AsyncCommitter.
func (w *localWriter) CommitAsync(ctx context.Context) <-chan error {
	err := w.stage(ctx)
	if err == nil && w.d.opt.Sync == SyncGroup {
		return w.d.gc.submit(w)
	}
	if err == nil {
		err = w.d.commitBatch([]*localWriter{w})[0]
	}
	ch := make(chan error, 1)
	ch <- err
	return ch
}

// stage gives the file its final mode and records its identity; the
// descriptor stays open for the link at commit.
func (w *localWriter) stage(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("commit %s: writer already committed or aborted", w.final)
	}
	w.endDirect() // its error is w.err
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return err
	}
	if w.wb != nil {
		// Its data syncs' errors are the commit's (see backgroundWriteback).
		err := w.wb.stop()
		w.wb = nil
		if err != nil {
			w.Abort()
			return fmt.Errorf("commit %s: sync: %w", w.final, err)
		}
	}
	ops := w.d.st.ops
	var err error
	w.newSt, err = ops.fstat(w.fd)
	if err == nil && w.newSt.mode&0o7777 != w.mode {
		// A named temporary (created 0600), or a umask or default ACL
		// that took bits off the mode given at creation.
		if err = ops.fchmod(w.fd, w.mode); err == nil {
			w.newSt, err = ops.fstat(w.fd)
		}
	}
	if err != nil {
		w.Abort()
		return fmt.Errorf("commit %s: %w", w.final, err)
	}
	w.done = true
	return nil
}

// commitBatch is the commit protocol for staged writers:
//
//  1. append one journal record per output (its key, the temporary name
//     it will pass through, the new inode, the source fingerprint, the
//     replaced inode);
//  2. make the file contents and the journal durable: one syncfs of the
//     file system under SyncGroup (fsync per file and of the journal
//     where syncfs is unavailable, and under SyncEach);
//  3. place each file: link the unnamed file to its final name (no
//     overwrite), or link it to a temporary name and rename that over the
//     final name (overwrite), or exchange it with the final name and check
//     what was swapped out (in place);
//  4. make the links durable: fsync each affected directory - or, in the
//     group committer, let the next batch's syncfs do it (step 2 of that
//     batch makes everything on the file system durable, these links
//     included), so that a stream of batches pays one sync each, not two.
//
// A file is reported committed only after step 4. A crash at any point
// leaves each key with its complete old or complete new content; the next
// run's recovery (rootState.recoverLocked) removes temporary names the
// journal proves ours and can tell from the journal whether the file at
// key is encjob's (Provenance).
func (d *LocalDestination) commitBatch(batch []*localWriter) []error {
	errs, _ := d.syncAndPlace(batch)
	d.settle(batch, errs, d.syncDirs(batch, errs))
	return errs
}

// syncAndPlace runs steps 1 to 3 of commitBatch. whole reports that step
// 2 was a syncfs of the file system: a later syncfs then also makes this
// batch's links durable. A writer whose step failed is released, its
// error in errs.
func (d *LocalDestination) syncAndPlace(batch []*localWriter) (errs []error, whole bool) {
	st := d.st
	errs = make([]error, len(batch))
	recs := make([]record, len(batch))
	for i, w := range batch {
		if w.unnamed && (w.opt.IfMatch != "" || w.opt.Overwrite == OverwriteAlways) {
			w.rec.tmp = st.tmpName()
		} else {
			w.rec.tmp = w.tmp
		}
		ns := w.newSt.ident()
		ns.ctimeNs = 0 // the commit changes it; recorded after
		w.rec = record{kind: 'P', key: w.key, tmp: w.rec.tmp, newSt: ns, oldSt: w.oldSt.ident(),
			print: w.opt.SourcePrint, inPlac: w.opt.IfMatch != ""}
		recs[i] = w.rec
	}
	err := st.ensureJournal()
	if err == nil {
		err = st.appendRecords(recs)
	}
	if err == nil {
		whole, err = d.syncBatch(batch)
	}
	if err != nil {
		for i, w := range batch {
			w.release()
			errs[i] = fmt.Errorf("commit %s: %w", w.final, err)
		}
		return errs, false
	}
	for i, w := range batch {
		if errs[i] = w.place(); errs[i] != nil {
			w.release()
		}
	}
	return errs, whole
}

// syncDirs is step 4 of commitBatch: one fsync per directory a file of
// the batch was placed in (errs[i] == nil). Writers of one directory
// share its cache entry; a directory replaced meanwhile is a new entry,
// synced too.
func (d *LocalDestination) syncDirs(batch []*localWriter, errs []error) error {
	if d.opt.Sync == SyncNone {
		return nil
	}
	dirs := map[*dirEntry]int{}
	rootSynced := false
	for i, w := range batch {
		switch {
		case errs[i] != nil:
		case w.de.dk == "":
			if !rootSynced {
				rootSynced = true
				dirs[w.de] = i
			}
		default:
			if _, ok := dirs[w.de]; !ok {
				dirs[w.de] = i
			}
		}
	}
	for _, i := range dirs {
		if err := d.st.ops.fsync(batch[i].dir); err != nil {
			return fmt.Errorf("sync directory of %s: %w", batch[i].final, err)
		}
	}
	return nil
}

// settle ends a batch once its links are durable, or durErr says why they
// may not be: each placed file's journal record of the commit (with its
// final ctime) and its provenance, then every descriptor released.
func (d *LocalDestination) settle(batch []*localWriter, errs []error, durErr error) {
	st, ops := d.st, d.st.ops
	var done []record
	for i, w := range batch {
		if errs[i] == nil && durErr != nil {
			errs[i] = fmt.Errorf("commit %s: placed but not durable: %w", w.final, durErr)
		}
		if errs[i] == nil {
			if now, err := ops.fstat(w.fd); err == nil && now.sameVersion(w.newSt) {
				w.rec.newSt.ctimeNs = now.ctimeNs
				w.rec.tmp, w.rec.oldSt, w.rec.inPlac = "", ident{}, false
				done = append(done, w.rec)
			}
			st.remember(w.rec)
		}
		w.release()
	}
	st.appendRecords(done) // best effort: without it the check is weaker, not wrong
}

// syncBatch makes file contents, new directories and the journal durable
// before anything is placed; whole reports it did so with one syncfs of
// the file system.
func (d *LocalDestination) syncBatch(batch []*localWriter) (whole bool, err error) {
	st, ops := d.st, d.st.ops
	switch d.opt.Sync {
	case SyncNone:
		return false, nil
	case SyncGroup:
		if !d.gc.noSyncfs {
			err := ops.syncfs(st.rootFD)
			if err == nil {
				return true, nil
			}
			if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
				return false, fmt.Errorf("syncfs %s: %w", d.root, err)
			}
			d.gc.noSyncfs = true
		}
	}
	// Concurrent fsyncs share the file system's journal commits.
	errs := make(chan error, len(batch))
	sem := make(chan struct{}, 32)
	for _, w := range batch {
		sem <- struct{}{}
		go func() {
			err := ops.fsync(w.fd)
			for _, p := range w.created {
				if err == nil {
					err = ops.fsync(p)
				}
			}
			errs <- err
			<-sem
		}()
	}
	var first error
	for range batch {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return false, first
	}
	return false, st.syncJournal()
}

// place puts one synced file under its final name.
func (w *localWriter) place() error {
	ops := w.d.st.ops
	if w.unnamed && w.rec.tmp != "" {
		if err := ops.link(w.fd, w.dir, w.rec.tmp); err != nil {
			return fmt.Errorf("commit %s: %w", w.final, err)
		}
		w.tmp = w.rec.tmp
	}
	var err error
	switch {
	case w.opt.IfMatch != "":
		return w.exchange()
	case w.opt.Overwrite == OverwriteAlways:
		if cur, serr := ops.lstat(w.dir, w.name); serr == nil && !cur.isReg() {
			return notFileConflict(w.key, cur) // appeared since Create
		}
		err = ops.rename(w.dir, w.tmp, w.dir, w.name, 0)
	case w.unnamed:
		err = ops.link(w.fd, w.dir, w.name)
	default:
		err = renameNoReplace(ops, w.dir, w.tmp, w.name)
	}
	if errors.Is(err, unix.EEXIST) {
		return w.existing()
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.final, err)
	}
	w.tmp = ""
	return nil
}

// existing is the refusal of a commit that found an entry at the final
// name: the error Create gives for that entry.
func (w *localWriter) existing() error {
	cur, err := w.d.st.ops.lstat(w.dir, w.name)
	switch {
	case err == nil && cur.isDir():
		return fmt.Errorf("create %s: is a directory", w.final)
	case err == nil && !cur.isReg():
		return notFileConflict(w.key, cur)
	}
	return &ConflictError{Key: w.key, Reason: ConflictExists}
}

// exchange is the in-place compare-and-swap: check the final name is still
// the listed file, exchange it atomically with the new file
// (renameat2 RENAME_EXCHANGE), then check that what was swapped out is
// that same inode unmodified; if not, an external writer replaced or
// changed it in between: exchange back and report ConflictChanged, so
// their content is never overwritten.
func (w *localWriter) exchange() error {
	ops := w.d.st.ops
	cur, statErr := ops.lstat(w.dir, w.name)
	if err := checkStat(w.key, w.name, cur, statErr, w.opt.IfMatch); err != nil {
		return err
	}
	err := ops.rename(w.dir, w.tmp, w.dir, w.name, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		// No RENAME_EXCHANGE here (some network and FUSE file
		// systems): plain rename right after the check; a writer landing
		// in that window of microseconds is not detected.
		if err = ops.rename(w.dir, w.tmp, w.dir, w.name, 0); err != nil {
			return fmt.Errorf("commit %s: %w", w.final, err)
		}
		w.tmp = ""
		return nil
	}
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.final, err)
	}
	out, err := ops.lstat(w.dir, w.tmp)
	if err == nil && out.isReg() && out.sameVersion(cur) {
		ops.unlink(w.dir, w.tmp) // the replaced file
		w.tmp = ""
		return nil
	}
	// Swap back; the new file returns to the temporary name and is
	// removed with it by release.
	if berr := ops.rename(w.dir, w.tmp, w.dir, w.name, unix.RENAME_EXCHANGE); berr != nil {
		return fmt.Errorf("commit %s: changed while being replaced, and restoring it failed (its content is in %s): %w",
			w.final, w.tmp, berr)
	}
	got := Fingerprint("")
	if err == nil {
		got = LocalFingerprint(statInfo{name: w.name, st: out})
	}
	return &ConflictError{Key: w.key, Reason: ConflictChanged, Want: w.opt.IfMatch, Got: got}
}

// renameNoReplace renames unless newname exists (EEXIST): with
// renameat2(RENAME_NOREPLACE), or link+unlink where the file system
// lacks it.
func renameNoReplace(ops fileOps, dir int, oldname, newname string) error {
	err := ops.rename(dir, oldname, dir, newname, unix.RENAME_NOREPLACE)
	if err == nil || errors.Is(err, unix.EEXIST) {
		return err
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	fd, err := ops.openFile(dir, oldname, unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer ops.close(fd)
	if err := ops.link(fd, dir, newname); err != nil {
		return err
	}
	return ops.unlink(dir, oldname)
}

// Cleanup prepares root for a run: it takes the root's lock (as the first
// Create would) and finishes or undoes whatever a crashed earlier run left
// half-done, removing only temporary files that run's journal proves it
// made. It never looks outside root and never touches a file merely
// named like a temporary. It returns what it removed or restored. A root
// without a state directory (no earlier run) is left untouched.
func Cleanup(ctx context.Context, root string) ([]string, error) {
	st := stateFor(filepath.Clean(root), unixOps{})
	st.mu.Lock()
	err := st.openRootLocked(false)
	if err == nil && st.stateFD < 0 {
		// Nothing to clean without a state directory: do not lock.
		if _, lerr := st.ops.lstat(st.rootFD, StateDir); lerr != nil {
			err = ErrNotFound
		}
	}
	st.mu.Unlock()
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := st.lock(); err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.recovery...), nil
}

var (
	_ Destination      = (*LocalDestination)(nil)
	_ ProvenanceReader = (*LocalDestination)(nil)
	_ AsyncCommitter   = (*localWriter)(nil)
	_ fs.FileInfo      = statInfo{}
)
