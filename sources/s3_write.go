package sources

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Destination writes objects below s3://bucket/prefix.
//
// Outputs shorter than one part go up with a single PutObject at Commit;
// longer ones stream as a multipart upload with at most Concurrency parts
// in flight, completed at Commit and aborted on any failure or Abort, so
// neither a partial object nor orphan parts remain.
//
// The overwrite policy is enforced by the write itself, atomically on the
// server: OverwriteNever sends If-None-Match: * and in-place replacement
// If-Match: <planned ETag> on the PutObject / CompleteMultipartUpload, and
// the server refuses (412) an object that appeared or changed since it
// was planned. No HeadObject precedes a write: a check before the write
// could not close the window between check and write anyway, and costs a
// request per object. The condition is the guarantee, so the destination
// needs a server that honours conditional writes (AWS S3 does since
// 2024; the package tests prove it for the test server, versitygw). The
// first conditional write of a destination is preceded by one probe that
// proves it (see condProbe); a server that ignores or rejects the headers
// fails every write with *ConditionalWritesError, never overwrites.
// S3Options.NoConditionalWrites is for such servers: no conditional
// headers, a HeadObject check right before each committing write.
type S3Destination struct {
	loc           Location
	opt           S3Options
	bufs          *bufPool  // single-PutObject buffers, shared by the writers
	cond, condMPU condProbe // see condProbe
}

// NewS3Destination returns the destination for a Kind S3 location; keys
// are joined to its Key as a prefix.
func NewS3Destination(loc Location, o S3Options) (*S3Destination, error) {
	if loc.Kind != S3 {
		return nil, fmt.Errorf("sources: %s is not an s3 location", loc.Raw)
	}
	if loc.Glob != "" {
		return nil, fmt.Errorf("destination %s: globs are for sources", loc.Raw)
	}
	if err := o.fill(); err != nil {
		return nil, err
	}
	return &S3Destination{loc: loc, opt: o, bufs: &bufPool{}}, nil
}

func (d *S3Destination) String() string { return d.loc.Raw }

func (d *S3Destination) full(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return JoinKey(d.loc.Key, key), nil
}

// Stat heads the object at key.
func (d *S3Destination) Stat(ctx context.Context, key string) (Item, error) {
	full, err := d.full(key)
	if err != nil {
		return Item{}, err
	}
	it, err := headItem(ctx, d.opt.Client, d.loc.Bucket, full)
	it.Key = key
	return it, err
}

// Create starts an output; nothing is sent until the first part is full,
// and nothing is checked: an existing output under OverwriteNever, or one
// that no longer has the IfMatch ETag, fails the write at Commit
// (*ConflictError), whose condition the server evaluates atomically.
func (d *S3Destination) Create(ctx context.Context, key string, o CreateOptions) (Writer, error) {
	full, err := d.full(key)
	if err != nil {
		return nil, err
	}
	if o.IfMatch != "" {
		if _, ok := etagOf(o.IfMatch); !ok {
			return nil, fmt.Errorf("create %s: fingerprint %q is not an s3 fingerprint", key, o.IfMatch)
		}
	}
	w := &s3Writer{d: d, ctx: ctx, key: key, full: full, opt: o,
		free: make(chan []byte, d.opt.Concurrency+1), sem: make(chan struct{}, d.opt.Concurrency)}
	return w, nil
}

type s3Writer struct {
	d    *S3Destination
	ctx  context.Context
	key  string
	full string
	opt  CreateOptions

	buf  []byte
	free chan []byte   // recycled part buffers
	sem  chan struct{} // parts in flight
	wg   sync.WaitGroup

	uploadID *string
	partNum  int32
	mu       sync.Mutex
	parts    []types.CompletedPart
	err      error // first failure, sticky
	done     bool
	sealed   bool // CopyRange queued the last parts: no more writes
	copied   bool // CopyRange will add UploadPartCopy parts: no part checksums
}

func (w *s3Writer) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *s3Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: writer already committed or aborted", w.d.uri(w.full))
	}
	if err := w.failed(); err != nil {
		return 0, err
	}
	if w.sealed {
		return 0, w.fail(fmt.Errorf("write %s: after a copied range", w.d.uri(w.full)))
	}
	n := 0
	ps := int(w.d.opt.PartSize)
	for len(p) > 0 {
		if w.buf == nil {
			select {
			case w.buf = <-w.free:
				w.buf = w.buf[:0]
			default:
				// The first part starts small and grows: most objects are
				// far smaller than a part, and a part-sized buffer per
				// object costs its zeroing. Later parts are full size.
				size := ps
				if w.partNum == 0 {
					size = min(ps, 64<<10)
					w.buf = w.d.bufs.get()
				}
				if w.buf == nil {
					w.buf = make([]byte, 0, size)
				}
			}
		}
		k := min(ps-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == ps {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// begin creates the multipart upload, once.
func (w *s3Writer) begin() error {
	if w.uploadID != nil {
		return nil
	}
	var algo types.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	if w.copied {
		algo = "" // UploadPartCopy parts: see CopyRange
	}
	out, err := w.d.opt.Client.CreateMultipartUpload(w.ctx, &awss3.CreateMultipartUploadInput{
		Bucket: &w.d.loc.Bucket, Key: &w.full, ContentType: nonEmpty(w.opt.ContentType), Metadata: w.metadata(),
		// Clients from LoadDefaultConfig checksum every part (CRC32 by
		// default); the upload must declare the same algorithm or
		// completing it fails with InvalidPart.
		ChecksumAlgorithm: algo,
	})
	if err != nil {
		return w.fail(fmt.Errorf("%s: create multipart upload: %w", w.d.uri(w.full), err))
	}
	w.uploadID = out.UploadId
	return nil
}

// flush uploads w.buf as the next part, in the background.
func (w *s3Writer) flush() error {
	algo, noSum := types.ChecksumAlgorithmCrc32, func(*awss3.Options) {}
	if w.copied {
		// UploadPartCopy parts: see CopyRange.
		algo, noSum = "", func(o *awss3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired }
	}
	if err := w.begin(); err != nil {
		return err
	}
	w.partNum++
	num, buf := w.partNum, w.buf
	w.buf = nil
	w.inSlot(func() {
		body := holdBody(buf)
		out, err := w.d.opt.Client.UploadPart(w.ctx, &awss3.UploadPartInput{
			Bucket: &w.d.loc.Bucket, Key: &w.full, UploadId: w.uploadID, PartNumber: &num,
			Body: body, ContentLength: aws.Int64(int64(len(buf))),
			ChecksumAlgorithm: algo,
		}, noSum)
		body.release() // before buf is reused
		select {
		case w.free <- buf:
		default:
		}
		if err != nil {
			w.fail(fmt.Errorf("%s: upload part %d: %w", w.d.uri(w.full), num, err))
			return
		}
		w.addPart(types.CompletedPart{
			PartNumber: &num, ETag: out.ETag,
			ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256,
		})
	})
	return w.failed()
}

// inSlot runs one part's upload (sent or copied) in the background once
// an upload slot is free; it is skipped once the writer failed. Commit
// and Abort wait for every one (wg).
func (w *s3Writer) inSlot(upload func()) {
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		if w.failed() != nil {
			return
		}
		upload()
	}()
}

// addPart records a completed part for CompleteMultipartUpload.
func (w *s3Writer) addPart(p types.CompletedPart) {
	w.mu.Lock()
	w.parts = append(w.parts, p)
	w.mu.Unlock()
}

func (w *s3Writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("commit %s: writer already committed or aborted", w.d.uri(w.full))
	}
	if err := ctx.Err(); err != nil {
		w.Abort()
		return err
	}
	var err error
	if w.uploadID == nil {
		err = w.put(ctx)
	} else {
		err = w.complete(ctx)
	}
	if err != nil {
		w.Abort()
		return err
	}
	w.done = true
	return nil
}

// ProvenanceMetaKey is the user-metadata key (x-amz-meta-encjob-source-print)
// in which an S3 output carries CreateOptions.SourcePrint.
const ProvenanceMetaKey = "encjob-source-print"

// metadata is the caller's metadata with the provenance key set to this
// output's SourcePrint (or removed: metadata copied from a source that was
// itself an encjob output must not vouch for this one).
func (w *s3Writer) metadata() map[string]string {
	if w.opt.SourcePrint == "" && w.opt.Metadata[ProvenanceMetaKey] == "" {
		return w.opt.Metadata
	}
	m := make(map[string]string, len(w.opt.Metadata)+1)
	for k, v := range w.opt.Metadata {
		if !strings.EqualFold(k, ProvenanceMetaKey) {
			m[k] = v
		}
	}
	if w.opt.SourcePrint != "" {
		m[ProvenanceMetaKey] = string(w.opt.SourcePrint)
	}
	return m
}

// Provenance implements ProvenanceReader: the SourcePrint stored in the
// object's metadata when encjob wrote it. S3 offers no inode: an object
// copied with its metadata carries the print along.
func (d *S3Destination) Provenance(ctx context.Context, key string) (Fingerprint, bool, error) {
	it, err := d.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	for k, v := range it.Metadata {
		if strings.EqualFold(k, ProvenanceMetaKey) && v != "" {
			return Fingerprint(v), true, nil
		}
	}
	return "", false, nil
}

func (w *s3Writer) conditions() (ifMatch, ifNoneMatch *string) {
	if w.d.opt.NoConditionalWrites {
		return nil, nil // headCheck instead
	}
	if w.opt.IfMatch != "" {
		etag, _ := etagOf(w.opt.IfMatch)
		return &etag, nil
	}
	if w.opt.Overwrite == OverwriteNever {
		return nil, aws.String("*")
	}
	return nil, nil
}

// mapErr turns a refused condition into the *ConflictError the contract
// promises: 412 (or 409 ConditionalRequestConflict) for either condition,
// and for If-Match also 404 - AWS S3's answer when the object it should
// match is gone.
func (w *s3Writer) mapErr(op string, err error) error {
	if isPreconditionFailed(err) || w.opt.IfMatch != "" && isNoSuchKey(err) {
		if w.opt.IfMatch != "" {
			return &ConflictError{Key: w.key, Reason: ConflictChanged, Want: w.opt.IfMatch}
		}
		return &ConflictError{Key: w.key, Reason: ConflictExists}
	}
	if im, inm := w.conditions(); (im != nil || inm != nil) && isConditionRejected(err) {
		return &ConditionalWritesError{Dest: "s3://" + w.d.loc.Bucket + "/" + w.d.loc.Key, Cause: err}
	}
	return fmt.Errorf("%s: %s: %w", w.d.uri(w.full), op, err)
}

func (w *s3Writer) put(ctx context.Context) error {
	if err := w.guard(ctx, false); err != nil {
		return err
	}
	im, inm := w.conditions()
	body := holdBody(w.buf)
	_, err := w.d.opt.Client.PutObject(ctx, &awss3.PutObjectInput{
		Bucket: &w.d.loc.Bucket, Key: &w.full, Body: body, ContentLength: aws.Int64(int64(len(w.buf))),
		ContentType: nonEmpty(w.opt.ContentType), Metadata: w.metadata(), IfMatch: im, IfNoneMatch: inm,
	})
	body.release()
	w.d.bufs.put(w.buf)
	w.buf = nil
	if err != nil {
		return w.mapErr("put", err)
	}
	return nil
}

func (w *s3Writer) complete(ctx context.Context) error {
	if len(w.buf) > 0 {
		if err := w.flush(); err != nil {
			w.wg.Wait()
			return err
		}
	}
	w.wg.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	if err := w.guard(ctx, true); err != nil {
		return err
	}
	sort.Slice(w.parts, func(i, j int) bool { return *w.parts[i].PartNumber < *w.parts[j].PartNumber })
	im, inm := w.conditions()
	_, err := w.d.opt.Client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: &w.d.loc.Bucket, Key: &w.full, UploadId: w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}, IfMatch: im, IfNoneMatch: inm,
	})
	if err != nil {
		return w.mapErr("complete multipart upload", err)
	}
	return nil
}

// Abort stops the upload: in-flight parts are waited for, then the
// multipart upload is aborted (with a fresh 30 s deadline, so a cancelled
// job still cleans up).
func (w *s3Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.fail(errors.New("aborted"))
	w.wg.Wait()
	w.d.bufs.put(w.buf) // not in flight: flush hands a part over and forgets it
	w.buf = nil
	if w.uploadID == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	_, err := w.d.opt.Client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
		Bucket: &w.d.loc.Bucket, Key: &w.full, UploadId: w.uploadID,
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("%s: abort multipart upload: %w", w.d.uri(w.full), err)
	}
	return nil
}

// isNoSuchKey: the error names a missing key (not a missing upload or
// bucket, which are 404s too).
func isNoSuchKey(err error) bool {
	var nk *types.NoSuchKey
	var ae smithy.APIError
	return errors.As(err, &nk) || errors.As(err, &ae) && ae.ErrorCode() == "NoSuchKey"
}

func (d *S3Destination) uri(full string) string { return "s3://" + d.loc.Bucket + "/" + full }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

var (
	_ Destination      = (*S3Destination)(nil)
	_ ProvenanceReader = (*S3Destination)(nil)
)
