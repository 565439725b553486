package sources

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// HeaderRewriter is an optional Destination capability: replace, in
// place, the first bytes of an existing item with as many new bytes,
// leaving the rest of the file (a message body of any size) alone: an
// O(header) rewrap. LocalDestination implements it for local files.
//
// The contract: RewriteHeader either returns nil, and the file at key
// (the same inode, still version pin when called) then starts with
// header, durably; or an error, and the file is unchanged (exactly
// version pin) or - only after a failure of the disk itself or a crash -
// recoverable: the next run on the root (Cleanup) finds the journal and
// leaves the file holding either its old bytes or header, never a mix.
// A *HeaderRewriteDeclined error means nothing was attempted (not a
// regular file, hard links, sizes differ, no write permission): the
// caller writes a whole new file instead.
type HeaderRewriter interface {
	RewriteHeader(ctx context.Context, key string, pin Fingerprint, oldLen int, header []byte) error
}

// HeaderRewriteDeclined says why a header is not rewritten in place.
type HeaderRewriteDeclined struct {
	Key, Reason string
}

func (e *HeaderRewriteDeclined) Error() string {
	return fmt.Sprintf("%s: header not rewritten in place: %s", e.Key, e.Reason)
}

// positionalWriter is the one operation the header rewrite needs beyond
// fileOps: a write at an offset. unixOps has it (pwrite(2)); a test file
// system adds it, or the rewrite is declined.
type positionalWriter interface {
	pwrite(fd int, p []byte, off int64) (int, error)
}

func (unixOps) pwrite(fd int, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pwrite(fd, p[n:], off+int64(n))
		if m > 0 {
			n += m
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, unix.EIO
		}
	}
	return n, nil
}

// The journals of header rewrites live in the root's state directory:
//
//	.encjob-state/rewrites/<run id>-<n>.rewrite
//
// one per rewrite in progress, holding the file's key and identity and
// its old and new header bytes, with a checksum. It is durable (file and
// directory fsynced) before the first byte of the file is written, and
// removed (durably) only after the new header was fsynced, so a crash at
// any moment leaves either no journal and a file that is wholly old or
// wholly new, or a journal that recovery (recoverHeaderRewritesLocked)
// uses to make it so.
const (
	rewritesName   = "rewrites"
	rewriteSuffix  = ".rewrite"
	rewriteVersion = "encjob-header-rewrite v1"
	maxHeaderBytes = 1 << 20 // a journal is read whole; headers are far smaller
)

var rewriteSeq atomic.Uint64

// headerJournal is one rewrite's journal.
type headerJournal struct {
	key      string
	file     ident // dev, ino, size, mtime before the rewrite
	old, new []byte
}

func (j headerJournal) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nkey %s\nfile %d %d %d %d\nold %s\nnew %s\n", rewriteVersion, strconv.Quote(j.key),
		j.file.dev, j.file.ino, j.file.size, j.file.mtimeNs, hex.EncodeToString(j.old), hex.EncodeToString(j.new))
	fmt.Fprintf(&b, "crc %08x\n", crc32.ChecksumIEEE(b.Bytes()))
	return b.Bytes()
}

// parseHeaderJournal decodes a journal; false for a torn or corrupt one
// (it was never complete, so the file was never written).
func parseHeaderJournal(data []byte) (headerJournal, bool) {
	i := bytes.LastIndex(data, []byte("crc "))
	if i < 0 || !bytes.HasSuffix(data, []byte("\n")) {
		return headerJournal{}, false
	}
	sum, err := strconv.ParseUint(strings.TrimSpace(string(data[i+4:])), 16, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE(data[:i]) {
		return headerJournal{}, false
	}
	lines := strings.Split(strings.TrimSuffix(string(data[:i]), "\n"), "\n")
	if len(lines) != 5 || lines[0] != rewriteVersion {
		return headerJournal{}, false
	}
	var j headerJournal
	var ok bool
	if q, found := strings.CutPrefix(lines[1], "key "); found {
		j.key, err = strconv.Unquote(q)
		ok = err == nil
	}
	var n [4]int64
	f := strings.Fields(strings.TrimPrefix(lines[2], "file "))
	ok = ok && len(f) == 4
	for k := 0; ok && k < 4; k++ {
		n[k], err = strconv.ParseInt(f[k], 10, 64)
		ok = err == nil
	}
	j.file = ident{dev: uint64(n[0]), ino: uint64(n[1]), size: n[2], mtimeNs: n[3]}
	if ok {
		j.old, err = hex.DecodeString(strings.TrimPrefix(lines[3], "old "))
		ok = err == nil && strings.HasPrefix(lines[3], "old ")
	}
	if ok {
		j.new, err = hex.DecodeString(strings.TrimPrefix(lines[4], "new "))
		ok = err == nil && strings.HasPrefix(lines[4], "new ") && len(j.new) == len(j.old) && len(j.old) > 0
	}
	return j, ok
}

// RewriteHeader implements HeaderRewriter: the file at key, which must be
// version pin, a regular file with one link (another name would see its
// content change without being asked) that is writable by this process,
// of at least oldLen bytes, gets header (exactly oldLen bytes) as its
// first bytes, behind a durable journal (see rewritesName):
//
//	journal written, fsynced, its directory fsynced
//	pwrite(header, 0); fsync(file)
//	journal removed, its directory fsynced
//
// A reader that opens the file during the rewrite may see the old or the
// new header, or, during the one pwrite of a few hundred bytes, a mix of
// the two, which fails the header's authentication (never wrong
// plaintext); the body bytes never change. A reader holding the file open
// from before sees the new header from then on, as with any write in
// place (an in-place replacement by rename would keep showing it the old
// file). The file keeps its inode, owner, mode and extended attributes;
// its mtime changes.
func (d *LocalDestination) RewriteHeader(ctx context.Context, key string, pin Fingerprint, oldLen int, header []byte) error {
	final, err := d.Path(key)
	if err != nil {
		return err
	}
	decline := func(why string) error { return &HeaderRewriteDeclined{Key: final, Reason: why} }
	pw, ok := d.st.ops.(positionalWriter)
	switch {
	case key == StateDir || strings.HasPrefix(key, StateDir+"/"):
		return &EscapeError{Key: key, Reason: "inside encjob's state directory " + StateDir}
	case !ok:
		return decline("the file system offers no positional write")
	case len(header) != oldLen || oldLen <= 0 || oldLen > maxHeaderBytes:
		return decline(fmt.Sprintf("the new header has %d bytes, the old one %d", len(header), oldLen))
	}
	if err := d.st.lock(); err != nil {
		return err
	}
	s, ops := d.st, d.st.ops
	dir, err := s.walkDir(dirKey(key), false, nil) // rootFD is fixed once locked
	if err != nil {
		return fmt.Errorf("rewrite header of %s: %w", final, err)
	}
	defer ops.close(dir)
	name := baseKey(key)
	fd, err := ops.openFile(dir, name, unix.O_RDWR, 0)
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.ENXIO):
		return decline("not a regular file")
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.EROFS), errors.Is(err, unix.ETXTBSY):
		return decline("not writable here (" + err.Error() + ")")
	case err != nil:
		return checkStat(key, name, fileStat{}, err, pin)
	}
	defer ops.close(fd)
	st, err := ops.fstat(fd)
	if err != nil {
		return fmt.Errorf("rewrite header of %s: %w", final, err)
	}
	switch {
	case !st.isReg():
		return decline("not a regular file")
	case st.sys.Nlink > 1:
		return decline(fmt.Sprintf("it has %d hard links: rewriting it would change the other names' content too", st.sys.Nlink))
	case st.size < int64(oldLen):
		return decline("the file is shorter than its header")
	}
	if err := checkStat(key, name, st, nil, pin); err != nil {
		return err
	}
	old := make([]byte, oldLen)
	if n, err := ops.pread(fd, old, 0); err != nil || n != oldLen {
		return fmt.Errorf("rewrite header of %s: reading %d header bytes: read %d: %v", final, oldLen, n, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j := headerJournal{key: key, file: st.ident(), old: old, new: header}
	rdir, jname, err := s.writeHeaderJournal(j)
	if err != nil {
		return fmt.Errorf("rewrite header of %s: %w", final, err)
	}
	defer ops.close(rdir)
	if _, err = pw.pwrite(fd, header, 0); err == nil {
		err = ops.fsync(fd)
	}
	if err != nil {
		// Make it whole now rather than leave a torn header to the
		// next run; if that fails too the journal stays for it.
		if _, rerr := s.settleHeader(j, pw, fd); rerr == nil {
			s.removeJournal(rdir, jname)
		}
		return fmt.Errorf("rewrite header of %s: %w", final, err)
	}
	// The new header is durable: a journal left by a failure to remove
	// it only makes the next run's recovery find the new header.
	s.removeJournal(rdir, jname)
	return nil
}

// writeHeaderJournal makes j durable in the rewrites directory (made,
// with the state directory, as needed, each new entry fsynced) and
// returns the directory's descriptor and the journal's name.
func (s *rootState) writeHeaderJournal(j headerJournal) (int, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := s.stateFD < 0
	if err := s.openStateLocked(true); err != nil {
		return -1, "", err
	}
	if fresh {
		s.writeHolderLocked()
	}
	rdir, made, err := s.ops.openDir(s.stateFD, rewritesName, true)
	if err != nil {
		return -1, "", fmt.Errorf("open %s/%s: %w", StateDir, rewritesName, err)
	}
	var syncs []int
	if made {
		syncs = append(syncs, s.stateFD)
	}
	if fresh {
		syncs = append(syncs, s.rootFD)
	}
	name := fmt.Sprintf("%s-%d%s", s.runID, rewriteSeq.Add(1), rewriteSuffix)
	jfd, err := s.ops.createExcl(rdir, name, 0o600)
	if err == nil {
		_, err = s.ops.write(jfd, j.encode())
		if err == nil {
			err = s.ops.fsync(jfd)
		}
		s.ops.close(jfd)
	}
	for _, fd := range append([]int{rdir}, syncs...) {
		if err == nil {
			err = s.ops.fsync(fd)
		}
	}
	if err != nil {
		s.ops.unlink(rdir, name)
		s.ops.close(rdir)
		return -1, "", fmt.Errorf("write header journal: %w", err)
	}
	return rdir, name, nil
}

// removeJournal removes a journal durably.
func (s *rootState) removeJournal(rdir int, name string) error {
	if err := s.ops.unlink(rdir, name); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return s.ops.fsync(rdir)
}

// settleHeader makes the file a journal names wholly old or wholly new,
// durably, given its open descriptor; it says which it did:
//   - already the new header: fsynced (the write may not be durable yet);
//   - the old header: left as it is (the rewrite never took effect: a
//     complete, valid old message, which the next run rewraps again; a
//     roll-forward would change the file the run that follows planned);
//   - a mix of the two, byte by byte (a torn write): rolled forward;
//   - anything else, or another file (inode or size differ): someone
//     else wrote it since, left alone.
func (s *rootState) settleHeader(j headerJournal, pw positionalWriter, fd int) (string, error) {
	st, err := s.ops.fstat(fd)
	if err != nil {
		return "", err
	}
	if !st.isReg() || st.dev != j.file.dev || st.ino != j.file.ino || st.size != j.file.size {
		return "left alone (replaced since)", nil
	}
	cur := make([]byte, len(j.old))
	if n, err := s.ops.pread(fd, cur, 0); err != nil || n != len(cur) {
		return "", fmt.Errorf("reading the header: %d bytes, %v", n, err)
	}
	switch {
	case bytes.Equal(cur, j.new):
		return "kept the new header", s.ops.fsync(fd)
	case bytes.Equal(cur, j.old):
		return "kept the old header", nil
	}
	for i := range cur {
		if cur[i] != j.old[i] && cur[i] != j.new[i] {
			return "left alone (changed by another writer)", nil
		}
	}
	if _, err := pw.pwrite(fd, j.new, 0); err != nil {
		return "", err
	}
	return "completed a torn header rewrite", s.ops.fsync(fd)
}

// recoverHeaderRewritesLocked settles every header rewrite a crashed run
// left (a journal in the rewrites directory) and removes its journal.
// It runs under the root's lock, before this run writes anything, from
// recoverLocked. A journal that is torn or fails its checksum was never
// complete, so its file was never written: it is removed.
func (s *rootState) recoverHeaderRewritesLocked() error {
	rdir, _, err := s.ops.openDir(s.stateFD, rewritesName, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s/%s: %w", StateDir, rewritesName, err)
	}
	defer s.ops.close(rdir)
	names, err := s.ops.readDir(rdir)
	if err != nil {
		return fmt.Errorf("list %s/%s: %w", StateDir, rewritesName, err)
	}
	for _, n := range names {
		if !strings.HasSuffix(n, rewriteSuffix) {
			continue
		}
		what, err := s.recoverHeaderRewrite(rdir, n)
		if err != nil {
			return fmt.Errorf("%s/%s/%s: %w", StateDir, rewritesName, n, err)
		}
		if what != "" {
			s.recovery = append(s.recovery, what)
		}
		if err := s.removeJournal(rdir, n); err != nil {
			return fmt.Errorf("remove %s/%s/%s: %w", StateDir, rewritesName, n, err)
		}
	}
	return nil
}

// recoverHeaderRewrite settles one journal's file; it returns what it
// did, for Cleanup's report.
func (s *rootState) recoverHeaderRewrite(rdir int, name string) (string, error) {
	b, err := s.readFile(rdir, name)
	if err != nil {
		return "", err
	}
	j, ok := parseHeaderJournal(b)
	if !ok {
		return "", nil
	}
	pw, ok := s.ops.(positionalWriter)
	if !ok {
		return "", errors.New("the file system offers no positional write")
	}
	dir, err := s.walkDir(dirKey(j.key), false, nil)
	if err != nil {
		return "header rewrite of " + j.key + ": left alone (its directory is gone)", nil
	}
	defer s.ops.close(dir)
	fd, err := s.ops.openFile(dir, baseKey(j.key), unix.O_RDWR, 0)
	if err != nil {
		return "header rewrite of " + j.key + ": left alone (" + err.Error() + ")", nil
	}
	defer s.ops.close(fd)
	what, err := s.settleHeader(j, pw, fd)
	if err != nil {
		return "", fmt.Errorf("%s: %w", j.key, err)
	}
	return "header rewrite of " + j.key + ": " + what, nil
}

// RecoverHeaderRewrites settles, before anything reads the files below
// root, the header rewrites a crashed run left there: when root's state
// directory holds a header journal it runs Cleanup (which takes the lock
// and recovers, as the first write of any run would), and otherwise does
// nothing (no lock taken). A planner calls it for in-place roots, so
// that a header torn by a crash is never planned from. Another run
// holding the lock is not an error: it recovered the root when it took
// the lock. It returns what was recovered.
func RecoverHeaderRewrites(ctx context.Context, root string) ([]string, error) {
	names, err := os.ReadDir(filepath.Join(root, StateDir, rewritesName))
	if err != nil {
		return nil, nil // no state directory or no rewrites: nothing to do
	}
	pending := false
	for _, n := range names {
		pending = pending || strings.HasSuffix(n.Name(), rewriteSuffix)
	}
	if !pending {
		return nil, nil
	}
	done, err := Cleanup(ctx, root)
	var le *LockError
	if errors.As(err, &le) {
		return nil, nil
	}
	return done, err
}

var _ HeaderRewriter = (*LocalDestination)(nil)
