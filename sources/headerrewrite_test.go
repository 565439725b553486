package sources

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/keyring"
	"golang.org/x/sys/unix"
)

// pwrite gives the crash file system the positional write the header
// rewrite needs. It writes in two steps (first half, second half), so a
// crash between them leaves a torn header in the live state - which a
// crash image shows when the kernel had written that page back (see
// writtenBack).
func (f *crashFS) pwrite(fd int, p []byte, off int64) (int, error) {
	half := len(p) / 2
	for _, part := range [][2]int{{0, half}, {half, len(p)}} {
		if err := f.pwritePart(fd, p[part[0]:part[1]], off+int64(part[0])); err != nil {
			return part[0], err
		}
	}
	return len(p), nil
}

func (f *crashFS) pwritePart(fd int, p []byte, off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.node(fd)
	if err != nil {
		return err
	}
	if !f.step("pwrite %d %d %d", n.ino, off, len(p)) {
		return errCrashed
	}
	if end := off + int64(len(p)); end > int64(len(n.data)) {
		n.data = append(n.data, make([]byte, end-int64(len(n.data)))...)
	}
	copy(n.data[off:], p)
	f.tick(n)
	return nil
}

// writtenBack is the crash image in which the file at path also holds
// its unsynced data (the kernel wrote the dirty page back before the
// crash): the other extreme from image's synced-only data.
func writtenBack(f *crashFS, eager bool, path string) *crashFS {
	g := f.image(eager)
	f.mu.Lock()
	defer f.mu.Unlock()
	ino, ok := lookupPath(f, path)
	if n, there := g.inodes[ino]; ok && there {
		n.data = append([]byte(nil), f.inodes[ino].data...)
		g.syncNode(n)
	}
	return g
}

func lookupPath(f *crashFS, path string) (uint64, bool) {
	ino := f.rootIno
	for _, seg := range strings.Split(path, "/") {
		next, ok := f.inodes[ino].entries[seg]
		if !ok {
			return 0, false
		}
		ino = next
	}
	return ino, true
}

// rewrapFixture is a real ESDK message (unsigned, framed, several
// frames), its rewrapped header (same length: both raw AES keys have
// names of one length) and the keyrings of both.
type rewrapFixture struct {
	msg, header []byte
	oldLen      int
	plaintext   []byte
	oldKR       *keyring.RawAES
	newKR       *keyring.RawAES
}

func newRewrapFixture(t *testing.T, suite uint16) rewrapFixture {
	t.Helper()
	ctx := context.Background()
	oldKR, err := keyring.NewRawAES("encjob", "old", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	newKR, err := keyring.NewRawAES("encjob", "new", bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte("plaintext "), 1000)
	policy := crypto.RequireEncryptRequireDecrypt
	if !crypto.SuiteByID(suite).Committing {
		policy = crypto.ForbidEncryptAllowDecrypt
	}
	msg, err := crypto.Encrypt(ctx, pt, crypto.EncryptOptions{CMM: crypto.NewDefaultCMM(oldKR), Suite: crypto.SuiteByID(suite), FrameLength: 1024,
		Context: crypto.EncryptionContext{"tenant": "acme"}, CommitmentPolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, oh, err := crypto.RewrapHeader(ctx, bufio.NewReader(bytes.NewReader(msg)), crypto.RewrapOptions{
		Decrypt: crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(oldKR), CommitmentPolicy: policy}, Keyring: newKR,
		CommitmentPolicy: policy, AllowHeaderNonceReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr) != oh.Len() {
		t.Fatalf("new header %d bytes, old %d: the fixture needs equal lengths", len(hdr), oh.Len())
	}
	return rewrapFixture{msg: msg, header: hdr, oldLen: oh.Len(), plaintext: pt, oldKR: oldKR, newKR: newKR}
}

// opens reports whether data decrypts to the fixture's plaintext under kr.
func (fx rewrapFixture) opens(data []byte, kr *keyring.RawAES) bool {
	got, _, err := crypto.Decrypt(context.Background(), data, crypto.DecryptOptions{CMM: crypto.NewDefaultCMM(kr), CommitmentPolicy: crypto.RequireEncryptAllowDecrypt})
	return err == nil && bytes.Equal(got, fx.plaintext)
}

const rewriteKey = "sub/msg.encrypted"

// runHeaderRewrite is one run: Stat for the pin, then RewriteHeader.
func runHeaderRewrite(f *crashFS, fx rewrapFixture) error {
	ctx := context.Background()
	d := newLocalDest(newRootState("/root", f), LocalDestOptions{})
	it, err := d.Stat(ctx, rewriteKey)
	if err != nil {
		return err
	}
	return d.RewriteHeader(ctx, rewriteKey, it.Print, fx.oldLen, fx.header)
}

// checkRewriteRecovered runs the next run's recovery (the root's lock)
// and requires the file to be wholly the old message, opening under the
// old key only, or wholly the new one (the old body behind the new
// header), opening under the new key only; no journal left; the user's
// file untouched. It returns whether the file is new.
func checkRewriteRecovered(t *testing.T, where string, g *crashFS, fx rewrapFixture) bool {
	t.Helper()
	st := newRootState("/root", g)
	if err := st.lock(); err != nil {
		t.Fatalf("%s: recovery: %v", where, err)
	}
	defer st.closeAll()
	files := g.files()
	got := []byte(files[rewriteKey])
	newMsg := append(append([]byte(nil), fx.header...), fx.msg[fx.oldLen:]...)
	isNew := bytes.Equal(got, newMsg)
	switch {
	case isNew:
		if !fx.opens(got, fx.newKR) || fx.opens(got, fx.oldKR) {
			t.Fatalf("%s: the new message does not open under the new key only", where)
		}
	case bytes.Equal(got, fx.msg):
		if !fx.opens(got, fx.oldKR) {
			t.Fatalf("%s: the old message does not open", where)
		}
	default:
		t.Fatalf("%s: the file is neither the old nor the new message (%d bytes)", where, len(got))
	}
	if files["keep.txt"] != "user" {
		t.Fatalf("%s: user file changed: %q", where, files["keep.txt"])
	}
	for p := range files {
		if strings.HasPrefix(p, StateDir+"/"+rewritesName+"/") {
			t.Fatalf("%s: journal %s left after recovery", where, p)
		}
	}
	return isNew
}

// TestHeaderRewriteCrashConsistency: the in-place header rewrite of a
// real message, killed after every recorded operation (each mkdir,
// create, write, fsync, pwrite half and unlink), on every crash image (file
// data as synced or as written back, directory entries as synced or all
// kept): the next run's recovery leaves the file wholly the old message
// or wholly the new one, each decrypting to the same plaintext under its
// own key group only; no journal is left; a rerun then completes it.
func TestHeaderRewriteCrashConsistency(t *testing.T) {
	for _, suite := range []uint16{0x0478, 0x0178} {
		fx := newRewrapFixture(t, suite)
		tree := func() *crashFS {
			f := newCrashFS()
			f.put(rewriteKey, string(fx.msg), 0o644)
			f.put("keep.txt", "user", 0o644)
			return f
		}
		full := tree()
		if err := runHeaderRewrite(full, fx); err != nil {
			t.Fatalf("%04x: crash-free run: %v", suite, err)
		}
		if !checkRewriteRecovered(t, "no crash", full.image(false), fx) {
			t.Fatalf("%04x: the crash-free run did not rewrite the header", suite)
		}
		n := len(full.ops)
		torn := 0
		for k := 0; k <= n; k++ {
			f := tree()
			f.crashAt = k
			runHeaderRewrite(f, fx)
			last := "start"
			if k > 0 {
				last = f.ops[k-1]
			}
			for _, img := range []struct {
				name string
				make func() *crashFS
			}{
				{"synced, entries as synced", func() *crashFS { return f.image(false) }},
				{"synced, entries eager", func() *crashFS { return f.image(true) }},
				{"written back, entries as synced", func() *crashFS { return writtenBack(f, false, rewriteKey) }},
				{"written back, entries eager", func() *crashFS { return writtenBack(f, true, rewriteKey) }},
			} {
				where := strings.Join([]string{"suite " + crypto.SuiteByID(suite).Hex(), "crash after op " + itoa(k) + " (" + last + ")", img.name}, ", ")
				g := img.make()
				if b := []byte(g.files()[rewriteKey]); !bytes.Equal(b, fx.msg) && !bytes.HasPrefix(b, fx.header) {
					torn++ // recovery must complete this one
					crashDuringRecovery(t, where, g, fx)
				}
				if checkRewriteRecovered(t, where, g, fx) {
					continue
				}
				if err := runHeaderRewrite(g, fx); err != nil {
					t.Fatalf("%s: rerun: %v", where, err)
				}
				if !checkRewriteRecovered(t, where+", after the rerun", g.image(false), fx) {
					t.Fatalf("%s: after the rerun the header is still old", where)
				}
			}
		}
		if torn == 0 {
			t.Fatalf("%04x: no crash image had a torn header: the test does not exercise roll-forward", suite)
		}
		t.Logf("suite %04x: %d operations (%s), %d images with a torn header", suite, n, strings.Join(full.ops, "; "), torn)
	}
}

// crashDuringRecovery kills the recovery of a torn image after each of
// its operations: the recovery after that must still settle the file.
func crashDuringRecovery(t *testing.T, where string, g *crashFS, fx rewrapFixture) {
	t.Helper()
	probe := g.image(true)
	st := newRootState("/root", probe)
	st.lock()
	st.closeAll()
	if len(probe.ops) == 0 {
		t.Fatalf("%s: recovery of a torn header recorded no operation", where)
	}
	for r := 0; r <= len(probe.ops); r++ {
		h := g.image(true)
		h.crashAt = r
		st := newRootState("/root", h)
		st.lock()
		st.closeAll()
		for _, eager := range []bool{false, true} {
			checkRewriteRecovered(t, where+", recovery killed after its op "+itoa(r)+", written back", writtenBack(h, eager, rewriteKey), fx)
			checkRewriteRecovered(t, where+", recovery killed after its op "+itoa(r)+", synced", h.image(eager), fx)
		}
	}
}

// TestHeaderRewriteDeclines: what the rewrite must not touch is refused
// before anything is written (the caller copies instead), and a file
// that is no longer the planned version is a conflict.
func TestHeaderRewriteDeclines(t *testing.T) {
	ctx := context.Background()
	fx := newRewrapFixture(t, 0x0478)
	f := newCrashFS()
	f.put(rewriteKey, string(fx.msg), 0o644)
	d := newLocalDest(newRootState("/root", f), LocalDestOptions{})
	it, err := d.Stat(ctx, rewriteKey)
	if err != nil {
		t.Fatal(err)
	}
	var declined *HeaderRewriteDeclined
	if err := d.RewriteHeader(ctx, rewriteKey, it.Print, fx.oldLen, fx.header[:len(fx.header)-1]); !errors.As(err, &declined) {
		t.Fatalf("a shorter header: %v", err)
	}
	if err := d.RewriteHeader(ctx, rewriteKey, "local:1:2:3:4:5", fx.oldLen, fx.header); !errors.Is(err, ErrConflict) {
		t.Fatalf("another version: %v", err)
	}
	if err := d.RewriteHeader(ctx, StateDir+"/x", it.Print, fx.oldLen, fx.header); err == nil {
		t.Fatal("a key in the state directory was accepted")
	}
	if got := f.files()[rewriteKey]; got != string(fx.msg) {
		t.Fatal("a declined rewrite changed the file")
	}
}

// TestHeaderRewriteRealFS: on the real file system the rewrite keeps the
// inode and the body, refuses a file with two links and a symlink, and
// leaves no journal.
func TestHeaderRewriteRealFS(t *testing.T) {
	ctx := context.Background()
	fx := newRewrapFixture(t, 0x0478)
	root := t.TempDir()
	p := root + "/msg"
	if err := os.WriteFile(p, fx.msg, 0o644); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	unix.Stat(p, &before)
	d := NewLocalDestination(root, LocalDestOptions{})
	it, err := d.Stat(ctx, "msg")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RewriteHeader(ctx, "msg", it.Print, fx.oldLen, fx.header); err != nil {
		t.Fatal(err)
	}
	var after unix.Stat_t
	unix.Stat(p, &after)
	got, _ := os.ReadFile(p)
	if after.Ino != before.Ino || !bytes.Equal(got[fx.oldLen:], fx.msg[fx.oldLen:]) || !fx.opens(got, fx.newKR) || fx.opens(got, fx.oldKR) {
		t.Fatalf("inode %d -> %d, or body changed, or it does not open under the new key only", before.Ino, after.Ino)
	}
	if names, _ := os.ReadDir(root + "/" + StateDir + "/" + rewritesName); len(names) != 0 {
		t.Fatalf("journals left: %v", names)
	}
	// Two links: refused (the other name would change too).
	if err := os.WriteFile(root+"/linked", fx.msg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Link(root+"/linked", root+"/other-name"); err != nil {
		t.Fatal(err)
	}
	it, _ = d.Stat(ctx, "linked")
	var declined *HeaderRewriteDeclined
	if err := d.RewriteHeader(ctx, "linked", it.Print, fx.oldLen, fx.header); !errors.As(err, &declined) || !strings.Contains(err.Error(), "hard links") {
		t.Fatalf("two links: %v", err)
	}
	if err := unix.Symlink("msg", root+"/sym"); err != nil {
		t.Fatal(err)
	}
	if err := d.RewriteHeader(ctx, "sym", it.Print, fx.oldLen, fx.header); !errors.As(err, &declined) {
		t.Fatalf("symlink: %v", err)
	}
	if b, _ := os.ReadFile(root + "/other-name"); !bytes.Equal(b, fx.msg) {
		t.Fatal("the hard-linked file changed")
	}
}

// TestRecoverHeaderRewritesBeforePlanning: a rewrite killed with its
// journal durable and the header half written is completed by
// RecoverHeaderRewrites (what the planner calls for in-place roots before
// reading a header), which leaves no journal; with nothing pending it
// takes no lock.
func TestRecoverHeaderRewritesBeforePlanning(t *testing.T) {
	ctx := context.Background()
	fx := newRewrapFixture(t, 0x0478)
	root := t.TempDir()
	p := root + "/msg"
	if err := os.WriteFile(p, fx.msg, 0o644); err != nil {
		t.Fatal(err)
	}
	if done, err := RecoverHeaderRewrites(ctx, root); err != nil || done != nil {
		t.Fatalf("nothing pending: %v %v", done, err)
	}
	st := stateFor(root, unixOps{})
	if st.lockFD >= 0 {
		t.Fatal("RecoverHeaderRewrites took the lock with nothing to recover")
	}
	if err := st.lock(); err != nil {
		t.Fatal(err)
	}
	var fi unix.Stat_t
	unix.Stat(p, &fi)
	j := headerJournal{key: "msg", file: ident{dev: uint64(fi.Dev), ino: fi.Ino, size: fi.Size, mtimeNs: fi.Mtim.Nano()}, old: fx.msg[:fx.oldLen], new: fx.header}
	rdir, _, err := st.writeHeaderJournal(j)
	if err != nil {
		t.Fatal(err)
	}
	st.ops.close(rdir)
	torn := bytes.Clone(fx.msg)
	copy(torn[:fx.oldLen/2], fx.header)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(torn[:fx.oldLen], 0)
	f.Close()
	st.closeAll() // the killed process's lock goes with it
	done, err := RecoverHeaderRewrites(ctx, root)
	if err != nil || !strings.Contains(strings.Join(done, "; "), "completed a torn header rewrite") {
		t.Fatalf("recovery: %v %v", done, err)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, append(bytes.Clone(fx.header), fx.msg[fx.oldLen:]...)) || !fx.opens(got, fx.newKR) {
		t.Fatal("the torn header was not completed")
	}
	if names, _ := os.ReadDir(root + "/" + StateDir + "/" + rewritesName); len(names) != 0 {
		t.Fatalf("journals left: %v", names)
	}
	st.closeAll()
}
