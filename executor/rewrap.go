package executor

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// rewrap moves the message in to out under the destination key group
// without re-encrypting its body: the data key is unwrapped with the
// source key group and wrapped again, the header is rebuilt with the
// edited context, and the body is copied byte for byte (signed suites get
// a new signature after the old one verified). The caller commits out
// only on success, through the same path as a re-encryption, so
// atomicity, in-place replacement (If-Match) and resume are the same.
//
// With verify, every frame of the source is also opened and its plaintext
// digest handed to the verifier, which decrypts the new message with the
// destination key group and compares.
func rewrap(ctx context.Context, rt *planner.Runtime, it *planner.Item, out io.Writer, in io.Reader, v *verifier) (*crypto.Header, *crypto.Header, error) {
	o, err := rewrapOptions(rt, it)
	if err != nil {
		return nil, nil, err
	}
	if v != nil {
		o.PlaintextHash = sha256.New()
		context := o.Context
		o.Context = func(h *crypto.Header) (crypto.EncryptionContext, error) {
			c, err := context(h)
			v.expect(c)
			return c, err
		}
	}
	nh, oh, err := crypto.Rewrap(ctx, out, in, o)
	if err != nil {
		return nil, nil, err
	}
	if v != nil {
		v.plainDigest = o.PlaintextHash.Sum(nil)
	}
	return nh, oh, nil
}

// rewrapOptions are the item's rewrap options: its decrypt key group,
// its target's key group and context.
func rewrapOptions(rt *planner.Runtime, it *planner.Item) (crypto.RewrapOptions, error) {
	do, err := decryptOptions(rt, it.DecryptKeyGroup, it.Size)
	if err != nil {
		return crypto.RewrapOptions{}, err
	}
	if it.Target == nil {
		return crypto.RewrapOptions{}, errors.New("the plan item has no target")
	}
	kr, err := rt.Keyring(it.Target.KeyGroup)
	if err != nil {
		return crypto.RewrapOptions{}, err
	}
	var required []string // the target's, set by Context before it is asked for
	return crypto.RewrapOptions{
		Decrypt:              do,
		Keyring:              kr,
		CommitmentPolicy:     rt.Policy,
		MaxEncryptedDataKeys: rt.Settings.MaxEncryptedDataKeys,
		// The planner re-encrypts v2 items in full without the opt-in;
		// a v2 message here (stdin, an edited plan) is refused unless allowed.
		AllowHeaderNonceReuse: rt.Settings.AllowHeaderNonceReuse,
		Check:                 func(h *crypto.Header) error { return checkContext(rt, h) },
		Context: func(h *crypto.Header) (crypto.EncryptionContext, error) {
			t, err := reencryptTarget(rt, it, h)
			if err != nil {
				return nil, err
			}
			required = t.RequiredKeys
			return crypto.EncryptionContext(maps.Clone(t.Context)), nil
		},
		RequiredContextKeys: func(*crypto.Header, crypto.EncryptionContext) []string { return required },
	}, nil
}

// rewrapInStorage runs a rewrap whose body the storage copies itself
// (sources.RangeCopier: copy_file_range for local files, UploadPartCopy
// for S3), when the item qualifies: an unsigned suite (a signed one must
// hash every body byte), no verification (it would read every byte), no
// base64 on either side, and a destination that copies from this source.
// The header is read pinned to the planned version, the new header is
// written, the rest of the planned size is copied from that same
// version, and the output is committed only after all of it succeeded,
// exactly as a streamed rewrap. done false: the caller streams the item.
func rewrapInStorage(ctx context.Context, rt *planner.Runtime, it *planner.Item, r *Result, onRead func(int)) (done bool, pending <-chan error, err error) {
	if it.Action != planner.Rewrap || it.Fingerprint == "" || it.Verify || it.InputEncoding != "" || it.OutputEncoding != "" || it.Format == "kms" {
		return false, nil, nil
	}
	if s, err := crypto.ParseSuite(it.Suite); err != nil || s.Signed() {
		return false, nil, nil
	}
	src := rt.Sources[it.SourceIndex]
	dst, err := rt.Destination(ctx, it)
	if err != nil {
		return true, nil, err
	}
	if rd, ok := dst.(sources.RangeCopyDestination); !ok || !rd.CopiesFrom(src) {
		return false, nil, nil
	}
	o, err := rewrapOptions(rt, it)
	if err != nil {
		return true, nil, err
	}
	hr, err := sources.OpenHeaderPinned(ctx, src, it.Key, it.Fingerprint)
	if err != nil {
		return true, nil, fmt.Errorf("opening input: %w", err)
	}
	hdr, nh, oh, err := crypto.RewrapHeader(ctx, hr, o)
	hr.Close()
	if err != nil {
		return true, nil, err
	}
	body := it.Size - int64(oh.Len())
	if err := checkBodyTail(ctx, src, it, oh, body); err != nil {
		return true, nil, err
	}
	if done, err := rewriteHeaderInPlace(ctx, it, dst, hdr, oh); done || err != nil {
		if err == nil {
			if onRead != nil {
				onRead(int(it.Size))
			}
			r.BytesIn, r.BytesOut, r.BytesInStorage, r.HeaderInPlace = it.Size, it.Size, body, true
			r.Header, r.InputHeader = nh, oh
		}
		return true, nil, err
	}
	w, err := createOutput(ctx, rt, it)
	if err != nil {
		return true, nil, err
	}
	committed := false
	defer func() {
		if !committed {
			w.Abort()
		}
	}()
	if _, err := w.Write(hdr); err != nil {
		return true, nil, err
	}
	r.BytesInStorage, err = w.(sources.RangeCopier).CopyRange(ctx, src, it.Key, it.Fingerprint, int64(oh.Len()), body)
	if err != nil {
		return true, nil, err
	}
	if onRead != nil {
		onRead(int(it.Size))
	}
	r.BytesIn, r.BytesOut = it.Size, int64(len(hdr))+body
	r.Header, r.InputHeader = nh, oh
	pending, err = commit(ctx, w, &committed)
	return true, pending, err
}

// checkBodyTail reads the few bytes that show an unsigned body of body
// bytes is whole (crypto.BodyTail), from the planned version: a truncated
// source, or one with bytes after its end, is refused as a streamed
// rewrap would refuse it.
func checkBodyTail(ctx context.Context, src sources.Source, it *planner.Item, oh *crypto.Header, body int64) error {
	if body < 0 {
		return fmt.Errorf("input of %d bytes is shorter than its %d-byte header", it.Size, oh.Len())
	}
	off, n, check, err := crypto.BodyTail(oh, body)
	if err != nil {
		return err
	}
	b, err := sources.ReadAtPinned(ctx, src, it.Key, it.Fingerprint, int64(oh.Len())+off, n)
	if err != nil {
		return fmt.Errorf("reading the end of the body: %w", err)
	}
	return check(b)
}

// rewriteHeaderInPlace overwrites the header of an in-place item with
// hdr, leaving its body where it is (sources.HeaderRewriter, behind a
// durable journal), when the item allows it (reencrypt.headerInPlace),
// the new header has exactly the old one's length and the destination
// can. done false and no error: the caller writes a new file instead
// (also when the destination declines: hard links, not a regular file,
// not writable).
func rewriteHeaderInPlace(ctx context.Context, it *planner.Item, dst sources.Destination, hdr []byte, oh *crypto.Header) (done bool, err error) {
	hw, ok := dst.(sources.HeaderRewriter)
	if !ok || !it.InPlace || !it.HeaderInPlace || len(hdr) != oh.Len() {
		return false, nil
	}
	err = hw.RewriteHeader(ctx, it.OutKey, it.Fingerprint, oh.Len(), hdr)
	var declined *sources.HeaderRewriteDeclined
	if errors.As(err, &declined) {
		return false, nil
	}
	if err != nil {
		return true, commitError(err)
	}
	return true, nil
}
