package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/planner"
)

// messageCores is how many cores one message may use: one for small items
// (the executor runs many at once), all for large ones, whose frames are
// then sealed or opened in parallel.
func messageCores(size int64) int {
	if size >= 16<<20 {
		return 0
	}
	return 1
}

// encryptCores: for signed suites a large message gains from the writer
// goroutine hashing for the signature while frames are sealed; unsigned
// ones seal at memory speed on one core and only lose to the hand-offs.
func encryptCores(s *crypto.Suite, size int64) int {
	if s != nil && !s.Signed() {
		return 1
	}
	return messageCores(size)
}

// copyBufs pools the buffers that move bytes between a source, the engine
// and a destination, so small items do not each allocate them.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func copyPooled(dst io.Writer, src io.Reader) (int64, error) {
	b := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(b)
	return io.CopyBuffer(dst, src, *b)
}

// encryptOptions are the options a message is written with: exactly the
// item's target.
func encryptOptions(rt *planner.Runtime, t *planner.Target, size int64) (crypto.EncryptOptions, error) {
	if t == nil {
		return crypto.EncryptOptions{}, errors.New("the plan item has no target")
	}
	suite, err := crypto.ParseSuite(t.Suite)
	if err != nil {
		return crypto.EncryptOptions{}, fmt.Errorf("target suite: %w", err)
	}
	cmm, err := rt.CMM(t.KeyGroup, true)
	if err != nil {
		return crypto.EncryptOptions{}, err
	}
	if len(t.RequiredKeys) > 0 {
		// The pairs of these keys are authenticated, not stored.
		if cmm, err = crypto.NewRequiredContextCMM(cmm, t.RequiredKeys); err != nil {
			return crypto.EncryptOptions{}, fmt.Errorf("target: %w", err)
		}
	}
	o := crypto.EncryptOptions{CMM: cmm, Suite: suite, Context: crypto.EncryptionContext(t.Context),
		CommitmentPolicy: rt.Policy, MaxEncryptedDataKeys: rt.Settings.MaxEncryptedDataKeys, Concurrency: encryptCores(suite, size)}
	if fl := t.FrameLength; fl != nil {
		if *fl == 0 {
			o.NonFramed = true
		} else {
			o.FrameLength = *fl
		}
	}
	return o, nil
}

// decryptOptions are the options a message is read with: the item's
// decrypt key group and the runtime's limits.
func decryptOptions(rt *planner.Runtime, group string, size int64) (crypto.DecryptOptions, error) {
	cmm, err := rt.CMM(group, false)
	if err != nil {
		return crypto.DecryptOptions{}, err
	}
	s := rt.Settings
	return crypto.DecryptOptions{CMM: cmm, CommitmentPolicy: rt.Policy,
		MaxEncryptedDataKeys: s.MaxEncryptedDataKeys, MaxBodyLength: s.MaxBodyLength,
		UnsignedOnly: s.UnsignedOnly, Concurrency: messageCores(size),
		ReproducedContext: crypto.EncryptionContext(s.ReproducedContext)}, nil
}

// reencryptTarget is what a re-encryption or rewrap of the message with
// the authenticated header h writes. The planner computed it from the
// header it read (unauthenticated, but of the very version apply reads:
// the input is pinned to the planned fingerprint); apply derives it again
// from the authenticated header with the same function, and an item whose
// target differs is refused before a byte is written. An item planned
// without a header (standard input) gets it now.
func reencryptTarget(rt *planner.Runtime, it *planner.Item, h *crypto.Header) (*planner.Target, error) {
	want := rt.TargetFor(h)
	switch {
	case it.Target == nil || want == nil:
		return nil, errors.New("the plan item has no target")
	case it.Target.FromSource && !it.Target.Equal(want):
		return nil, errors.New("the plan item's target (context, suite, frame length) is not what the job derives from the source's authenticated header")
	}
	return want, nil
}

// encrypt streams plaintext from in to out as one message under t. size
// is the listed size (-1 unknown); a source that changes length while
// being read fails the item instead of producing a message of the wrong
// content.
func encrypt(ctx context.Context, rt *planner.Runtime, t *planner.Target, out io.Writer, in io.Reader, size, bound int64) (*crypto.Header, error) {
	o, err := encryptOptions(rt, t, max(size, bound))
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		o.PlaintextLength, o.KnownLength = size, true
	}
	o.PlaintextLengthBound = bound
	e, err := crypto.NewEncryptor(ctx, out, o)
	if err != nil {
		return nil, err
	}
	if _, err := copyPooled(e, in); err != nil {
		e.Abort()
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	if err := e.Close(); err != nil {
		return nil, fmt.Errorf("encrypting: %w", err)
	}
	return e.Header(), nil
}

// decrypt streams the plaintext of the message in to out. The output is
// committed by the caller only if this returns nil, that is only after
// every frame, the signature and the end of the input verified.
func decrypt(ctx context.Context, rt *planner.Runtime, it *planner.Item, out io.Writer, in io.Reader) (*crypto.Header, error) {
	o, err := decryptOptions(rt, it.DecryptKeyGroup, it.Size)
	if err != nil {
		return nil, err
	}
	d, err := crypto.NewDecryptor(ctx, in, o)
	if err != nil {
		return nil, err
	}
	if err := checkContext(rt, d.Header()); err != nil {
		return nil, err
	}
	if _, err := copyPooled(out, d); err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	return d.Header(), nil
}

// reencrypt decrypts and encrypts in one pass: the plaintext only ever
// exists in memory, a frame at a time. A fresh data key is used.
func reencrypt(ctx context.Context, rt *planner.Runtime, it *planner.Item, out io.Writer, in io.Reader, v *verifier) (*crypto.Header, *crypto.Header, error) {
	o, err := decryptOptions(rt, it.DecryptKeyGroup, it.Size)
	if err != nil {
		return nil, nil, err
	}
	d, err := crypto.NewDecryptor(ctx, in, o)
	if err != nil {
		return nil, nil, err
	}
	ih := d.Header()
	if err := checkContext(rt, ih); err != nil {
		return nil, nil, err
	}
	t, err := reencryptTarget(rt, it, ih)
	if err != nil {
		return nil, nil, err
	}
	if v != nil {
		v.expect(t.Context)
	}
	var src io.Reader = d
	var h hash.Hash
	if v != nil {
		h = sha256.New()
		src = io.TeeReader(d, h)
	}
	// The plaintext length is unknown until the decryptor is done; the
	// source's ciphertext size bounds it, which is what a caching
	// materials manager counts.
	oh, err := encrypt(ctx, rt, t, out, src, -1, it.Size)
	if err != nil {
		return nil, nil, err
	}
	if v != nil {
		v.plainDigest = h.Sum(nil)
	}
	return oh, ih, nil
}

// checkContext re-checks the required context against the authenticated
// header (the plan saw an unauthenticated one), its authenticated-only
// pairs included.
func checkContext(rt *planner.Runtime, h *crypto.Header) error {
	full := h.FullContext()
	for k, want := range rt.Settings.RequireContext {
		got, ok := full[k]
		if !ok || (want != nil && got != *want) {
			return fmt.Errorf("required encryption context %q is missing or differs", k)
		}
	}
	return nil
}

// verifier decrypts the ciphertext as it is written, in a goroutine, and
// compares the plaintext digest with the source's: a replaced source is
// only replaced by something that decrypts back to it.
type verifier struct {
	// context is the new message's user context (set by expect before
	// its header is written): the verifier reproduces it, so the pairs the
	// new message keeps out of its header are supplied and checked.
	context     atomic.Pointer[map[string]string]
	pw          *io.PipeWriter
	done        chan error
	digest      []byte
	plainDigest []byte
}

// newVerifier decrypts what is written with the target key group alone.
func newVerifier(ctx context.Context, rt *planner.Runtime, t *planner.Target) (*verifier, error) {
	if t == nil {
		return nil, errors.New("the plan item has no target")
	}
	kr, err := rt.Keyring(t.KeyGroup)
	if err != nil {
		return nil, err
	}
	s := rt.Settings
	pr, pw := io.Pipe()
	v := &verifier{pw: pw, done: make(chan error, 1)}
	v.expect(t.Context) // a re-encryption planned without a header sets it again
	o := crypto.DecryptOptions{CMM: &reproducingCMM{MaterialsManager: crypto.NewDefaultCMM(kr), v: v}, CommitmentPolicy: rt.Policy,
		MaxEncryptedDataKeys: s.MaxEncryptedDataKeys, MaxBodyLength: s.MaxBodyLength, UnsignedOnly: s.UnsignedOnly, Concurrency: messageCores(0)}
	go func() {
		h := sha256.New()
		d, err := crypto.NewDecryptor(ctx, pr, o)
		if err == nil {
			_, err = io.Copy(h, d)
		}
		v.digest = h.Sum(nil)
		pr.CloseWithError(errors.New("verifier done"))
		v.done <- err
	}()
	return v, nil
}

func (v *verifier) Write(p []byte) (int, error) { return v.pw.Write(p) }

// expect records the new message's user context; call it before writing.
func (v *verifier) expect(c map[string]string) { v.context.Store(&c) }

// reproducingCMM hands its manager the verifier's expected context as the
// reproduced one. It is read once the new header has come through the
// pipe, which the writer fills only after expect.
type reproducingCMM struct {
	crypto.MaterialsManager
	v *verifier
}

func (c *reproducingCMM) DecryptMaterials(ctx context.Context, req crypto.DecryptionRequest) (*crypto.DecryptionMaterials, error) {
	if p := c.v.context.Load(); p != nil {
		req.ReproducedContext = *p
	}
	return c.MaterialsManager.DecryptMaterials(ctx, req)
}

func (v *verifier) check(want []byte) error {
	v.pw.Close()
	if err := <-v.done; err != nil {
		return fmt.Errorf("verify: the new message does not decrypt: %w", err)
	}
	if !bytes.Equal(v.digest, want) {
		return errors.New("verify: the new message decrypts to different content")
	}
	return nil
}

// record builds the metadata line of a result.
func record(mode string, r *Result, shard, stdoutName string) *Record {
	it := r.Item
	output := it.Output
	if output == "<stdout>" && stdoutName != "" {
		output = stdoutName
	}
	rec := &Record{Mode: mode, Input: absLocal(it.Input), Output: absLocal(output), Item: it.Identity(), Action: it.Action,
		BytesIn: r.BytesIn, BytesOut: r.BytesOut, BytesInStorage: r.BytesInStorage, HeaderInPlace: r.HeaderInPlace, DurationMS: float64(r.Duration.Microseconds()) / 1000,
		Attempts: r.Attempts, Fingerprint: string(it.Fingerprint), Shard: report.Shard(shard), Time: time.Now().UTC()}
	switch {
	case r.NotStarted:
		// Not done: the error field keeps resume and report from taking
		// it for done; the status says it was never attempted.
		rec.Status, rec.Error = "not started", r.NotStartedWhy
	case r.Err != nil:
		rec.Status, rec.Error = "failed", r.Err.Error()
	case it.Action.Changes():
		rec.Status = "done"
	default:
		rec.Status = "planned"
	}
	if it.Action == planner.Skip {
		rec.Skipped, rec.Reason = true, it.Reason
		rec.MissingKeys, rec.MissingPairs = it.MissingContextKeys, it.MissingContextPairs
		if rec.MissingKeys != nil || rec.MissingPairs != nil {
			// The cli writes both lists on such a line, [] when empty.
			rec.MissingKeys = append([]string{}, rec.MissingKeys...)
			rec.MissingPairs = append([][]string{}, rec.MissingPairs...)
		}
	} else if it.Reason != "" && r.Err == nil {
		rec.Reason = it.Reason
	}
	if h := r.Header; h != nil {
		ch := report.CLIHeaderOf(h)
		rec.Header = &ch
		if it.Action == planner.Decrypt || it.Action == planner.Skip {
			a := report.CLIHeaderAuthOf(h)
			rec.HeaderAuth = &a
		} else {
			// Not the cli's header_auth (written on decrypt only), but
			// the tag of the header written: an audit finds the write
			// that produced a message by it (policy.History).
			rec.HeaderTag = report.CLIHeaderAuthOf(h).Tag
		}
		for _, e := range h.EncryptedDataKeys {
			rec.KeyIDs = append(rec.KeyIDs, keygroup.EDKLabel(e))
		}
	} else {
		rec.KeyIDs = it.KeyIDs
	}
	if h := r.InputHeader; h != nil {
		ch := report.CLIHeaderOf(h)
		rec.InputHeader = &ch
		rec.DecryptedWith = h.DecryptedWith
	} else if h := r.Header; h != nil && it.Action == planner.Decrypt {
		rec.DecryptedWith = h.DecryptedWith
	}
	return rec
}

// absLocal makes a local path absolute, as aws-encryption-cli writes input
// and output; s3:// URLs, "<stdin>"/"<stdout>" (and "-") and "" stay as
// they are. A path that cannot be made absolute is kept as given.
func absLocal(p string) string {
	if p == "" || p == "-" || p == "<stdin>" || p == "<stdout>" || strings.HasPrefix(p, "s3://") || filepath.IsAbs(p) {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
