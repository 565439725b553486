package sources

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// RangeCopyDestination is an optional Destination capability: outputs
// made of new bytes followed by a byte range of an existing item, with
// the range copied by the storage rather than through this process (a
// rewrap: a new header, the old body). LocalDestination copies from a
// LocalSource with copy_file_range(2); S3Destination copies from an
// S3Source on the same client with UploadPartCopy.
type RangeCopyDestination interface {
	// CopiesFrom reports whether this destination's writers implement
	// RangeCopier for items of src.
	CopiesFrom(src Source) bool
}

// RangeCopier is the Writer side of RangeCopyDestination.
type RangeCopier interface {
	// CopyRange appends bytes [off, off+n) of item key of src, which was
	// planned as version pin, after everything written so far; nothing
	// may be written after it. The bytes are exactly that version's, or
	// CopyRange fails with *SourceChangedError. It returns how many of
	// the n bytes the storage copied without them passing through this
	// process (the rest did: an S3 first part must hold 5 MiB, a kernel
	// or file system may not copy across file systems). Any error fails
	// the writer: Commit returns it, and nothing is left behind.
	CopyRange(ctx context.Context, src Source, key string, pin Fingerprint, off, n int64) (inStorage int64, err error)
}

// OpenHeaderPinned opens item key of src, only if it is still version pin
// (else *SourceChangedError), for a caller that reads its first bytes and
// closes it: S3 sends conditional Range GETs of growing size, as
// OpenHeader does; a local file is opened pinned.
func OpenHeaderPinned(ctx context.Context, src Source, key string, pin Fingerprint) (io.ReadCloser, error) {
	if s, ok := src.(*S3Source); ok {
		return s.openHeaderPinned(ctx, key, pin)
	}
	po, ok := src.(PinnedOpener)
	if !ok {
		return nil, fmt.Errorf("source %s cannot open a pinned version", src)
	}
	return po.OpenPinned(ctx, key, pin)
}

// CopiesFrom: local files copy from local files (copy_file_range, falling
// back to an ordinary copy across file systems).
func (d *LocalDestination) CopiesFrom(src Source) bool {
	_, ok := src.(*LocalSource)
	return ok
}

// CopyRange implements RangeCopier.
func (w *localWriter) CopyRange(ctx context.Context, src Source, key string, pin Fingerprint, off, n int64) (int64, error) {
	fail := func(err error) (int64, error) {
		err = fmt.Errorf("copy into %s: %w", w.final, err)
		if w.err == nil {
			w.err = err
		}
		return 0, err
	}
	ls, ok := src.(*LocalSource)
	if !ok || w.done {
		return fail(errors.New("not a local source, or the writer is done"))
	}
	if err := w.endDirect(); err != nil {
		return 0, err // the writer's error already
	}
	pr, err := ls.OpenPinned(ctx, key, pin)
	if err != nil {
		return fail(err)
	}
	defer pr.Close()
	f := pr.(*pinnedFile).localFile
	kernel, err := w.kernelCopy(ctx, f, off, n)
	if err == nil && kernel < n {
		err = w.userCopy(f, off+kernel, n-kernel)
	}
	if err == nil {
		err = pr.Recheck()
	}
	if err != nil {
		return fail(err)
	}
	return kernel, nil
}

// copyFileRange is unix.CopyFileRange (a variable so a test can decline
// like a kernel that cannot copy across file systems).
var copyFileRange = unix.CopyFileRange

// kernelCopy copies with copy_file_range(2) from f at off to the output's
// file offset, until n bytes are copied or the kernel declines (another
// file system, an unsupported file system: then it returns what it
// copied and nil, and the caller copies the rest).
func (w *localWriter) kernelCopy(ctx context.Context, f *localFile, off, n int64) (int64, error) {
	if _, real := w.d.st.ops.(unixOps); !real {
		return 0, nil // a test file system: its writes are what it records
	}
	var done int64
	roff := off
	for done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		k, err := copyFileRange(f.fd, &roff, w.fd, nil, int(min(n-done, 1<<30)), 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP),
			errors.Is(err, unix.EINVAL), errors.Is(err, unix.EPERM), errors.Is(err, unix.EBADF):
			return done, nil
		case err != nil:
			return done, fmt.Errorf("copy_file_range: %w", err)
		case k == 0:
			return done, &SourceChangedError{Key: f.Name(), When: "while it was read (shorter than planned)"}
		}
		done += int64(k)
	}
	return done, nil
}

// userCopy copies n bytes from f at off through this process.
func (w *localWriter) userCopy(f *localFile, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k, err := unix.Pread(f.fd, buf[:min(n, int64(len(buf)))], off)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("read %s: %w", f.Name(), err)
		case k == 0:
			return &SourceChangedError{Key: f.Name(), When: "while it was read (shorter than planned)"}
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		off, n = off+int64(k), n-int64(k)
	}
	return nil
}

// writerOnly hides every method but Write (so io.Copy does not look for
// a ReaderFrom).
type writerOnly struct{ io.Writer }

var (
	_ RangeCopyDestination = (*LocalDestination)(nil)
	_ RangeCopier          = (*localWriter)(nil)
	_ RangeCopyDestination = (*S3Destination)(nil)
	_ RangeCopier          = (*s3Writer)(nil)
)

// ReadAtPinned reads n bytes at off of item key of src, only from version
// pin (else *SourceChangedError): a local file by pread, an S3 object by
// a Range GET conditional on the ETag. A short read is an error.
func ReadAtPinned(ctx context.Context, src Source, key string, pin Fingerprint, off int64, n int) ([]byte, error) {
	var b []byte
	var err error
	switch s := src.(type) {
	case *S3Source:
		var rc io.ReadCloser
		if rc, err = s.openRangePinned(ctx, key, pin, off, int64(n)); err == nil {
			b, err = io.ReadAll(io.LimitReader(rc, int64(n)))
			rc.Close()
		}
	case *LocalSource:
		var pr PinnedReader
		if pr, err = s.OpenPinned(ctx, key, pin); err == nil {
			b = make([]byte, n)
			var k int
			k, err = unix.Pread(pr.(*pinnedFile).fd, b, off)
			b = b[:max(k, 0)]
			if err == nil {
				err = pr.Recheck()
			}
			pr.Close()
		}
	default:
		return nil, fmt.Errorf("source %s cannot read a pinned range", src)
	}
	if err == nil && len(b) != n {
		err = fmt.Errorf("%s: %d of %d bytes at offset %d", key, len(b), n, off)
	}
	return b, err
}
