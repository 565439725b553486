package sources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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
	// Check is the probe request the server failed, such as "If-None-Match: *
	// on a PutObject over an existing object".
	Check string
	// Ignored: the server made a write whose condition could not hold (it
	// ignores the header); else it rejected the header (Cause).
	Ignored bool
	Cause   error
	// Left names a probe object that could not be removed again, if any.
	Left string
}

func (e *ConditionalWritesError) Error() string {
	what := "ignored " + e.Check + " (it made the write)"
	if !e.Ignored {
		what = fmt.Sprintf("rejected %s (%v)", e.Check, e.Cause)
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

// condProbe remembers, per destination and kind of write (a PutObject,
// a CompleteMultipartUpload), whether the server was shown to honour both
// conditions encjob writes with: If-None-Match: * (never overwrite) and
// If-Match (in place). The first conditional write of each kind asks
// first, with probe writes whose condition cannot hold, which a server
// that honours it refuses (412, 409 ConditionalRequestConflict, or AWS
// S3's 404 NoSuchKey for If-Match on a missing key) without writing:
//
//   - PutObject: If-Match on a key that does not exist; then, the key
//     created, If-None-Match: * over it;
//   - CompleteMultipartUpload (after the PutObject probe passed), on a key
//     that exists: If-None-Match: *, then If-Match with an ETag it does
//     not have.
//
// Some S3-compatible stores honour one header and not the other, or honour
// them on PutObject only, so every one is tried. A server that makes such
// a write ignores the header; one that answers 400/501 rejects it. Either
// way every write of that kind fails with *ConditionalWritesError:
// overwriting silently is never the fallback. The probe keys
// (".encjob-conditional-probe-<random>" under the destination's prefix)
// are removed again. A few requests per destination and run.
type condProbe struct {
	mu  sync.Mutex
	ok  bool
	err error // a determined failure; transient errors are not kept
}

// probeConditional probes (once) the kind of write the caller makes.
func (d *S3Destination) probeConditional(ctx context.Context, multipart bool) error {
	if err := d.cond.once(func() error { return d.probePut(ctx) }); err != nil || !multipart {
		return err
	}
	return d.condMPU.once(func() error { return d.probeComplete(ctx) })
}

// once runs probe unless an earlier run determined the outcome.
func (p *condProbe) once(probe func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ok || p.err != nil {
		return p.err
	}
	err := probe()
	var ce *ConditionalWritesError
	switch {
	case err == nil:
		p.ok = true
	case errors.As(err, &ce):
		p.err = err
	}
	return err
}

// probePrefix and 16 lowercase hex digits name a probe object.
const probePrefix = ".encjob-conditional-probe-"

func (d *S3Destination) probeKey() string {
	var r [8]byte
	rand.Read(r[:])
	return JoinKey(d.loc.Key, probePrefix+hex.EncodeToString(r[:]))
}

// isProbeObject reports whether a listed object is one of encjob's own
// probe objects: an empty object whose base name probeKey made. One is
// left behind only when every attempt to delete it failed (a run killed
// between the probe's write and its delete, or a server failing all
// the retries); it is encjob's own file, so never an item.
func isProbeObject(key string, size int64) bool {
	name := key[strings.LastIndexByte(key, '/')+1:]
	id, ok := strings.CutPrefix(name, probePrefix)
	if !ok || size != 0 || len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// refused classifies a probe write that must be refused: nil when it was,
// else a *ConditionalWritesError (the server wrote, or rejected the
// header), or the request's own error (transient: nothing is concluded).
func (d *S3Destination) refused(check string, err error, noSuchKeyToo bool) error {
	dest := "s3://" + d.loc.Bucket + "/" + d.loc.Key
	switch {
	case isPreconditionFailed(err) || noSuchKeyToo && isNoSuchKey(err):
		return nil
	case err == nil:
		return &ConditionalWritesError{Dest: dest, Check: check, Ignored: true}
	case isConditionRejected(err):
		return &ConditionalWritesError{Dest: dest, Check: check, Cause: err}
	}
	return fmt.Errorf("%s: probe for conditional writes (%s): %w", dest, check, err)
}

// removeProbe deletes a probe object (and says so in err when it cannot).
// DeleteObject is idempotent, so a failed one is tried again (beyond the
// SDK's own retries): a transient error must not leave a probe object in
// the user's prefix. One that survives every attempt is skipped by
// listings (isProbeObject).
func (d *S3Destination) removeProbe(ctx context.Context, key string, err error) error {
	ctx = context.WithoutCancel(ctx)
	var derr error
	for attempt := range probeDeleteAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		if _, derr = d.opt.Client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &d.loc.Bucket, Key: &key}); derr == nil {
			break
		}
	}
	var ce *ConditionalWritesError
	switch {
	case derr == nil:
	case errors.As(err, &ce):
		ce.Left = d.uri(key) // the error names it
	default:
		// Nothing else would say it is there: the probe succeeded (or
		// failed otherwise), so the run goes on and its listings skip
		// the object, but the user's bucket keeps it until removed.
		slog.Warn("cannot remove encjob's conditional-write probe object (an empty object; listings skip it): remove it yourself",
			"object", d.uri(key), "error", derr.Error())
	}
	return err
}

func (d *S3Destination) putProbe(ctx context.Context, key string, im, inm *string) error {
	_, err := d.opt.Client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: &d.loc.Bucket, Key: &key, Body: http.NoBody, ContentLength: aws.Int64(0),
		IfMatch: im, IfNoneMatch: inm,
	})
	return err
}

// probeDeleteAttempts bounds removeProbe's DeleteObject calls.
const probeDeleteAttempts = 5

var probeETag = aws.String(`"encjob-probe-matches-nothing"`)

func (d *S3Destination) probePut(ctx context.Context) error {
	key := d.probeKey()
	err := d.refused("If-Match on a PutObject to a key that does not exist",
		d.putProbe(ctx, key, probeETag, nil), true)
	if err != nil {
		var ce *ConditionalWritesError
		if errors.As(err, &ce) && ce.Ignored {
			return d.removeProbe(ctx, key, err)
		}
		return err
	}
	if err := d.putProbe(ctx, key, nil, nil); err != nil {
		return d.removeProbe(ctx, key, fmt.Errorf("s3://%s/%s: probe for conditional writes: %w", d.loc.Bucket, d.loc.Key, err))
	}
	err = d.refused("If-None-Match: * on a PutObject over an existing object",
		d.putProbe(ctx, key, nil, aws.String("*")), false)
	return d.removeProbe(ctx, key, err)
}

func (d *S3Destination) probeComplete(ctx context.Context) error {
	key := d.probeKey()
	if err := d.putProbe(ctx, key, nil, nil); err != nil {
		return d.removeProbe(ctx, key, fmt.Errorf("s3://%s/%s: probe for conditional writes: %w", d.loc.Bucket, d.loc.Key, err))
	}
	for _, c := range []struct {
		check   string
		im, inm *string
	}{
		{"If-None-Match: * on a CompleteMultipartUpload over an existing object", nil, aws.String("*")},
		{"If-Match on a CompleteMultipartUpload with an ETag the object does not have", probeETag, nil},
	} {
		err := d.completeProbe(ctx, key, c.im, c.inm)
		if err = d.refused(c.check, err, false); err != nil {
			return d.removeProbe(ctx, key, err)
		}
	}
	return d.removeProbe(ctx, key, nil)
}

// completeProbe uploads one part of one byte to key and completes the
// upload with the conditions; the upload is aborted unless it completed.
func (d *S3Destination) completeProbe(ctx context.Context, key string, im, inm *string) error {
	c := d.opt.Client
	mpu, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &d.loc.Bucket, Key: &key})
	if err != nil {
		return err
	}
	part, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: &d.loc.Bucket, Key: &key, UploadId: mpu.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("x"), ContentLength: aws.Int64(1)})
	if err == nil {
		_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: &d.loc.Bucket, Key: &key, UploadId: mpu.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
			IfMatch:         im, IfNoneMatch: inm})
		if err == nil {
			return nil
		}
	}
	c.AbortMultipartUpload(context.WithoutCancel(ctx), &awss3.AbortMultipartUploadInput{Bucket: &d.loc.Bucket, Key: &key, UploadId: mpu.UploadId})
	return err
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
func (w *s3Writer) guard(ctx context.Context, multipart bool) error {
	if w.d.opt.NoConditionalWrites {
		return w.headCheck(ctx)
	}
	if im, inm := w.conditions(); im == nil && inm == nil {
		return nil
	}
	return w.d.probeConditional(ctx, multipart)
}
