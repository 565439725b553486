package sources

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// StateDir is the one directory encjob keeps inside a local output root
// (and an in-place tree root):
//
//	.encjob-state/ENCJOB-STATE          marker: the directory is encjob's
//	.encjob-state/lock                  who holds the lock (flock(2) on the root directory)
//	.encjob-state/runs/<start>-<id>.journal   one run's commit records
//	.encjob-state/provenance            records of earlier runs, compacted
//
// A local Source reports a directory of this name holding the marker as
// one skipped item ("encjob state directory"); without the marker it is an
// ordinary directory.
const StateDir = ".encjob-state"

const (
	stateMarker    = "ENCJOB-STATE"
	markerText     = "This directory belongs to encjob: the lock of the run writing here, run journals and the provenance of outputs. Do not edit; delete it only when no encjob run uses this directory.\n"
	stateSkip      = "encjob state directory"
	lockName       = "lock"
	runsName       = "runs"
	provName       = "provenance"
	provTmpName    = "provenance.new"
	journalSuffix  = ".journal"
	recordVersion  = "v1"
	maxJournalSize = 1 << 30 // refuse to load absurd journals rather than exhaust memory
)

// LockError is returned when another encjob run (any process, any host or
// pod sharing the volume: flock(2) knows no PID namespaces) holds the lock
// of an output root or in-place tree.
type LockError struct {
	Root   string
	Holder string // "pid 12, host h, run 9f…, since …" as the holder wrote it
}

func (e *LockError) Error() string {
	h := e.Holder
	if h == "" {
		h = "holder unknown"
	}
	return fmt.Sprintf("another encjob run holds the lock on %s (%s); wait for it to finish", e.Root, h)
}

// record is one journal line. A "P" record is written (and made durable)
// before an output is linked or renamed into place: it names the output,
// the temporary name it passes through (if any), the new file's identity
// and the fingerprint of the source it was made from, and for an in-place
// replacement the identity of the file being replaced. That is enough for
// the next run to finish or undo a half-done commit and to prove that the
// file at key is still the one encjob wrote. A "D" record names a
// directory in which named temporary files of this run may exist (only
// where the file system has no O_TMPFILE). After the commit a second "P"
// record without a temporary name adds the file's ctime as the rename
// left it (appended, durable with the next sync): with it, a file deleted
// and restored with the same inode number, size and mtime is not taken
// for encjob's (ctimeNs 0: not known, the crash came first).
type record struct {
	kind   byte // 'P' or 'D'
	key    string
	tmp    string // temporary name in key's directory, "" for none
	newSt  ident  // the new file (ctime once known, see below)
	oldSt  ident  // in-place: the replaced file; zero otherwise
	print  Fingerprint
	inPlac bool
}

func (r record) encode() []byte { return r.appendTo(nil) }

// appendTo appends the encoded line to b. It is written with strconv's
// appenders into one buffer (two records per output are encoded, so a
// formatted print per field was a measurable part of a small file).
func (r record) appendTo(b []byte) []byte {
	start := len(b)
	b = append(b, "00000000 "...) // the checksum, filled in below
	p := len(b)
	b = append(b, recordVersion...)
	b = append(b, ' ', r.kind, ' ')
	b = strconv.AppendQuote(b, r.key)
	if r.kind == 'P' {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, r.tmp)
		b = appendIdent(b, r.newSt, true)
		b = appendIdent(b, r.oldSt, false)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, string(r.print))
		b = append(b, ' ')
		b = strconv.AppendBool(b, r.inPlac)
	}
	const hex = "0123456789abcdef"
	sum := crc32.ChecksumIEEE(b[p:])
	for i := 7; i >= 0; i-- {
		b[start+i] = hex[sum&0xf]
		sum >>= 4
	}
	return append(b, '\n')
}

// appendIdent appends " dev ino size mtime[ ctime]".
func appendIdent(b []byte, id ident, ctime bool) []byte {
	b = strconv.AppendUint(append(b, ' '), id.dev, 10)
	b = strconv.AppendUint(append(b, ' '), id.ino, 10)
	b = strconv.AppendInt(append(b, ' '), id.size, 10)
	b = strconv.AppendInt(append(b, ' '), id.mtimeNs, 10)
	if ctime {
		b = strconv.AppendInt(append(b, ' '), id.ctimeNs, 10)
	}
	return b
}

// parseRecords decodes a journal; a line that is torn or fails its
// checksum (a crash mid-append) is dropped, never glued to the next.
func parseRecords(data []byte) []record {
	var out []record
	for len(data) > 0 {
		line := data
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // torn last line
		}
		line, data = data[:i], data[i+1:]
		if r, ok := parseRecord(string(line)); ok {
			out = append(out, r)
		}
	}
	return out
}

func parseRecord(line string) (record, bool) {
	sum, payload, ok := strings.Cut(line, " ")
	if !ok || len(sum) != 8 {
		return record{}, false
	}
	want, err := strconv.ParseUint(sum, 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE([]byte(payload)) {
		return record{}, false
	}
	rest, ok := strings.CutPrefix(payload, recordVersion+" ")
	if !ok || len(rest) < 2 {
		return record{}, false
	}
	r := record{kind: rest[0]}
	rest = rest[2:]
	quoted := func() (string, bool) {
		rest = strings.TrimPrefix(rest, " ")
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", false
		}
		rest = rest[len(q):]
		s, err := strconv.Unquote(q)
		return s, err == nil
	}
	if r.key, ok = quoted(); !ok {
		return record{}, false
	}
	if r.kind == 'D' {
		return r, rest == ""
	}
	if r.kind != 'P' {
		return record{}, false
	}
	if r.tmp, ok = quoted(); !ok {
		return record{}, false
	}
	f := strings.Fields(rest)
	if len(f) != 11 {
		return record{}, false
	}
	var n [9]int64
	for i := range n {
		if n[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
			return record{}, false
		}
	}
	r.newSt = ident{dev: uint64(n[0]), ino: uint64(n[1]), size: n[2], mtimeNs: n[3], ctimeNs: n[4]}
	r.oldSt = ident{dev: uint64(n[5]), ino: uint64(n[6]), size: n[7], mtimeNs: n[8]}
	p, err := strconv.Unquote(f[9])
	if err != nil {
		return record{}, false
	}
	r.print = Fingerprint(p)
	r.inPlac = f[10] == "true"
	return r, true
}

// rootState is the per-process state of one local root: its directory
// descriptor, the state directory, the lock, this run's journal and the
// provenance index. LocalDestinations of one process on one root share it
// (a process is one run; flock would otherwise make a second destination
// of the same run lock itself out).
type rootState struct {
	root string
	ops  fileOps

	mu       sync.Mutex
	rootFD   int // -1 until opened
	stateFD  int // -1 until opened
	runsFD   int
	lockFD   int // -1 until the lock is held
	runID    string
	journal  int // -1 until created
	seq      uint64
	prov     map[string]record
	provErr  error
	loaded   bool
	recovery []string // what recovery removed or restored, for Cleanup
	tmpDirs  map[string]bool
}

var (
	statesMu sync.Mutex
	states   = map[string]*rootState{}
)

// stateFor returns the process-wide state of root.
func stateFor(root string, ops fileOps) *rootState {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	statesMu.Lock()
	defer statesMu.Unlock()
	if st, ok := states[abs]; ok && st.ops == ops && st.stillAt(abs) {
		return st
	}
	st := newRootState(abs, ops)
	states[abs] = st
	return st
}

// stillAt reports whether the state's root descriptor (if opened) is still
// the directory at path: a root deleted or replaced between two runs of
// one process gets a fresh state, not writes into the old directory.
func (s *rootState) stillAt(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rootFD < 0 {
		return true
	}
	cur, err := s.ops.fstat(s.rootFD)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return uint64(st.Dev) == cur.dev && uint64(st.Ino) == cur.ino
}

func newRootState(root string, ops fileOps) *rootState {
	return &rootState{root: root, ops: ops, rootFD: -1, stateFD: -1, runsFD: -1, lockFD: -1, journal: -1,
		tmpDirs: map[string]bool{}}
}

// openRootLocked opens the root (creating it with create).
func (s *rootState) openRootLocked(create bool) error {
	if s.rootFD >= 0 {
		return nil
	}
	if create {
		if err := os.MkdirAll(s.root, 0o777); err != nil {
			return fmt.Errorf("create destination %s: %w", s.root, err)
		}
	}
	fd, err := s.ops.openRoot(s.root)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("destination %s: %w", s.root, ErrNotFound)
		}
		return fmt.Errorf("open destination %s: %w", s.root, err)
	}
	s.rootFD = fd
	return nil
}

// openStateLocked opens .encjob-state (creating it with create). A
// directory of that name that is not empty and has no marker is not
// encjob's: it is refused rather than written into.
func (s *rootState) openStateLocked(create bool) error {
	if s.stateFD >= 0 && (s.runsFD >= 0 || !create) {
		return nil
	}
	if s.stateFD >= 0 {
		// A crash came between making the state directory and runs/.
		rfd, _, err := s.ops.openDir(s.stateFD, runsName, true)
		if err != nil {
			return fmt.Errorf("destination %s: open %s/%s: %w", s.root, StateDir, runsName, err)
		}
		s.runsFD = rfd
		return nil
	}
	fd, created, err := s.ops.openDir(s.rootFD, StateDir, create)
	if err != nil {
		if errors.Is(err, unix.ENOENT) && !create {
			return ErrNotFound
		}
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("destination %s: %s exists and is not a directory encjob made", s.root, StateDir)
		}
		return fmt.Errorf("destination %s: open %s: %w", s.root, StateDir, err)
	}
	if _, err := s.ops.lstat(fd, stateMarker); err != nil {
		names, _ := s.ops.readDir(fd)
		if !create || (!created && len(names) > 0) {
			s.ops.close(fd)
			if !create {
				return ErrNotFound
			}
			return fmt.Errorf("destination %s: directory %s was not made by encjob (no %s file); rename it", s.root, StateDir, stateMarker)
		}
		mfd, err := s.ops.createExcl(fd, stateMarker, 0o644)
		if err == nil {
			_, err = s.ops.write(mfd, []byte(markerText))
			s.ops.close(mfd)
		}
		if err != nil {
			s.ops.close(fd)
			return fmt.Errorf("destination %s: write %s/%s: %w", s.root, StateDir, stateMarker, err)
		}
	}
	rfd, _, err := s.ops.openDir(fd, runsName, create)
	if err != nil && !(errors.Is(err, unix.ENOENT) && !create) {
		s.ops.close(fd)
		return fmt.Errorf("destination %s: open %s/%s: %w", s.root, StateDir, runsName, err)
	}
	if err != nil {
		rfd = -1
	}
	s.stateFD, s.runsFD = fd, rfd
	return nil
}

// lock makes this process the run writing below root: it takes an
// flock(2) on the root directory itself (so a run that has written
// nothing yet needs no file of its own there), and when an earlier run
// left a state directory, records itself as the holder and finishes or
// undoes what a crashed run left half-done (recoverLocked). The state
// directory and this run's journal are made only by the first commit
// (ensureJournal): a run that commits nothing leaves nothing.
func (s *rootState) lock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFD >= 0 {
		return nil
	}
	// Failures are not remembered: the other run may end, and an item's
	// retry (or the next run in this process) should then get the lock.
	return s.lockLocked()
}

func (s *rootState) lockLocked() error {
	if err := s.openRootLocked(true); err != nil {
		return err
	}
	lockFD := s.rootFD
	err := s.ops.flock(s.rootFD)
	if errors.Is(err, unix.EBADF) || errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		// NFS emulates flock with write locks, which a directory opened
		// read-only cannot take: lock the state directory's lock file
		// (opened for writing) instead. Every client of such a file
		// system takes the same path, so they still exclude each other.
		if err = s.openStateLocked(true); err == nil {
			lockFD, err = s.ops.openFile(s.stateFD, lockName, unix.O_RDWR|unix.O_CREAT, 0o644)
			if err == nil {
				if err = s.ops.flock(lockFD); err != nil {
					s.ops.close(lockFD)
				}
			}
		}
	}
	if err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return &LockError{Root: s.root, Holder: s.holderLocked()}
		}
		return fmt.Errorf("destination %s: lock: %w", s.root, err)
	}
	s.lockFD = lockFD
	var id [16]byte
	rand.Read(id[:])
	s.runID = hex.EncodeToString(id[:])
	err = s.openStateLocked(false)
	if errors.Is(err, ErrNotFound) {
		return nil // no earlier run left anything here
	}
	if err != nil {
		return err
	}
	s.writeHolderLocked()
	if err := s.recoverLocked(); err != nil {
		return fmt.Errorf("destination %s: recovering an earlier run: %w", s.root, err)
	}
	return nil
}

// holderLocked reads who holds the lock, as the holder wrote it.
func (s *rootState) holderLocked() string {
	sfd, _, err := s.ops.openDir(s.rootFD, StateDir, false)
	if err != nil {
		return "it has not committed anything yet"
	}
	defer s.ops.close(sfd)
	b, err := s.readFile(sfd, lockName)
	if err != nil || len(b) == 0 {
		return "it has not committed anything yet"
	}
	return strings.TrimSpace(string(b[:min(len(b), 512)]))
}

// writeHolderLocked records this run in the state directory's lock file
// (for the message another run gets).
func (s *rootState) writeHolderLocked() {
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d, host %s, run %s, since %s\n", os.Getpid(), host, s.runID, time.Now().UTC().Format(time.RFC3339))
	fd, err := s.ops.openFile(s.stateFD, lockName, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	s.ops.write(fd, []byte(info))
	s.ops.close(fd)
}

// ensureJournal creates the state directory (if needed) and this run's
// journal, durably (journal name, state directory and its entry in the
// root), before the first record or named temporary of the run: that
// name is what proves such a temporary ours.
func (s *rootState) ensureJournal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal >= 0 {
		return nil
	}
	if s.lockFD < 0 {
		return errors.New("destination not locked")
	}
	fresh := s.stateFD < 0
	if err := s.openStateLocked(true); err != nil {
		return err
	}
	if fresh {
		s.writeHolderLocked()
	}
	name := fmt.Sprintf("%020d-%s%s", time.Now().UnixNano(), s.runID, journalSuffix)
	jfd, err := s.ops.openFile(s.runsFD, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("destination %s: create run journal: %w", s.root, err)
	}
	for _, fd := range []int{s.runsFD, s.stateFD, s.rootFD} {
		if err := s.ops.fsync(fd); err != nil {
			s.ops.close(jfd)
			s.ops.unlink(s.runsFD, name)
			return fmt.Errorf("destination %s: sync run journal: %w", s.root, err)
		}
	}
	s.journal = jfd
	return nil
}

// journalNames lists the journals in runs/, oldest first.
func (s *rootState) journalNames() ([]string, error) {
	if s.runsFD < 0 {
		return nil, nil
	}
	names, err := s.ops.readDir(s.runsFD)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, journalSuffix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *rootState) readFile(dir int, name string) ([]byte, error) {
	fd, err := s.ops.openFile(dir, name, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer s.ops.close(fd)
	st, err := s.ops.fstat(fd)
	if err != nil {
		return nil, err
	}
	if !st.isReg() || st.size > maxJournalSize {
		return nil, fmt.Errorf("%s: not a regular file or larger than %d bytes", name, maxJournalSize)
	}
	buf := make([]byte, st.size)
	n := 0
	for n < len(buf) {
		m, err := s.ops.pread(fd, buf[n:], int64(n))
		if m <= 0 || err != nil {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// loadLocked reads the provenance file and every journal into the index.
// It needs no lock: records are only trusted after the file they name is
// found to be the very inode they describe.
func (s *rootState) loadLocked() error {
	if s.loaded {
		return s.provErr
	}
	s.loaded = true
	s.prov = map[string]record{}
	if err := s.openRootLocked(false); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		s.provErr = err
		return err
	}
	if err := s.openStateLocked(false); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		s.provErr = err
		return err
	}
	_, err := s.readJournalsLocked()
	s.provErr = err
	return err
}

// readJournalsLocked merges the provenance file and every journal into
// s.prov and returns the records of the journals (for recovery).
func (s *rootState) readJournalsLocked() (map[string][]record, error) {
	if b, err := s.readFile(s.stateFD, provName); err == nil {
		for _, r := range parseRecords(b) {
			if r.kind == 'P' {
				s.prov[r.key] = r
			}
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("read %s/%s: %w", StateDir, provName, err)
	}
	names, err := s.journalNames()
	if err != nil {
		return nil, fmt.Errorf("list %s/%s: %w", StateDir, runsName, err)
	}
	out := map[string][]record{}
	for _, n := range names {
		b, err := s.readFile(s.runsFD, n)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, fmt.Errorf("read %s/%s/%s: %w", StateDir, runsName, n, err)
		}
		recs := parseRecords(b)
		out[n] = recs
		for _, r := range recs {
			if r.kind == 'P' {
				s.prov[r.key] = r
			}
		}
	}
	return out, nil
}

// runOf extracts the run id from a journal name.
func runOf(journal string) string {
	n := strings.TrimSuffix(journal, journalSuffix)
	_, id, _ := strings.Cut(n, "-")
	return id
}

// recoverLocked runs under the lock before this run writes anything: no
// other run is live below the root, so every journal is a finished or
// crashed run's. It removes the temporary names those runs can be proven
// to have made (the inode recorded, or the run's id in the name of a file
// in a directory its journal lists), completes or undoes an in-place
// exchange caught half-way, and compacts the journals into the provenance
// file, keeping only records whose output is still the recorded inode.
func (s *rootState) recoverLocked() error {
	s.prov = map[string]record{}
	s.loaded = true
	s.provErr = nil
	journals, err := s.readJournalsLocked()
	if err != nil {
		return err
	}
	if err := s.recoverHeaderRewritesLocked(); err != nil { // headerrewrite.go
		return err
	}
	names := make([]string, 0, len(journals))
	for n := range journals {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		// First the temporaries a commit record names: what each holds
		// decides (after an in-place exchange it may be another writer's
		// content, to be given back). Then the sweep of the directories
		// the run wrote named temporaries in, which skips those names.
		handled := map[string]bool{}
		for _, r := range journals[n] {
			if r.kind == 'P' && r.tmp != "" {
				handled[JoinKey(dirKey(r.key), r.tmp)] = true
				if err := s.undoTmp(r); err != nil {
					return err
				}
			}
		}
		prefix := TempPrefix + runOf(n) + "-"
		for _, r := range journals[n] {
			if r.kind == 'D' {
				if err := s.sweepDir(r.key, prefix, handled); err != nil {
					return err
				}
			}
		}
	}
	// Compact: keep the records whose output is still the recorded file.
	var buf []byte
	keys := make([]string, 0, len(s.prov))
	for k := range s.prov {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := s.prov[k]
		st, err := s.statKeyLocked(k)
		if err != nil || !r.matches(st) {
			delete(s.prov, k)
			continue
		}
		r.tmp, r.oldSt, r.inPlac = "", ident{}, false
		s.prov[k] = r
		buf = append(buf, r.encode()...)
	}
	if len(names) == 0 {
		return nil
	}
	s.ops.unlink(s.stateFD, provTmpName)
	fd, err := s.ops.createExcl(s.stateFD, provTmpName, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", provTmpName, err)
	}
	_, err = s.ops.write(fd, buf)
	if err == nil {
		err = s.ops.fsync(fd)
	}
	s.ops.close(fd)
	if err == nil {
		err = s.ops.rename(s.stateFD, provTmpName, s.stateFD, provName, 0)
	}
	if err == nil {
		err = s.ops.fsync(s.stateFD)
	}
	if err != nil {
		return fmt.Errorf("write %s/%s: %w", StateDir, provName, err)
	}
	// Every record is now in the provenance file (durable): the journals
	// can go. A crash before this point only repeats the compaction.
	for _, n := range names {
		if err := s.ops.unlink(s.runsFD, n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove journal %s: %w", n, err)
		}
	}
	return s.ops.fsync(s.runsFD)
}

// undoTmp handles a temporary name a crashed commit may have left: the
// new file itself (not yet renamed or exchanged: removed, the item stays
// old), or, after an in-place exchange, the replaced file (removed when it
// is the very file the commit expected to replace; otherwise an external
// writer's content was swapped out and is exchanged back).
func (s *rootState) undoTmp(r record) error {
	dir, err := s.walkDir(dirKey(r.key), false, nil)
	if err != nil {
		return nil // the directory is gone: nothing of ours is left in it
	}
	defer s.ops.close(dir)
	st, err := s.ops.lstat(dir, r.tmp)
	if err != nil {
		return nil
	}
	where := r.key + " (" + r.tmp + ")"
	if !st.isReg() {
		return nil
	}
	// Each removal is synced before the journal that proves the file
	// ours can be compacted away.
	if st.sameVersion(r.newSt.fileStat()) {
		s.recovery = append(s.recovery, "removed unfinished output "+where)
		return s.unlinkSynced(dir, r.tmp)
	}
	if !r.inPlac {
		return nil // not the file this record made: not ours to touch
	}
	final, err := s.ops.lstat(dir, baseKey(r.key))
	if err != nil || !final.sameVersion(r.newSt.fileStat()) {
		return nil
	}
	if st.sameVersion(r.oldSt.fileStat()) {
		s.recovery = append(s.recovery, "removed replaced file "+where)
		return s.unlinkSynced(dir, r.tmp)
	}
	// Content we did not expect was swapped out: give it its name back.
	if err := s.ops.rename(dir, r.tmp, dir, baseKey(r.key), unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("restore %s: %w", where, err)
	}
	s.recovery = append(s.recovery, "restored externally changed "+where)
	if back, err := s.ops.lstat(dir, r.tmp); err == nil && back.sameVersion(r.newSt.fileStat()) {
		s.ops.unlink(dir, r.tmp)
	}
	return s.ops.fsync(dir)
}

// sweepDir removes the files named after a crashed run (prefix) in one
// directory its journal lists (only named temporaries carry a run id),
// except those a commit record names (handled: undoTmp decided).
func (s *rootState) sweepDir(dk, prefix string, handled map[string]bool) error {
	dir, err := s.walkDir(dk, false, nil)
	if err != nil {
		return nil
	}
	defer s.ops.close(dir)
	names, err := s.ops.readDir(dir)
	if err != nil {
		return nil
	}
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) || handled[JoinKey(dk, n)] {
			continue
		}
		if st, err := s.ops.lstat(dir, n); err != nil || !st.isReg() {
			continue
		}
		if err := s.unlinkSynced(dir, n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove %s: %w", JoinKey(dk, n), err)
		}
		s.recovery = append(s.recovery, "removed unfinished output "+JoinKey(dk, n))
	}
	return nil
}

func (s *rootState) unlinkSynced(dir int, name string) error {
	if err := s.ops.unlink(dir, name); err != nil {
		return err
	}
	return s.ops.fsync(dir)
}

// dirKey is the directory part of a key ("" for the root).
func dirKey(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

// walkDir opens the directory dk (slash-separated, "" for the root) below
// the root one component at a time, never following a symlink; with
// create it makes missing components and appends to created the
// descriptor of the parent of each directory it made (whose entry must be
// synced; the caller syncs and closes them). The caller closes the returned descriptor.
func (s *rootState) walkDir(dk string, create bool, created *[]int) (int, error) {
	cur, err := s.ops.dup(s.rootFD)
	if err != nil {
		return -1, err
	}
	if dk == "" {
		return cur, nil
	}
	for _, seg := range strings.Split(dk, "/") {
		next, made, err := s.ops.openDir(cur, seg, create)
		if err != nil {
			s.ops.close(cur)
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return -1, &EscapeError{Key: dk, Reason: "passes through " + seg + ", which is a symlink or not a directory"}
			}
			return -1, err
		}
		if made && created != nil {
			*created = append(*created, cur)
		} else {
			s.ops.close(cur)
		}
		cur = next
	}
	return cur, nil
}

// statKeyLocked lstats key below the root, confined.
func (s *rootState) statKeyLocked(key string) (fileStat, error) {
	dir, err := s.walkDir(dirKey(key), false, nil)
	if err != nil {
		return fileStat{}, err
	}
	defer s.ops.close(dir)
	return s.ops.lstat(dir, baseKey(key))
}

// provenance returns the source fingerprint recorded for key, if the file
// at key is still the inode (same device, inode, size and mtime) encjob
// committed there.
func (s *rootState) provenance(key string) (Fingerprint, bool, error) {
	s.mu.Lock()
	if err := s.loadLocked(); err != nil {
		s.mu.Unlock()
		return "", false, err
	}
	r, ok := s.prov[key]
	ok = ok && s.rootFD >= 0
	s.mu.Unlock()
	if !ok {
		return "", false, nil
	}
	// The root descriptor never changes once open: stat without the lock.
	st, err := s.statKeyLocked(key)
	if err != nil {
		return "", false, nil
	}
	if !r.matches(st) {
		return "", false, nil
	}
	return r.print, true, nil
}

// matches reports whether st is the file r committed.
func (r record) matches(st fileStat) bool {
	return st.isReg() && st.sameVersion(r.newSt.fileStat()) && (r.newSt.ctimeNs == 0 || st.ctimeNs == r.newSt.ctimeNs)
}

// appendRecords writes records to this run's journal (one write); they
// become durable with the next syncfs or journal fsync.
func (s *rootState) appendRecords(recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range recs {
		buf = r.appendTo(buf)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal < 0 {
		return errors.New("run journal not open")
	}
	if _, err := s.ops.write(s.journal, buf); err != nil {
		return fmt.Errorf("write run journal: %w", err)
	}
	return nil
}

// remember updates the in-memory index after a commit.
func (s *rootState) remember(r record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prov == nil {
		s.prov = map[string]record{}
	}
	s.loaded = true
	r.tmp, r.oldSt, r.inPlac = "", ident{}, false
	s.prov[r.key] = r
}

// tmpName returns a fresh temporary name of this run.
func (s *rootState) tmpName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return TempPrefix + s.runID + "-" + strconv.FormatUint(s.seq, 10)
}

// noteTmpDir durably records, once per directory, that this run may leave
// named temporary files in dk (the fallback without O_TMPFILE).
func (s *rootState) noteTmpDir(dk string) error {
	if err := s.ensureJournal(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tmpDirs[dk] {
		return nil
	}
	if _, err := s.ops.write(s.journal, record{kind: 'D', key: dk}.encode()); err != nil {
		return fmt.Errorf("write run journal: %w", err)
	}
	if err := s.ops.fsync(s.journal); err != nil {
		return fmt.Errorf("sync run journal: %w", err)
	}
	s.tmpDirs[dk] = true
	return nil
}

// syncJournal fsyncs this run's journal.
func (s *rootState) syncJournal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal < 0 {
		return nil
	}
	return s.ops.fsync(s.journal)
}

var (
	umaskMu  sync.Mutex
	umaskOK  bool
	umaskVal uint32
)

// processUmask reads the umask without changing it (Linux 4.7+ reports it
// in /proc/self/status); elsewhere it sets and restores it. It is read
// once per process: a run does not change its umask.
func processUmask() uint32 {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	if umaskOK {
		return umaskVal
	}
	umaskOK = true
	func() {
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "Umask:"); ok {
					if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
						umaskVal = uint32(n)
						return
					}
				}
			}
		}
		old := unix.Umask(0o022)
		unix.Umask(old)
		umaskVal = uint32(old)
	}()
	return umaskVal
}

// closeAll releases every descriptor (and so the lock), as the
// process's exit does; tests use it to play a second run.
func (s *rootState) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockFD >= 0 && s.lockFD != s.rootFD {
		s.ops.close(s.lockFD)
	}
	s.lockFD = -1 // else the root descriptor: closing it drops the lock
	for _, fd := range []*int{&s.journal, &s.runsFD, &s.stateFD, &s.rootFD} {
		if *fd >= 0 {
			s.ops.close(*fd)
			*fd = -1
		}
	}
	s.loaded, s.prov = false, nil
}
