package crypto

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"

	"github.com/encjob/encjob/crypto/ecsig"
)

// DecryptOptions configures one decryption.
type DecryptOptions struct {
	CMM              MaterialsManager
	CommitmentPolicy CommitmentPolicy
	// MaxEncryptedDataKeys rejects messages with more EDKs, before any key
	// is tried (0: no limit).
	MaxEncryptedDataKeys int
	// MaxBodyLength bounds what one decryption step buffers, as the ESDKs'
	// and aws-encryption-cli's max body length does: the frame length of a
	// framed message (checked in the header, before any key is used) and
	// the content length of a non-framed one (0: no limit). It never bounds
	// the total size of a framed message: frames stream, so a 1 MB message
	// in 1 KiB frames passes a limit of 1024. A non-framed body is
	// buffered whole, so set this when reading untrusted non-framed input.
	MaxBodyLength int64
	// UnsignedOnly rejects signed suites before any key is used, like
	// aws-encryption-cli --decrypt-unsigned.
	UnsignedOnly bool
	// Concurrency caps the cores one message uses (0: GOMAXPROCS).
	Concurrency int
	// ReproducedContext is the encryption context the caller expects (the
	// ESDKs' decrypt input): every pair the header stores must agree with
	// it, and its other pairs are the ones a required-encryption-context
	// CMM kept out of the header - they must be given to decrypt such a
	// message, and the header authentication checks their values.
	// Mismatches fail with ErrReproducedContext.
	ReproducedContext EncryptionContext
	// ForbidNetV400Retry turns off the ESDKs' compatibility retry for
	// messages ESDK-.NET 4.0.0 wrote off-specification (see
	// authenticateHeader). The current ESDKs allow it by default, as does
	// the zero value here.
	ForbidNetV400Retry bool
}

// Decryptor is a streaming ESDK decryptor. Read returns plaintext only
// from frames whose tag verified, and returns io.EOF only after the whole
// message - every frame, the footer signature of signed suites, and the
// absence of trailing bytes - verified. Any other outcome is an error from
// Read: a caller that reads until io.EOF cannot mistake a truncated or
// forged stream for a good one. Plaintext read before an error must be
// discarded by the caller.
type Decryptor struct {
	r       *bufio.Reader
	hdr     *Header
	keys    *messageKeys
	mid     []byte
	sig     hash.Hash
	vk      *ecdsa.PublicKey
	seq     uint32
	maxBody int64
	workers int
	out     []byte // verified plaintext not yet read
	outBuf  []byte // storage behind out, reused batch after batch
	frames  []rawFrame
	offs    []int
	errs    []error
	// Room in the decryptor itself for the frames of a small message.
	frameArr [4]rawFrame
	offArr   [5]int
	errArr   [4]error
	raw      []byte     // scratch for raw frames
	ah       *asyncHash // the signature hash on its own goroutine, or nil
	// In WriteTo on more than one core (writeToPiped): the pipe hashing
	// raw batches for the signature and the one writing plaintext, each on
	// goroutines of their own, and the buffers taken from them.
	hp, wp       *pipe
	rawPB, outPB *pipeBuf
	// ownR: r is a pooled reader to give back with the buffers (boxes)
	// once the message is over (release).
	ownR     bool
	boxes    boxes
	aad      [aadMax]byte // scratch for the AAD of a frame opened on this goroutine
	done     bool         // final frame verified
	verified bool         // footer and end of input verified
	err      error
}

// NewDecryptor reads and authenticates the header of the message in src
// (unwrapping its data key through o.CMM) and returns the reader of its
// plaintext.
func NewDecryptor(ctx context.Context, src io.Reader, o DecryptOptions) (*Decryptor, error) {
	if o.CMM == nil {
		return nil, errors.New("crypto: DecryptOptions.CMM is nil")
	}
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = takeReader(src)
	}
	// openHeader authenticates the header the same way for decryption
	// and rewrap (crypto/rewrap.go).
	h, m, keys, err := openHeader(ctx, br, o)
	if err != nil {
		if !ok {
			putReader(br)
		}
		return nil, err
	}
	clear(m.DataKey)
	s := h.Suite
	d := &Decryptor{r: br, ownR: !ok, hdr: h, keys: keys, mid: h.MessageID, vk: m.VerificationKey, seq: 1,
		maxBody: o.MaxBodyLength, workers: o.Concurrency}
	d.frames, d.offs, d.errs = d.frameArr[:0], d.offArr[:0], d.errArr[:0]
	if d.workers <= 0 {
		d.workers = runtime.GOMAXPROCS(0)
	}
	if s.Signed() {
		d.sig = s.signHash()
		d.sig.Write(h.body)
		if h.Version == 1 {
			d.sig.Write(h.AuthIV)
		}
		d.sig.Write(h.AuthTag)
		if d.workers > 1 && h.ContentType == ContentFramed {
			d.ah = newAsyncHash(d.sig)
		}
	}
	return d, nil
}

// Header returns the authenticated header.
func (d *Decryptor) Header() *Header { return d.hdr }

// Verified reports whether the whole message has been read and verified.
func (d *Decryptor) Verified() bool { return d.verified }

// Read implements io.Reader.
func (d *Decryptor) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			d.release()
			return 0, d.err
		}
		if d.verified {
			d.release()
			return 0, io.EOF
		}
		if d.done {
			d.err = d.finish()
			if d.err == nil {
				d.verified = true
			}
			continue
		}
		if err := d.readBatch(); err != nil {
			d.err = err
			d.out = nil
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// WriteTo writes the plaintext to w with the guarantees of Read (io.Copy
// uses it, saving a copy of every byte): it returns nil only after the
// whole message verified.
func (d *Decryptor) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(d.out) > 0 {
			n, err := w.Write(d.out)
			total += int64(n)
			d.out = d.out[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		switch {
		case d.err != nil:
			d.release()
			return total, d.err
		case d.verified:
			d.release()
			return total, nil
		case d.done:
			if d.err = d.finish(); d.err == nil {
				d.verified = true
			}
		case d.workers > 1 && d.hdr.ContentType == ContentFramed:
			n, err := d.writeToPiped(w)
			return total + n, err
		default:
			if err := d.readBatch(); err != nil {
				d.err = err
				d.out = nil
			}
		}
	}
}

// writeToPiped is WriteTo on more than one core: this goroutine reads and
// opens batch after batch while one goroutine hashes the raw batches for
// the signature (keeping a core to itself: the hash is serial) and another
// writes the plaintext. It returns nil only after everything was written
// and the whole message verified; both goroutines have ended when it
// returns, whatever happened.
func (d *Decryptor) writeToPiped(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	d.wp = newPipe(cw, func(err error) error { return err }, nil)
	if d.sig != nil {
		if d.ah != nil {
			d.ah.wait() // batches Read hashed come first
			d.ah = nil
		}
		d.hp = newPipe(nil, nil, d.sig)
	}
	var err error
	for err == nil && !d.done {
		err = d.readBatch()
	}
	if d.hp != nil {
		d.hp.wait() // the signature hash is complete after it
		d.hp = nil
	}
	wp := d.wp
	werr := wp.wait()
	d.wp, d.rawPB, d.outPB, d.raw = nil, nil, nil, nil
	switch {
	case err != nil && wp.failed.Load():
		return cw.n, err // the destination failed, not the message
	case err != nil:
		d.err = err
	case werr != nil:
		return cw.n, werr
	default:
		if d.err = d.finish(); d.err == nil {
			d.verified = true
		}
	}
	d.release()
	return cw.n, d.err
}

// release gives the pooled reader and buffers back once the message is
// over (verified, or failed for good): nothing reads them afterwards,
// since Read and WriteTo only report the outcome from then on. The
// plaintext buffer is wiped.
func (d *Decryptor) release() {
	if d.ownR && d.r != nil {
		putReader(d.r)
	}
	d.r = nil
	d.boxes.put(d.raw, false)
	d.boxes.put(d.outBuf, true)
	d.raw, d.outBuf, d.out = nil, nil, nil
}

// countWriter counts what was written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// read reads exactly n bytes of body, hashing them for the signature.
func (d *Decryptor) read(dst []byte, what string) error {
	if _, err := io.ReadFull(d.r, dst); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return malformed("truncated message: input ended in %s", what)
		}
		return fmt.Errorf("crypto: reading %s: %w", what, err)
	}
	if d.sig != nil {
		d.sig.Write(dst)
	}
	return nil
}

// checkFrameLimit applies DecryptOptions.MaxBodyLength to a header: the
// frame length of a framed message. Every frame's content is at most the
// frame length (the readers check the final frame's claim against it), so
// this one check bounds every frame; the non-framed content length is
// checked by checkNonFramedLimit once it is read.
func checkFrameLimit(h *Header, limit int64) error {
	if limit > 0 && h.ContentType == ContentFramed && int64(h.FrameLength) > limit {
		return fmt.Errorf("%w: frame length %d exceeds the maximum body length of %d bytes", ErrPolicy, h.FrameLength, limit)
	}
	return nil
}

// checkNonFramedLimit applies DecryptOptions.MaxBodyLength to the content
// length of a non-framed message.
func checkNonFramedLimit(n uint64, limit int64) error {
	if limit > 0 && n > uint64(limit) {
		return fmt.Errorf("%w: non-framed content length %d exceeds the maximum body length of %d bytes", ErrPolicy, n, limit)
	}
	return nil
}

// rawFrame locates one frame in the raw bytes of its batch.
type rawFrame struct {
	seq   uint32
	final bool
	iv    int // offset of the IV
	ct    int // offset of ciphertext || tag
	end   int // end of the tag
}

// readBatch reads up to a batch of frames, verifies and decrypts them
// (on several cores when worthwhile), and leaves the plaintext in d.out.
// The batch's bytes are read exactly as they stand in the message, so the
// signature hash takes them in one piece (on its own core for a large
// message, see asyncHash).
func (d *Decryptor) readBatch() error {
	if d.hdr.ContentType == ContentNonFramed {
		return d.readNonFramed()
	}
	fl := int(d.hdr.FrameLength)
	bb := batchBytes
	if d.workers > 1 {
		bb = pipeBatchBytes
	}
	maxFrames := max(1, min(max(bb/fl, d.workers), (16<<20)/fl))
	frames := d.frames[:0]
	defer func() { d.frames = frames[:0] }()
	if d.raw == nil && d.hp == nil {
		// A buffer of readChunk, the most a read grows by before the
		// bytes are there: most small messages fit in it whole.
		d.raw = d.boxes.take(readChunk)
	}
	raw := d.raw[:0]
	if d.hp != nil {
		// Capacity grows with the bytes read (appendFull), never with a
		// frame length claimed.
		d.rawPB = d.hp.get(0)
		raw = d.rawPB.b
	}
	var size int
	for len(frames) < maxFrames && !d.done {
		f, err := d.readFrame(&raw, fl)
		if err != nil {
			d.raw = raw
			return err
		}
		frames = append(frames, f)
		size += f.end - f.ct - tagLen
	}
	d.raw = raw
	if err := d.hashBatch(raw); err != nil {
		return err
	}
	out := d.outSpace(size)
	offs := append(d.offs[:0], 0)
	for i, f := range frames {
		offs = append(offs, offs[i]+f.end-f.ct-tagLen)
	}
	d.offs = offs
	errs := append(d.errs[:0], make([]error, len(frames))...)
	d.errs = errs
	if w := d.openWorkers(); w == 1 || len(frames) < 2*minPerWorker {
		d.openFrames(frames, raw, out, d.aad[:0], 0, len(frames)) // no closure, no goroutine
	} else {
		parallel(len(frames), w, func(lo, hi int) {
			aad := d.aad[:0] // the range no other goroutine opens
			if lo > 0 {
				aad = make([]byte, 0, aadMax)
			}
			d.openFrames(frames, raw, out, aad, lo, hi)
		})
	}
	for _, err := range errs {
		if err != nil {
			clear(out)
			return err
		}
	}
	if d.wp != nil {
		pb := d.outPB
		pb.b, d.outPB = out, nil
		return d.wp.put(pb)
	}
	d.out = out
	return nil
}

// openFrames verifies and decrypts frames[lo:hi] of a batch (raw) into
// their places in out (d.offs), recording failures in d.errs; aad is
// scratch of this goroutine.
func (d *Decryptor) openFrames(frames []rawFrame, raw, out, aad []byte, lo, hi int) {
	for i := lo; i < hi; i++ {
		f := frames[i]
		content := aadFrame
		if f.final {
			content = aadFinalFrame
		}
		aad = bodyAAD(aad, d.mid, content, f.seq, uint64(f.end-f.ct-tagLen))
		o := d.offs[i]
		if _, err := d.keys.aead.Open(out[o:o], raw[f.iv:f.iv+ivLen], raw[f.ct:f.end], aad); err != nil {
			d.errs[i] = fmt.Errorf("%w: frame %d does not verify", ErrAuthentication, f.seq)
		}
	}
}

// outSpace is where a batch's size bytes of plaintext go: a buffer of the
// write pipe, or the one reused batch after batch.
func (d *Decryptor) outSpace(size int) []byte {
	if d.wp != nil {
		d.outPB = d.wp.get(size)
		return d.outPB.b[:size]
	}
	if cap(d.outBuf) < size {
		old := d.outBuf
		d.outBuf = d.boxes.take(size)
		d.boxes.put(old, true)
	}
	return d.outBuf[:size]
}

// openWorkers is how many goroutines open a batch: one core is left to
// the signature hash when it runs on its own.
func (d *Decryptor) openWorkers() int {
	if d.ah != nil || d.hp != nil {
		return max(1, d.workers-1)
	}
	return d.workers
}

// hashBatch feeds a batch's bytes to the signature hash: inline, or on
// the hash's own goroutine, in which case raw stays untouched until the
// next batch and d.raw becomes the buffer the hash has finished with (or,
// piped, the buffer goes to the hash pipe and is only read here until
// the next batch takes another).
func (d *Decryptor) hashBatch(raw []byte) error {
	switch {
	case d.sig == nil:
	case d.hp != nil:
		d.rawPB.b = raw
		pb := d.rawPB
		d.rawPB, d.raw = nil, nil
		return d.hp.put(pb)
	case d.ah == nil:
		d.sig.Write(raw)
	default:
		d.raw = d.ah.write(raw)[:0]
	}
	return nil
}

// readFrame appends the next frame's bytes, as they stand in the message,
// to *raw and checks its sequence number and lengths.
func (d *Decryptor) readFrame(raw *[]byte, fl int) (rawFrame, error) {
	b := *raw
	defer func() { *raw = b }()
	var err error
	field := func(what string) (uint32, error) {
		p := len(b)
		if b, err = appendFull(d.r, b, 4, what); err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint32(b[p:]), nil
	}
	seq, err := field("a frame's sequence number")
	if err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{seq: seq}
	if f.seq == 0xFFFFFFFF {
		f.final = true
		if f.seq, err = field("the final frame's sequence number"); err != nil {
			return f, err
		}
	}
	if f.seq != d.seq {
		return f, fmt.Errorf("%w: frame sequence number %d, expected %d", ErrAuthentication, f.seq, d.seq)
	}
	f.iv = len(b)
	if !f.final {
		// A regular frame: IV, content and tag in one read.
		if b, err = appendFull(d.r, b, ivLen+fl+tagLen, "a frame"); err != nil {
			return f, err
		}
		f.ct, f.end = f.iv+ivLen, len(b)
		if d.seq == 0xFFFFFFFF {
			return f, malformed("more than 2^32-1 frames")
		}
		d.seq++
		return f, nil
	}
	if b, err = appendFull(d.r, b, ivLen, "a frame IV"); err != nil {
		return f, err
	}
	n, err := field("the final frame's content length")
	if err != nil {
		return f, err
	}
	if int64(n) > int64(fl) {
		return f, malformed("final frame content length %d exceeds the frame length %d", n, fl)
	}
	d.done = true
	f.ct = len(b)
	if b, err = appendFull(d.r, b, int(n)+tagLen, "frame content"); err != nil {
		return f, err
	}
	f.end = len(b)
	d.seq++
	return f, nil
}

// readChunk is the most a read grows a buffer by before the bytes are
// there: the frame length and every other length in a message is a claim,
// and memory must follow the bytes actually read, not the claim (a
// 236-byte file claiming 2 GiB frames costs kilobytes, not 2 GiB).
const readChunk = 64 << 10

// readAppend reads exactly n bytes of body onto d.raw, hashing them for
// the signature, growing d.raw at most readChunk ahead of the input.
func (d *Decryptor) readAppend(n int, what string) error {
	var err error
	start := len(d.raw)
	d.raw, err = appendFull(d.r, d.raw, n, what)
	if err != nil {
		return err
	}
	if d.sig != nil {
		d.sig.Write(d.raw[start:])
	}
	return nil
}

// appendFull appends exactly n bytes from r to dst. Capacity grows with
// the bytes read (at most readChunk ahead of them, then geometrically), so
// a length field that lies costs no more than the input really holds. A
// short input is ErrMalformed naming what was being read.
func appendFull(r io.Reader, dst []byte, n int, what string) ([]byte, error) {
	for done := 0; done < n; {
		c := n - done
		if cap(dst)-len(dst) < c {
			// Not already allocated: ask for no more than the input has
			// shown it holds (4 KiB, then doubling, at most readChunk).
			c = min(c, readChunk, max(4<<10, done))
		}
		dst = grow(dst, c)
		if _, err := io.ReadFull(r, dst[len(dst)-c:]); err != nil {
			dst = dst[:len(dst)-c]
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return dst, malformed("truncated message: input ended in %s", what)
			}
			return dst, fmt.Errorf("crypto: reading %s: %w", what, err)
		}
		done += c
	}
	return dst, nil
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func (d *Decryptor) readNonFramed() error {
	iv := make([]byte, ivLen)
	if err := d.read(iv, "the body IV"); err != nil {
		return err
	}
	var lenb [8]byte
	if err := d.read(lenb[:], "the body length"); err != nil {
		return err
	}
	n := binary.BigEndian.Uint64(lenb[:])
	if n > 1<<36-32 {
		return malformed("non-framed body length %d exceeds the AES-GCM limit", n)
	}
	if err := checkNonFramedLimit(n, d.maxBody); err != nil {
		return err
	}
	// Read incrementally so a forged length cannot make us allocate more
	// than the input actually holds.
	if err := d.readAppend(int(n)+tagLen, "the body"); err != nil {
		return err
	}
	ct := d.raw
	d.raw = nil
	aad := bodyAAD(nil, d.mid, aadSingle, 1, n)
	pt, err := d.keys.aead.Open(ct[:0], iv, ct, aad)
	if err != nil {
		return fmt.Errorf("%w: body does not verify", ErrAuthentication)
	}
	d.done = true
	d.out = pt
	return nil
}

// finish verifies the footer and that nothing follows the message.
func (d *Decryptor) finish() error {
	if d.sig != nil {
		if d.ah != nil {
			d.ah.wait()
		}
		digest := d.sig.Sum(nil)
		d.sig = nil // the footer is not part of the signed data
		var lenb [2]byte
		if err := d.read(lenb[:], "the footer"); err != nil {
			return err
		}
		sig, err := appendFull(d.r, nil, int(binary.BigEndian.Uint16(lenb[:])), "the footer signature")
		if err != nil {
			return err
		}
		if !ecsig.Verify(d.vk, digest, sig) {
			return fmt.Errorf("%w: signature does not verify", ErrAuthentication)
		}
	}
	if _, err := d.r.ReadByte(); err == nil {
		return malformed("unexpected bytes after the end of the message")
	} else if err != io.EOF {
		return fmt.Errorf("crypto: reading after the message: %w", err)
	}
	return nil
}

// Decrypt decrypts a whole message held in memory.
func Decrypt(ctx context.Context, msg []byte, o DecryptOptions) ([]byte, *Header, error) {
	d, err := NewDecryptor(ctx, &sliceReader{b: msg}, o)
	if err != nil {
		return nil, nil, err
	}
	out := growBuffer{b: make([]byte, 0, len(msg))}
	if _, err := io.Copy(&out, d); err != nil {
		clear(out.b)
		return nil, nil, err
	}
	return out.b, d.hdr, nil
}
