package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"
)

// ErrSourceChanged: an item is no longer the version that was planned,
// either before it was opened or while it was read. Whatever was made
// from it must not be committed. The error is retryable: a new attempt
// plans the item again from its current state.
var ErrSourceChanged = errors.New("source changed")

// SourceChangedError describes an ErrSourceChanged: errors.Is(err,
// ErrSourceChanged) holds and IsRetryable(err) is true.
type SourceChangedError struct {
	Key  string
	Want Fingerprint // the planned version
	Got  Fingerprint // what is there now ("" if it is gone or unknown)
	// When is "before it was read" or "while it was read".
	When string
}

func (e *SourceChangedError) Error() string {
	got := string(e.Got)
	if got == "" {
		got = "missing or another version"
	}
	return fmt.Sprintf("%s: source changed %s (planned %s, now %s)", e.Key, e.When, e.Want, got)
}

// Is makes errors.Is(err, ErrSourceChanged) true.
func (e *SourceChangedError) Is(target error) bool { return target == ErrSourceChanged }

// Retryable: the next attempt re-plans the item and reads the new version.
func (e *SourceChangedError) Retryable() bool { return true }

// PinnedOpener is an optional Source capability: read exactly the version
// of an item that was planned, and prove after reading that it was that
// version all along. LocalSource and S3Source implement it.
type PinnedOpener interface {
	// OpenPinned opens key only if it still has fingerprint want, else it
	// fails with *SourceChangedError.
	OpenPinned(ctx context.Context, key string, want Fingerprint) (PinnedReader, error)
}

// PinnedReader is an item opened by OpenPinned.
type PinnedReader interface {
	io.ReadCloser
	// Recheck, called once everything was read, fails with
	// *SourceChangedError unless the bytes read are the planned version:
	// for a local file the open file (fstat) and the file at its path
	// (stat) must both still have the planned fingerprint - same device,
	// inode, size, mtime and ctime, so an append, a truncation, a rewrite
	// in place or a rename over it during the read is caught. For S3 the
	// GET itself was conditional (If-Match on the planned ETag, or the
	// planned version ID), so there is nothing left to check.
	Recheck() error
}

// OpenPinned opens key if it still has fingerprint want.
func (s *LocalSource) OpenPinned(ctx context.Context, key string, want Fingerprint) (PinnedReader, error) {
	pth, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := openLocal(pth, !s.opt.FollowSymlinks && pth != s.loc.Path)
	if err != nil {
		return nil, err
	}
	p := &pinnedFile{localFile: f, key: key, want: want, left: f.opened.size}
	// The fstat the open made is the check "before it was read".
	if !f.opened.hasPrint(want) {
		f.Close()
		return nil, &SourceChangedError{Key: key, Want: want, Got: LocalFingerprint(f.info(f.opened)), When: "before it was read"}
	}
	f.readsWhole()
	return p, nil
}

type pinnedFile struct {
	*localFile
	key  string
	want Fingerprint
	left int64 // planned bytes not read yet
}

// Read reads the planned bytes, then reports io.EOF without asking the
// kernel: a file that grew meanwhile is caught by Recheck (the size is in
// the fingerprint), which every reader of a pinned file calls once it has
// read. A small file took two reads, the second to learn of its end.
func (p *pinnedFile) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, err := p.localFile.Read(b)
	p.left -= int64(n)
	return n, err
}

// Recheck compares raw stats with the planned fingerprint (no string is
// formatted unless they differ: this runs once per item). The file at the
// path is stat'ed first: when it has the planned fingerprint it is the
// inode open here (OpenPinned checked the open file's device and inode),
// so its stat is the open file's too, and no fstat is needed; only a
// mismatch looks at the open file, to say what changed.
func (p *pinnedFile) Recheck() error {
	var ust unix.Stat_t
	var err error
	for {
		err = unix.Stat(p.Name(), &ust)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil {
		if pst := statOf(&ust); pst.hasPrint(p.want) {
			return nil
		}
	}
	st, ferr := p.localFile.fstat()
	if ferr != nil {
		return ferr
	}
	if st.hasPrint(p.want) {
		// The open file is unchanged, but it is no longer the file at the
		// path (renamed away, replaced or removed meanwhile).
		switch {
		case err == nil:
			st = statOf(&ust)
		case errors.Is(err, unix.ENOENT):
			return &SourceChangedError{Key: p.key, Want: p.want, When: "while it was read"}
		default:
			return &fs.PathError{Op: "stat", Path: p.Name(), Err: err}
		}
	}
	return &SourceChangedError{Key: p.key, Want: p.want, Got: LocalFingerprint(p.info(st)), When: "while it was read"}
}

// versionOf extracts the version ID from an S3 fingerprint ("" if none).
func versionOf(p Fingerprint) string {
	if i := strings.LastIndex(string(p), ":v="); i >= 0 {
		return string(p)[i+3:]
	}
	return ""
}

// OpenPinned GETs the planned version of the object: by version ID when
// the fingerprint has one, and always If-Match its ETag, so S3 answers
// with exactly that version or 412 Precondition Failed.
func (s *S3Source) OpenPinned(ctx context.Context, key string, want Fingerprint) (PinnedReader, error) {
	etag, ok := etagOf(want)
	if !ok || etag == "" {
		return nil, fmt.Errorf("source %s: key %q: %q is not an S3 fingerprint", s.loc.Raw, key, want)
	}
	full := s.objectKey(ctx, key)
	in := &awss3.GetObjectInput{Bucket: &s.loc.Bucket, Key: &full, IfMatch: aws.String(etag)}
	if v := versionOf(want); v != "" && v != "null" {
		in.VersionId = aws.String(v)
	}
	out, err := s.opt.Client.GetObject(ctx, in)
	switch {
	case err != nil && isPreconditionFailed(err):
		return nil, &SourceChangedError{Key: key, Want: want, When: "before it was read"}
	case err != nil && isNotFound(err):
		return nil, fmt.Errorf("s3://%s/%s: %w", s.loc.Bucket, full, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("s3://%s/%s: get: %w", s.loc.Bucket, full, err)
	}
	if got := aws.ToString(out.ETag); got != "" && got != etag {
		// A server that ignored If-Match: the body is another version.
		out.Body.Close()
		return nil, &SourceChangedError{Key: key, Want: want, Got: s3Print(got, aws.ToString(out.VersionId)), When: "before it was read"}
	}
	return pinnedBody{out.Body}, nil
}

// pinnedBody is one conditional GET's body: a single response carries a
// single version, so it cannot change while it is read.
type pinnedBody struct{ io.ReadCloser }

func (pinnedBody) Recheck() error { return nil }

var (
	_ PinnedOpener = (*LocalSource)(nil)
	_ PinnedOpener = (*S3Source)(nil)
)
