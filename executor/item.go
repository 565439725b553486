package executor

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// process runs one attempt of an item: open the pinned input, create the
// output, transform (a message or a KMS blob), re-check the input,
// commit. Any error aborts the output writer, so no partial output is
// ever visible.
func process(ctx context.Context, rt *planner.Runtime, it *planner.Item, r *Result, onRead func(int)) (pending <-chan error, err error) {
	if done, pending, err := rewrapInStorage(ctx, rt, it, r, onRead); done {
		return pending, err
	}
	rc, recheck, err := openInput(ctx, rt.Sources[it.SourceIndex], it)
	if err != nil {
		return nil, fmt.Errorf("opening input: %w", err)
	}
	defer rc.Close()
	in := &counter{r: rc, onRead: onRead}
	w, err := createOutput(ctx, rt, it)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			w.Abort()
		}
		r.BytesIn = in.n
	}()
	// Buffer the output so a small message is one write, not one per
	// header, frame and footer.
	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() { bw.Reset(nil); bufWriters.Put(bw) }()
	out := &counter{w: bw}
	var hdr, inHdr *crypto.Header
	if it.Format == "kms" {
		err = processBlob(ctx, rt, it, in, out)
	} else {
		hdr, inHdr, err = processMessage(ctx, rt, it, in, out)
	}
	if err == nil {
		err = bw.Flush()
	}
	err = sourceUnchanged(err, recheck)
	r.BytesOut = out.n
	if err != nil {
		return nil, err
	}
	r.Header, r.InputHeader = hdr, inHdr
	return commit(ctx, w, &committed)
}

// createOutput creates the item's output as the plan says: in place only
// over the planned version of the source (If-Match), replacing an
// existing output only when the item may overwrite.
func createOutput(ctx context.Context, rt *planner.Runtime, it *planner.Item) (sources.Writer, error) {
	dst, err := rt.Destination(ctx, it)
	if err != nil {
		return nil, err
	}
	// Mode 0 is 0666 &^ umask: plaintext never inherits a ciphertext's mode.
	// Size: the input's, which the output's is close to (a hint: a large
	// local output is then written past the page cache from its start).
	co := sources.CreateOptions{Mode: fs.FileMode(it.Mode).Perm(), ContentType: it.ContentType, Metadata: it.Metadata, Size: it.Size,
		SourcePrint: planner.SourcePrint(it)}
	switch {
	case it.InPlace:
		co.IfMatch, co.Overwrite = it.Fingerprint, sources.OverwriteAlways
	case it.Action == planner.Decrypt:
		co.Mode = 0
	}
	if it.Overwrite {
		co.Overwrite = sources.OverwriteAlways
	}
	w, err := dst.Create(ctx, it.OutKey, co)
	if err != nil {
		return nil, fmt.Errorf("creating output: %w", err)
	}
	return w, nil
}

// processMessage transforms one ESDK item: the input decoded from its
// encoding, the output encoded to its own, the new message verified when
// the item says so.
func processMessage(ctx context.Context, rt *planner.Runtime, it *planner.Item, in *counter, out io.Writer) (hdr, inHdr *crypto.Header, err error) {
	// plain counts (and, with verify, hashes) the plaintext an encryption
	// reads: the input itself, or what its base64 text decodes to. A
	// source's encoding applies to every action: on encrypt it is
	// aws-encryption-cli's --decode, and encrypting the base64 text
	// instead would hand the user back data they did not mean.
	var src io.Reader = in
	plain, size, bound := in, it.Size, int64(-1)
	if it.Action != planner.Encrypt {
		br := bufReaders.Get().(*bufio.Reader)
		br.Reset(planner.InputReader(in, it.InputEncoding))
		defer func() { br.Reset(nil); bufReaders.Put(br) }()
		src = br // the decryptor uses the buffered reader as it is
	} else if it.InputEncoding == "base64" {
		plain = &counter{r: planner.InputReader(in, it.InputEncoding)}
		src = plain
		// The decoded length is unknown until the end; the text's length
		// bounds it (for a caching CMM's byte limit).
		size, bound = -1, it.Size
	}
	sink := out
	var b64 io.WriteCloser
	if it.OutputEncoding == "base64" {
		b64 = base64.NewEncoder(base64.StdEncoding, out)
		sink = b64
	}
	var verify *verifier
	if it.Verify && it.Action != planner.Decrypt {
		if verify, err = newVerifier(ctx, rt, it.Target); err != nil {
			return nil, nil, err
		}
		sink = io.MultiWriter(sink, verify)
		if it.Action == planner.Encrypt {
			plain.h = sha256.New() // re-encryptions take the digest after decryption
		}
	}
	switch it.Action {
	case planner.Encrypt:
		hdr, err = encrypt(ctx, rt, it.Target, sink, src, size, bound)
	case planner.Decrypt:
		hdr, err = decrypt(ctx, rt, it, sink, src)
	case planner.Reencrypt:
		hdr, inHdr, err = reencrypt(ctx, rt, it, sink, src, verify)
	case planner.Rewrap:
		hdr, inHdr, err = rewrap(ctx, rt, it, sink, src, verify)
	default:
		err = fmt.Errorf("action %q changes nothing", it.Action)
	}
	if err == nil && b64 != nil {
		err = b64.Close()
	}
	if err == nil && verify != nil {
		want := verify.plainDigest
		if plain.h != nil {
			want = plain.h.Sum(nil)
		}
		err = verify.check(want)
	}
	return hdr, inHdr, err
}

// openInput opens the item's source. Where the source can (local files,
// S3 objects) it opens exactly the planned version (it.Fingerprint) and
// returns the check that, once everything is read, proves the bytes read
// were that version from first to last.
func openInput(ctx context.Context, src sources.Source, it *planner.Item) (io.ReadCloser, func() error, error) {
	if po, ok := src.(sources.PinnedOpener); ok && it.Fingerprint != "" {
		pr, err := po.OpenPinned(ctx, it.Key, it.Fingerprint)
		if err != nil {
			return nil, nil, err
		}
		return pr, pr.Recheck, nil
	}
	rc, err := src.Open(ctx, it.Key)
	return rc, func() error { return nil }, err
}
