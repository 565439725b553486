package crypto

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	"github.com/encjob/encjob/crypto/ecsig"
)

// DefaultFrameLength is the frame length used when none is chosen, as in
// the other ESDKs.
const DefaultFrameLength = 4096

// MaxFrameLength is the largest frame length encjob writes.
const MaxFrameLength = 1<<31 - 1

// maxNonFramedBuffer bounds the plaintext a non-framed encryption buffers:
// a non-framed body is one AES-GCM operation, so it cannot stream.
const maxNonFramedBuffer = 1 << 30

// batchBytes is the plaintext gathered before frames are sealed together,
// on several cores when there are enough of them.
const batchBytes = 256 << 10

// EncryptOptions configures one encryption.
type EncryptOptions struct {
	CMM             MaterialsManager
	Suite           *Suite // nil: DefaultSuiteFor(CommitmentPolicy)
	Context         EncryptionContext
	FrameLength     int   // 0 with Framing unset: DefaultFrameLength
	NonFramed       bool  // write a non-framed body (needs PlaintextLength)
	PlaintextLength int64 // exact plaintext length, used only when KnownLength
	KnownLength     bool  // PlaintextLength is exact
	// PlaintextLengthBound, when the exact length is unknown, is an upper
	// bound the materials manager may count against its limits (a
	// caching CMM needs a length; a bound over-counts, which is safe).
	PlaintextLengthBound int64
	CommitmentPolicy     CommitmentPolicy
	// MaxEncryptedDataKeys fails the encryption when the materials carry
	// more EDKs (0: no limit).
	MaxEncryptedDataKeys int
	// Concurrency caps the cores one message uses (0: GOMAXPROCS).
	Concurrency int
}

// Encryptor is a streaming ESDK encryptor. Write plaintext to it; Close
// writes the final frame and the footer (it does not close the
// destination). An Encryptor is not safe for concurrent use.
type Encryptor struct {
	dst       io.Writer
	hdr       *Header
	keys      *messageKeys
	mid       []byte
	frameLen  int
	nonFramed bool
	want      int64 // expected plaintext length when known, else -1
	written   int64
	seq       uint32 // next sequence number
	buf       []byte // plaintext not yet sealed
	batchCap  int
	workers   int
	sig       hash.Hash
	signer    *ecdsa.PrivateKey
	err       error
	closed    bool

	// The pipeline that overlaps sealing with writing and hashing (on
	// more than one core); started only for messages longer than one
	// batch.
	p     *pipe
	spare []byte       // a sealed-frame buffer to reuse when there is no pipeline
	boxes boxes        // carry e.buf and e.spare back to the pool (bufpool.go)
	aad   [aadMax]byte // scratch for the AAD of a frame sealed on this goroutine
}

// NewEncryptor gets materials, writes the message header to dst and returns
// the writer for the body.
func NewEncryptor(ctx context.Context, dst io.Writer, o EncryptOptions) (*Encryptor, error) {
	if o.CMM == nil {
		return nil, errors.New("crypto: EncryptOptions.CMM is nil")
	}
	if err := o.Context.ValidateUser(); err != nil {
		return nil, err
	}
	frameLen, want, err := o.layout()
	if err != nil {
		return nil, err
	}
	reqLen := want
	if reqLen < 0 && o.PlaintextLengthBound > 0 {
		reqLen = o.PlaintextLengthBound
	}
	req := EncryptionRequest{Suite: o.Suite, Context: o.Context, PlaintextLength: reqLen, CommitmentPolicy: o.CommitmentPolicy}
	m, err := o.CMM.GetEncryptionMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	defer clear(m.DataKey)
	if err := o.CommitmentPolicy.checkEncrypt(m.Suite); err != nil {
		return nil, err
	}
	if o.MaxEncryptedDataKeys > 0 && len(m.EncryptedDataKeys) > o.MaxEncryptedDataKeys {
		return nil, fmt.Errorf("%w: %d encrypted data keys, more than the limit of %d", ErrPolicy, len(m.EncryptedDataKeys), o.MaxEncryptedDataKeys)
	}
	s := m.Suite
	// Pairs of required keys are authenticated (header tag) but not stored.
	stored, only, err := splitRequired(m.Context, m.RequiredContextKeys)
	if err != nil {
		return nil, err
	}
	h := &Header{Version: s.MessageVersion, Suite: s, Context: stored, RequiredContext: only, EncryptedDataKeys: m.EncryptedDataKeys,
		ContentType: ContentFramed, FrameLength: uint32(frameLen), AuthIV: make([]byte, ivLen)}
	if o.NonFramed {
		h.ContentType = ContentNonFramed
	}
	if h.Version == 1 {
		h.Type, h.IVLength = v1TypeCustomerAEData, ivLen
		h.MessageID = make([]byte, messageIDV1)
	} else {
		h.MessageID = make([]byte, messageIDV2)
	}
	if _, err := rand.Read(h.MessageID); err != nil {
		return nil, err
	}
	keys, err := deriveKeys(s, m.DataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	h.CommitKey = keys.commitKey
	body, err := h.marshalBody()
	if err != nil {
		return nil, err
	}
	aad, err := h.authAAD(false)
	if err != nil {
		return nil, err
	}
	h.AuthTag = keys.aead.Seal(nil, h.AuthIV, nil, aad)
	e := &Encryptor{dst: dst, hdr: h, keys: keys, mid: h.MessageID, frameLen: frameLen, nonFramed: o.NonFramed,
		want: want, seq: 1, signer: m.SigningKey}
	e.workers = o.Concurrency
	if e.workers <= 0 {
		e.workers = runtime.GOMAXPROCS(0)
	}
	if !o.NonFramed {
		bb := batchBytes
		if e.workers > 1 {
			bb = pipeBatchBytes
		}
		n := max(bb/frameLen, e.workers)
		n = max(1, min(n, (16<<20)/frameLen))
		e.batchCap = n * frameLen
	}
	if s.Signed() {
		e.sig = s.signHash()
	}
	if err := e.emit(body); err != nil {
		return nil, err
	}
	if h.Version == 1 {
		if err := e.emit(h.AuthIV); err != nil {
			return nil, err
		}
	}
	if err := e.emit(h.AuthTag); err != nil { // the auth section, without a copy
		return nil, err
	}
	return e, nil
}

// Header returns the header written for this message.
func (e *Encryptor) Header() *Header { return e.hdr }

func (e *Encryptor) emit(b []byte) error {
	if _, err := e.dst.Write(b); err != nil {
		return fmt.Errorf("crypto: writing ciphertext: %w", err)
	}
	if e.sig != nil {
		e.sig.Write(b)
	}
	return nil
}

// Write encrypts p. Full frames are sealed as soon as they are complete.
func (e *Encryptor) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.closed {
		return 0, errors.New("crypto: write after Close")
	}
	if e.want >= 0 && e.written+int64(len(p)) > e.want {
		e.err = fmt.Errorf("crypto: plaintext is longer than the declared %d bytes", e.want)
		return 0, e.err
	}
	n := len(p)
	e.written += int64(n)
	if e.nonFramed {
		if e.buf == nil {
			e.buf = make([]byte, 0, e.want)
		}
		e.buf = append(e.buf, p...)
		return n, nil
	}
	for len(p) > 0 {
		if e.buf == nil {
			e.buf = e.getBuf(min(e.batchCap, max(len(p), e.frameLen)))
		}
		room := e.batchCap - len(e.buf)
		if room == 0 {
			if err := e.flushFrames(); err != nil {
				e.err = err
				return n - len(p), err
			}
			continue
		}
		if len(e.buf)+min(room, len(p)) > cap(e.buf) {
			e.growBuf(min(e.batchCap, 2*cap(e.buf)+len(p)))
		}
		k := min(room, len(p))
		e.buf = append(e.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

// ReadFrom encrypts everything r yields, reading straight into the frame
// batch (io.Copy uses it, saving a copy of every byte).
func (e *Encryptor) ReadFrom(r io.Reader) (int64, error) {
	if e.nonFramed || e.err != nil || e.closed {
		return io.Copy(writerOnly{e}, r)
	}
	var total int64
	for {
		if e.buf == nil {
			size := e.batchCap
			if e.want >= 0 && e.want < int64(size) {
				// A small message: room for all of it and one byte more,
				// which is how the end of the input shows.
				size = max(int(e.want)+1, min(e.frameLen, size))
			}
			e.buf = e.getBuf(size)
		}
		if len(e.buf) == e.batchCap {
			if err := e.flushFrames(); err != nil {
				e.err = err
				return total, err
			}
		}
		if len(e.buf) == cap(e.buf) {
			e.growBuf(e.batchCap)
		}
		n, err := r.Read(e.buf[len(e.buf):min(cap(e.buf), e.batchCap)])
		if n > 0 {
			total += int64(n)
			e.written += int64(n)
			e.buf = e.buf[:len(e.buf)+n]
			if e.want >= 0 && e.written > e.want {
				e.err = fmt.Errorf("crypto: plaintext is longer than the declared %d bytes", e.want)
				return total, e.err
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// getBuf returns an empty buffer for at least n bytes: the spare sealed
// frame buffer when it is large enough, else one from the pool.
func (e *Encryptor) getBuf(n int) []byte {
	if b := e.spare; b != nil && cap(b) >= n {
		e.spare = nil
		return b[:0]
	}
	return e.boxes.take(n)
}

// growBuf moves the plaintext batch to a buffer for n bytes, wiping and
// returning the old one.
func (e *Encryptor) growBuf(n int) {
	old := e.buf
	e.buf = append(e.getBuf(n), old...)
	e.boxes.put(old, true)
}

// release gives the buffers back to the pool once the message is done
// (Close, Abort); the plaintext batch is wiped.
func (e *Encryptor) release() {
	if !e.nonFramed {
		e.boxes.put(e.buf, true)
	}
	e.boxes.put(e.spare, false)
	e.buf, e.spare = nil, nil
}

// flushFrames seals every complete frame in e.buf as regular frames and
// hands them to the writer; the remainder (less than a frame) stays.
func (e *Encryptor) flushFrames() error {
	nFrames := len(e.buf) / e.frameLen
	if nFrames == 0 {
		return nil
	}
	if uint64(e.seq)+uint64(nFrames) >= 0xFFFFFFFF {
		return errors.New("crypto: message needs more than 2^32-1 frames")
	}
	frameSize := 4 + ivLen + e.frameLen + tagLen
	var pb *pipeBuf
	var out []byte
	if e.workers > 1 {
		if e.p == nil {
			e.p = newPipe(e.dst, wrapCiphertextWrite, e.sig)
		}
		pb = e.p.get(nFrames * frameSize)
		out = pb.b[:nFrames*frameSize]
	} else {
		out = e.getBuf(nFrames * frameSize)[:nFrames*frameSize]
	}
	if w := e.sealWorkers(); w == 1 || nFrames < 2*minPerWorker {
		e.sealFrames(out, e.aad[:0], 0, nFrames) // no closure, no goroutine
	} else {
		parallel(nFrames, w, func(lo, hi int) {
			aad := e.aad[:0] // the range no other goroutine seals
			if lo > 0 {
				aad = make([]byte, 0, aadMax)
			}
			e.sealFrames(out, aad, lo, hi)
		})
	}
	e.seq += uint32(nFrames)
	rest := copy(e.buf, e.buf[nFrames*e.frameLen:])
	e.buf = e.buf[:rest]
	if pb != nil {
		// Written and hashed on the pipe's goroutines while the next
		// batch is read and sealed here.
		pb.b = out
		return e.p.put(pb)
	}
	err := e.emit(out)
	e.spare = out
	return err
}

// sealFrames seals the regular frames lo..hi-1 of e.buf into out (frames
// of frameSize bytes, numbered from e.seq); aad is scratch of this
// goroutine.
func (e *Encryptor) sealFrames(out, aad []byte, lo, hi int) {
	frameSize := 4 + ivLen + e.frameLen + tagLen
	for i := lo; i < hi; i++ {
		seq := e.seq + uint32(i)
		f := out[i*frameSize : (i+1)*frameSize]
		binary.BigEndian.PutUint32(f, seq)
		iv := f[4 : 4+ivLen]
		clear(iv[:8])
		binary.BigEndian.PutUint32(iv[8:], seq)
		aad = bodyAAD(aad, e.mid, aadFrame, seq, uint64(e.frameLen))
		pt := e.buf[i*e.frameLen : (i+1)*e.frameLen]
		e.keys.aead.Seal(f[4+ivLen:4+ivLen], iv, pt, aad)
	}
}

func wrapCiphertextWrite(err error) error { return fmt.Errorf("crypto: writing ciphertext: %w", err) }

// minPerWorker is the fewest frames worth a goroutine of their own.
const minPerWorker = 4

// parallel runs fn over [0,n) split into contiguous ranges, on up to
// workers goroutines when n is large enough to pay for them.
func parallel(n, workers int, fn func(lo, hi int)) {
	w := min(workers, n/minPerWorker)
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + w - 1) / w
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}

// sealWorkers is how many goroutines seal a batch: one core is left to
// the signature hash, which runs on its own once the pipeline runs.
func (e *Encryptor) sealWorkers() int {
	if e.sig != nil {
		return max(1, e.workers-1)
	}
	return e.workers
}

// drain stops the writer goroutine and returns its error.
func (e *Encryptor) drain() error {
	if e.p == nil {
		return nil
	}
	err := e.p.wait()
	e.p = nil
	return err
}

// Close seals the final frame (or the non-framed body), writes the footer
// for signed suites, and reports any error. It does not close dst.
func (e *Encryptor) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	if e.err != nil {
		e.drain()
		e.release()
		return e.err
	}
	e.err = e.finish()
	e.release()
	return e.err
}

// Abort stops the encryptor without writing the end of the message (the
// output is then an incomplete message that no decryptor accepts).
func (e *Encryptor) Abort() {
	e.closed = true
	if e.err == nil {
		e.err = errors.New("crypto: encryption aborted")
	}
	e.drain()
	e.release()
}

func (e *Encryptor) finish() error {
	if e.want >= 0 && e.written != e.want {
		e.drain()
		return fmt.Errorf("crypto: plaintext is %d bytes, %d were declared", e.written, e.want)
	}
	var tail []byte
	if e.nonFramed {
		aad := bodyAAD(e.aad[:0], e.mid, aadSingle, 1, uint64(len(e.buf)))
		tail = e.getBuf(ivLen + 8 + len(e.buf) + tagLen)
		tail = appendFrameIV(tail, 1)
		tail = binary.BigEndian.AppendUint64(tail, uint64(len(e.buf)))
		tail = e.keys.aead.Seal(tail, tail[:ivLen], e.buf, aad)
	} else {
		if len(e.buf) >= e.frameLen {
			if err := e.flushFrames(); err != nil {
				e.drain()
				return err
			}
		}
		if err := e.drain(); err != nil {
			return err
		}
		seq := e.seq
		aad := bodyAAD(e.aad[:0], e.mid, aadFinalFrame, seq, uint64(len(e.buf)))
		tail = e.getBuf(8 + ivLen + 4 + len(e.buf) + tagLen)
		tail = binary.BigEndian.AppendUint32(tail, 0xFFFFFFFF)
		tail = binary.BigEndian.AppendUint32(tail, seq)
		tail = appendFrameIV(tail, seq)
		tail = binary.BigEndian.AppendUint32(tail, uint32(len(e.buf)))
		tail = e.keys.aead.Seal(tail, tail[8:8+ivLen], e.buf, aad)
	}
	clear(e.buf)
	e.spare = tail // a pooled buffer goes back with the others
	if err := e.emit(tail); err != nil {
		return err
	}
	if e.sig != nil {
		sig, err := ecsig.Sign(rand.Reader, e.signer, e.sig.Sum(e.aad[:0]))
		if err != nil {
			return fmt.Errorf("crypto: signing: %w", err)
		}
		// The tail is written (a writer must not keep what it was given):
		// its buffer holds the footer now.
		footer := binary.BigEndian.AppendUint16(tail[:0], uint16(len(sig)))
		footer = append(footer, sig...)
		e.spare = footer
		if _, err := e.dst.Write(footer); err != nil {
			return fmt.Errorf("crypto: writing footer: %w", err)
		}
	}
	return nil
}

// Encrypt encrypts a whole plaintext held in memory.
func Encrypt(ctx context.Context, plaintext []byte, o EncryptOptions) ([]byte, error) {
	o.PlaintextLength, o.KnownLength = int64(len(plaintext)), true
	out := growBuffer{b: make([]byte, 0, len(plaintext)+len(plaintext)/64+1024)}
	e, err := NewEncryptor(ctx, &out, o)
	if err != nil {
		return nil, err
	}
	if _, err := e.Write(plaintext); err != nil {
		e.Abort()
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return out.b, nil
}

type growBuffer struct{ b []byte }

func (g *growBuffer) Write(p []byte) (int, error) { g.b = append(g.b, p...); return len(p), nil }

// layout is the frame length (0 when non-framed) and the promised plaintext
// length (-1 when unknown) the options ask for, checked against the format.
func (o *EncryptOptions) layout() (frameLen int, want int64, err error) {
	frameLen = o.FrameLength
	if frameLen == 0 && !o.NonFramed {
		frameLen = DefaultFrameLength
	}
	if !o.NonFramed && (frameLen < 1 || frameLen > MaxFrameLength) {
		return 0, 0, fmt.Errorf("crypto: frame length %d out of range 1..%d", frameLen, MaxFrameLength)
	}
	want = int64(-1)
	if o.KnownLength {
		want = o.PlaintextLength
	}
	if o.NonFramed {
		if want < 0 {
			return 0, 0, errors.New("crypto: a non-framed message needs the plaintext length in advance")
		}
		if want > maxNonFramedBuffer {
			return 0, 0, fmt.Errorf("crypto: non-framed messages are limited to %d bytes here (they cannot stream); use framing", maxNonFramedBuffer)
		}
		frameLen = 0
	} else if want >= 0 && want/int64(frameLen) >= 0xFFFFFFFF {
		return 0, 0, fmt.Errorf("crypto: %d bytes need more than 2^32-1 frames of %d bytes", want, frameLen)
	}
	return frameLen, want, nil
}
