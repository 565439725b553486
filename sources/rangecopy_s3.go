package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxCopyPartSize bounds one UploadPartCopy (S3's limit is 5 GiB; smaller
// parts copy in parallel and retry cheaply).
const MaxCopyPartSize = 1 << 30

// minCopyPart is the smallest UploadPartCopy part: one request per 64 MiB
// keeps the requests few; tests lower it to see several parts.
var minCopyPart int64 = 64 << 20

// CopiesFrom: S3 outputs copy server-side from S3 sources reached through
// the same client (so the same endpoint and credentials).
func (d *S3Destination) CopiesFrom(src Source) bool {
	s, ok := src.(*S3Source)
	return ok && s.opt.Client == d.opt.Client
}

// CopyRange implements RangeCopier with a multipart upload: the first
// part is what was written (the new header) plus the start of the range,
// read with a conditional GET, up to S3's 5 MiB part minimum; the rest of
// the range is UploadPartCopy parts of the source, each conditional on
// its planned ETag (x-amz-copy-source-if-match) and version. The copies -
// the long part, done by the server - are started first, and the first
// part is read and sent while they run. A range that does not reach past
// the first part is copied through this process, and the output then
// goes up as one PutObject at Commit.
func (w *s3Writer) CopyRange(ctx context.Context, src Source, key string, pin Fingerprint, off, n int64) (int64, error) {
	s, ok := src.(*S3Source)
	if !ok || w.done || w.partNum != 0 {
		return 0, w.fail(errors.New("copy range: not an S3 source, or the writer has started parts"))
	}
	etag, ok := etagOf(pin)
	if !ok || etag == "" {
		return 0, w.fail(fmt.Errorf("copy range: %q is not an S3 fingerprint", pin))
	}
	head := min(n, max(0, MinPartSize-int64(len(w.buf))))
	rest := n - head
	if rest == 0 {
		return 0, w.copyThrough(ctx, s, key, pin, off, head)
	}
	// The upload carries no part checksums when parts are copied: a
	// server computes a copied part's itself, and one that answers with
	// the wrong value (versitygw returns the source object's composite
	// "<crc>-<parts>") would make the completion fail.
	w.copied = true
	if err := w.begin(); err != nil {
		return 0, err
	}
	// Part 1 is the written bytes plus head; the copies are parts 2...,
	// queued in the background so that reading the head overlaps them
	// (they wait for upload slots like any part).
	source := copySource(s.loc.Bucket, s.objectKey(ctx, key), versionOf(pin))
	part := max(w.d.opt.PartSize, (rest+9000)/9000, minCopyPart) // at most ~9000 parts
	part = min(part, MaxCopyPartSize)
	copies := int32((rest + part - 1) / part)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		num := int32(2)
		for start := off + head; start < off+n; start, num = start+part, num+1 {
			w.copyPart(num, s, source, key, pin, etag, start, min(start+part, off+n)-1)
		}
	}()
	if head > 0 {
		if err := w.copyThrough(ctx, s, key, pin, off, head); err != nil {
			return 0, err
		}
	}
	// Part 1 holds at most 5 MiB: Write flushed it if the part size is
	// 5 MiB, else it is still buffered.
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			return 0, err
		}
	}
	w.partNum += copies
	w.buf, w.sealed = nil, true
	return rest, w.failed()
}

// copyThrough appends n bytes of the source at off through this process,
// with a GET conditional on the planned version. A failure fails the
// writer.
func (w *s3Writer) copyThrough(ctx context.Context, s *S3Source, key string, pin Fingerprint, off, n int64) error {
	if n == 0 {
		return w.failed()
	}
	rc, err := s.openRangePinned(ctx, key, pin, off, n)
	if err != nil {
		return w.fail(err)
	}
	defer rc.Close()
	got, err := io.Copy(writerOnly{w}, rc)
	if err == nil && got != n {
		err = &SourceChangedError{Key: key, Want: pin, When: "while it was read (shorter than planned)"}
	}
	if err != nil {
		return w.fail(err)
	}
	return w.failed()
}

// copyPart uploads source bytes [start, end] as part num, in the
// background (as flush does for written parts) once an upload slot is
// free.
func (w *s3Writer) copyPart(num int32, s *S3Source, source, key string, pin Fingerprint, etag string, start, end int64) {
	rng := fmt.Sprintf("bytes=%d-%d", start, end)
	w.inSlot(func() {
		out, err := w.d.opt.Client.UploadPartCopy(w.ctx, &awss3.UploadPartCopyInput{
			Bucket: &w.d.loc.Bucket, Key: &w.full, UploadId: w.uploadID, PartNumber: &num,
			CopySource: &source, CopySourceRange: &rng, CopySourceIfMatch: aws.String(etag),
		})
		if err != nil {
			if isPreconditionFailed(err) {
				err = &SourceChangedError{Key: key, Want: pin, When: "while it was copied"}
			} else if changed := s.changedSince(w.ctx, key, pin); changed != nil {
				// A server may check the range against the object's size
				// before the copy-source condition (versitygw answers 400
				// for a range past the end of a shorter object): a copy
				// that failed for any reason while the source is no longer
				// the planned version failed because of it.
				err = changed
			}
			w.fail(fmt.Errorf("%s: upload part %d (copy %s): %w", w.d.uri(w.full), num, rng, err))
			return
		}
		cp := types.CompletedPart{PartNumber: &num}
		if r := out.CopyPartResult; r != nil {
			cp.ETag = r.ETag
		}
		if cp.ETag == nil {
			w.fail(fmt.Errorf("%s: upload part %d (copy %s): no ETag in the reply", w.d.uri(w.full), num, rng))
			return
		}
		w.addPart(cp)
	})
}

// copySource is the x-amz-copy-source value: bucket/key, URL-encoded per
// segment ('+' too: some servers read it as a space), with the version.
func copySource(bucket, key, version string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	}
	v := bucket + "/" + strings.Join(segs, "/")
	if version != "" && version != "null" {
		v += "?versionId=" + url.QueryEscape(version)
	}
	return v
}

// openHeaderPinned is OpenHeader, each range conditional on the planned
// ETag (and version).
func (s *S3Source) openHeaderPinned(ctx context.Context, key string, pin Fingerprint) (io.ReadCloser, error) {
	etag, ok := etagOf(pin)
	if !ok || etag == "" {
		return nil, fmt.Errorf("source %s: key %q: %q is not an S3 fingerprint", s.loc.Raw, key, pin)
	}
	r := &rangeReader{ctx: ctx, c: s.opt.Client, bucket: s.loc.Bucket, key: s.objectKey(ctx, key), next: HeaderRange, size: -1,
		ifMatch: etag, version: versionOf(pin), print: pin, item: key}
	if err := r.fetch(); err == io.EOF {
		r.err = io.EOF
	} else if err != nil {
		return nil, err
	}
	return r, nil
}

// openRangePinned reads bytes [off, off+n) of the planned version.
func (s *S3Source) openRangePinned(ctx context.Context, key string, pin Fingerprint, off, n int64) (io.ReadCloser, error) {
	etag, _ := etagOf(pin)
	full := s.objectKey(ctx, key)
	rng := fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	in := &awss3.GetObjectInput{Bucket: &s.loc.Bucket, Key: &full, Range: &rng, IfMatch: aws.String(etag)}
	if v := versionOf(pin); v != "" && v != "null" {
		in.VersionId = aws.String(v)
	}
	out, err := s.opt.Client.GetObject(ctx, in)
	switch {
	case err != nil && isPreconditionFailed(err):
		return nil, &SourceChangedError{Key: key, Want: pin, When: "before it was read"}
	case err != nil:
		return nil, fmt.Errorf("s3://%s/%s: get range: %w", s.loc.Bucket, full, err)
	}
	if got := aws.ToString(out.ETag); got != "" && got != etag {
		out.Body.Close()
		return nil, &SourceChangedError{Key: key, Want: pin, Got: s3Print(got, aws.ToString(out.VersionId)), When: "before it was read"}
	}
	return out.Body, nil
}

// changedSince returns a *SourceChangedError if the object at key is no
// longer the planned version pin (a HEAD, made only after a failure), nil
// if it still is or the HEAD cannot tell.
func (s *S3Source) changedSince(ctx context.Context, key string, pin Fingerprint) error {
	it, err := s.stat(ctx, s.objectKey(ctx, key))
	switch {
	case errors.Is(err, ErrNotFound):
		return &SourceChangedError{Key: key, Want: pin, When: "while it was copied"}
	case err != nil:
		return nil
	}
	if etag, _ := etagOf(pin); it.ETag != etag || versionOf(pin) != "" && versionOf(pin) != "null" && it.Version != versionOf(pin) {
		return &SourceChangedError{Key: key, Want: pin, Got: it.Print, When: "while it was copied"}
	}
	return nil
}
