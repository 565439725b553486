package sources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ErrNoConditionalWrites: the S3 server does not honour conditional
// writes (If-None-Match: * / If-Match on PutObject and
// CompleteMultipartUpload), so it cannot refuse an overwrite atomically;
// the write was not made. Servers without them need
// S3Options.NoConditionalWrites (spec s3.noConditionalWrites).
var ErrNoConditionalWrites = errors.New("the S3 server does not honour conditional writes")

// ConditionalWritesError describes an ErrNoConditionalWrites: what the
// server did with the conditional header, and where.
type ConditionalWritesError struct {
	Dest string // s3://bucket/prefix of the destination
	// Ignored: the server stored a write whose If-Match could not hold
	// (it ignores the header); else it rejected the header (Cause).
	Ignored bool
	Cause   error
	// Left names a probe object that could not be removed again, if any.
	Left string
}

func (e *ConditionalWritesError) Error() string {
	what := "ignored If-Match on a probe write to a key that does not exist (it stored the write)"
	if !e.Ignored {
		what = fmt.Sprintf("rejected a conditional write header (%v)", e.Cause)
	}
	s := fmt.Sprintf("%s: %s: the server %s, so it cannot refuse an overwrite atomically and encjob writes nothing there; "+
		"for a server without conditional writes set s3.noConditionalWrites: true (--s3-no-conditional-writes) to check with HEAD right before each write",
		e.Dest, ErrNoConditionalWrites, what)
	if e.Left != "" {
		s += "; the probe object " + e.Left + " could not be removed"
	}
	return s
}

// Is makes errors.Is(err, ErrNoConditionalWrites) true.
func (e *ConditionalWritesError) Is(target error) bool { return target == ErrNoConditionalWrites }

// Retryable: no; the server's behaviour does not change between attempts.
func (e *ConditionalWritesError) Retryable() bool { return false }

// condProbe remembers, per destination, whether the server was shown to
// honour conditional writes. The first conditional write of a destination
// asks first: a PutObject of an empty body with If-Match on a key that
// does not exist, which a server that honours the header refuses (412, or
// AWS S3's 404 NoSuchKey) without storing anything. A server that stores
// it ignores the header (the probe object is removed again); one that
// answers 400/501 rejects it. Either way every write of the destination
// fails with *ConditionalWritesError: overwriting silently is never the
// fallback. One request per destination and run.
type condProbe struct {
	mu  sync.Mutex
	ok  bool
	err error // a determined failure; transient errors are not kept
}

func (d *S3Destination) probeConditional(ctx context.Context) error {
	p := &d.cond
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ok || p.err != nil {
		return p.err
	}
	var r [8]byte
	rand.Read(r[:])
	key := JoinKey(d.loc.Key, ".encjob-conditional-probe-"+hex.EncodeToString(r[:]))
	_, err := d.opt.Client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: &d.loc.Bucket, Key: &key, Body: http.NoBody, ContentLength: aws.Int64(0),
		IfMatch: aws.String(`"encjob-probe-matches-nothing"`),
	})
	dest := "s3://" + d.loc.Bucket + "/" + d.loc.Key
	switch {
	case isPreconditionFailed(err) || isNoSuchKey(err):
		p.ok = true
		return nil
	case err == nil:
		ce := &ConditionalWritesError{Dest: dest, Ignored: true}
		if _, derr := d.opt.Client.DeleteObject(context.WithoutCancel(ctx), &awss3.DeleteObjectInput{Bucket: &d.loc.Bucket, Key: &key}); derr != nil {
			ce.Left = d.uri(key)
		}
		p.err = ce
	case isConditionRejected(err):
		p.err = &ConditionalWritesError{Dest: dest, Cause: err}
	default:
		return fmt.Errorf("%s: probe for conditional writes: %w", dest, err)
	}
	return p.err
}

// isConditionRejected: the server answered a request carrying a
// conditional header with "not implemented" (501, or the code
// NotImplemented), or with a 400 whose message names the header.
func isConditionRejected(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if ae.ErrorCode() == "NotImplemented" {
			return true
		}
		m := strings.ToLower(ae.ErrorMessage())
		if (ae.ErrorCode() == "InvalidArgument" || ae.ErrorCode() == "InvalidRequest" || ae.ErrorCode() == "NotSupported") &&
			(strings.Contains(m, "if-match") || strings.Contains(m, "if-none-match") || strings.Contains(m, "condition")) {
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotImplemented
}

// headCheck is the overwrite check for servers without conditional
// writes (S3Options.NoConditionalWrites), made right before the write
// that commits: a HeadObject, and the policy applied to what it shows.
// Unlike the server's condition it leaves a window between the HEAD and
// the write, so a writer racing in that window can be overwritten; it is
// the best such a server allows.
func (w *s3Writer) headCheck(ctx context.Context) error {
	if w.opt.IfMatch == "" && w.opt.Overwrite != OverwriteNever {
		return nil
	}
	it, err := headItem(ctx, w.d.opt.Client, w.d.loc.Bucket, w.full)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	switch {
	case w.opt.IfMatch != "":
		if !exists {
			return &ConflictError{Key: w.key, Reason: ConflictChanged, Want: w.opt.IfMatch}
		}
		if want, _ := etagOf(w.opt.IfMatch); it.ETag != want {
			return &ConflictError{Key: w.key, Reason: ConflictChanged, Want: w.opt.IfMatch, Got: it.Print}
		}
	case exists:
		return &ConflictError{Key: w.key, Reason: ConflictExists}
	}
	return nil
}

// guard runs before the write that commits an output: the HEAD check
// when the server has no conditional writes, else, when the write
// carries a condition, the destination's probe (once).
func (w *s3Writer) guard(ctx context.Context) error {
	if w.d.opt.NoConditionalWrites {
		return w.headCheck(ctx)
	}
	if im, inm := w.conditions(); im == nil && inm == nil {
		return nil
	}
	return w.d.probeConditional(ctx)
}
