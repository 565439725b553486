package crypto

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"

	"github.com/encjob/encjob/crypto/ecsig"
)

// RewrapOptions configures Rewrap.
type RewrapOptions struct {
	// Decrypt opens the source message: its CMM unwraps the data key, and
	// its policy and limits apply as for decryption.
	Decrypt DecryptOptions
	// Keyring wraps the kept data key for the new message (OnEncrypt is
	// called with DataKey already set, so it only adds EDKs).
	Keyring Keyring
	// CommitmentPolicy is checked against the kept suite as for
	// encryption: a rewrapped message is a new message, and a policy that
	// forbids writing a suite forbids rewrapping into it.
	CommitmentPolicy CommitmentPolicy
	// Context returns the user context of the new message from the
	// authenticated source header (nil: the source's user pairs, stored
	// and authenticated-only: h.FullContext()). ESDK-reserved keys are
	// dropped from the source before the call and may not be returned.
	Context func(h *Header) (EncryptionContext, error)
	// RequiredContextKeys returns the keys of the new context (the user
	// context Context returned) that the new message authenticates
	// without storing, as a required-encryption-context CMM makes it, from
	// the authenticated source header (nil, or no keys: every pair is
	// stored).
	RequiredContextKeys func(old *Header, newContext EncryptionContext) []string
	// Check, when set, vets the authenticated source header before
	// anything is written (e.g. required context pairs).
	Check func(h *Header) error
	// MaxEncryptedDataKeys fails the rewrap when the keyring produces more
	// EDKs (0: no limit).
	MaxEncryptedDataKeys int
	// PlaintextHash, when set, makes Rewrap open every frame (checking its
	// tag) and feed the plaintext to it; without it, unsigned bodies are
	// copied after a structural check only (their frame tags stay exactly
	// as strong as they were: every reader still checks them).
	PlaintextHash hash.Hash
	// AllowHeaderNonceReuse lets Rewrap rewrap message format v2 (see
	// RewrapReusesHeaderNonce); without it such a source is refused
	// before anything is written.
	AllowHeaderNonceReuse bool
}

// ErrHeaderNonceReuse is returned (wrapping ErrPolicy) by Rewrap for a
// message format v2 source without RewrapOptions.AllowHeaderNonceReuse.
var ErrHeaderNonceReuse = fmt.Errorf("%w: rewrapping a message format v2 message reuses its header nonce", ErrPolicy)

// RewrapReusesHeaderNonce reports whether rewrapping a message of suite s
// authenticates the new header under the old header's key and nonce.
//
// Message format v2 (0x0478, 0x0578) fixes the header IV at zero, and a
// rewrap keeps the data key and message id, so the derived key too: the
// old and the new header tag are two AES-GCM tags under one key and one
// nonce. From both copies anyone can solve for the GHASH key and the
// nonce-0 mask, then authenticate any header (any context, any EDKs of
// the new group, any signing public key) and re-tag any frame whose
// keystream they know. The footer signature of 0x0578 does not help: the
// forger puts their own public key in the forged header and signs. v1
// headers carry their own IV, for which Rewrap draws a fresh one.
func RewrapReusesHeaderNonce(s *Suite) bool { return s != nil && s.MessageVersion == 2 }

// Rewrap writes to dst the message in src under a new set of encrypted
// data keys, keeping its data key, message id, suite, frame length and
// every body byte: only the header (EDKs, context, authentication) and,
// for signed suites, the footer are new.
//
// Why the body stays valid: a frame's AAD is the message id, the frame's
// sequence number and length - not the header - and the content key
// (HKDF of the data key and message id, or the data key itself) is
// unchanged, so is the v2 commitment value (it is derived from the same
// two inputs).
//
// Signed suites: the source's footer signature is verified over the old
// header and the body while a new signing key signs the new header and the
// same body bytes (read once); the new public key replaces
// aws-crypto-public-key. Rewrap returns an error, having possibly written
// part of a message to dst, whenever the source does not verify; callers
// must commit dst only when it returns nil.
//
// v1 messages carry their header IV: a fresh random one is used so that
// the content key never authenticates two headers under one IV. v2 fixes
// the header IV to zero, so the old and the new header tags share a GCM
// nonce under one key: a party holding both messages can forge messages
// under that data key (see RewrapReusesHeaderNonce and README, "Rewrap");
// Rewrap refuses v2 sources unless o.AllowHeaderNonceReuse.
func Rewrap(ctx context.Context, dst io.Writer, src io.Reader, o RewrapOptions) (newHdr, oldHdr *Header, err error) {
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(src, 64<<10)
	}
	r, err := newRewrap(ctx, br, o)
	if err != nil {
		return nil, nil, err
	}
	defer r.close()
	h, s := r.old, r.old.Suite
	c := &bodyCopier{r: br, w: dst, keys: r.keys, h: h, pt: o.PlaintextHash, maxBody: o.Decrypt.MaxBodyLength}
	if s.Signed() {
		c.oldSig, c.newSig = s.signHash(), s.signHash()
		c.oldSig.Write(h.body)
		c.oldSig.Write(h.marshalAuth())
		if o.Decrypt.Concurrency != 1 && runtime.GOMAXPROCS(0) > 1 {
			// Two signature hashes over every body byte are most of a
			// signed rewrap's work: the new one runs on another core.
			c.side = newSideHasher(c.newSig)
			defer c.side.stop()
		}
	}
	if err := c.emit(r.body); err != nil {
		return nil, nil, err
	}
	if err := c.emit(r.new.marshalAuth()); err != nil {
		return nil, nil, err
	}
	if err := c.copyBody(); err != nil {
		return nil, nil, err
	}
	if err := c.finish(r.m.VerificationKey, r.em.SigningKey); err != nil {
		return nil, nil, err
	}
	return r.new, h, nil
}

// RewrapHeader is Rewrap for a caller that copies the body itself, e.g.
// storage that copies a byte range without this process reading it: it
// reads only the header of src and returns the new message's header
// bytes. The new message is those bytes followed by the source's bytes
// from oldHdr.Len() to its end, unchanged.
//
// Only unsigned suites qualify (a signed rewrap must read the body to
// verify the old signature and make the new one), and o.PlaintextHash
// must be nil. The body is not read: BodyTail names the few bytes a
// caller reads to know it is whole; its frame tags are checked by every
// reader, as for the source.
func RewrapHeader(ctx context.Context, src io.Reader, o RewrapOptions) (hdr []byte, newHdr, oldHdr *Header, err error) {
	if o.PlaintextHash != nil {
		return nil, nil, nil, errors.New("crypto: RewrapHeader does not read the body: PlaintextHash must be nil")
	}
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(src, 64<<10)
	}
	// A signed source is refused before any key is unwrapped.
	o.Decrypt.UnsignedOnly = true
	r, err := newRewrap(ctx, br, o)
	if err != nil {
		return nil, nil, nil, err
	}
	defer r.close()
	return append(r.body, r.new.marshalAuth()...), r.new, r.old, nil
}

// rewrap is a rewrap whose new header is built.
type rewrap struct {
	old, new *Header
	body     []byte // the new header without its authentication
	keys     *messageKeys
	m        *DecryptionMaterials
	em       *EncryptionMaterials
}

func (r *rewrap) close() { clear(r.m.DataKey); clear(r.em.DataKey) }

// newRewrap authenticates the source header in br and builds the new
// one: policies first, then the data key, the new context and EDKs.
func newRewrap(ctx context.Context, br *bufio.Reader, o RewrapOptions) (*rewrap, error) {
	if o.Decrypt.CMM == nil || o.Keyring == nil {
		return nil, errors.New("crypto: RewrapOptions needs Decrypt.CMM and Keyring")
	}
	h, m, keys, err := openHeader(ctx, br, o.Decrypt)
	if err != nil {
		return nil, err
	}
	r := &rewrap{old: h, keys: keys, m: m, em: &EncryptionMaterials{Suite: h.Suite}}
	if err := r.materials(ctx, o); err != nil {
		r.close()
		return nil, err
	}
	// Pairs of required keys are authenticated (header tag) but not stored.
	var required []string
	if o.RequiredContextKeys != nil {
		user := r.em.Context.Clone()
		delete(user, publicKeyContextKey)
		required = o.RequiredContextKeys(h, user)
	}
	stored, only, err := splitRequired(r.em.Context, required)
	if err != nil {
		r.close()
		return nil, err
	}
	nh := &Header{Version: h.Version, Type: h.Type, Suite: h.Suite, MessageID: h.MessageID, Context: stored, RequiredContext: only,
		EncryptedDataKeys: r.em.EncryptedDataKeys, ContentType: h.ContentType, IVLength: h.IVLength,
		FrameLength: h.FrameLength, CommitKey: h.CommitKey, AuthIV: make([]byte, ivLen)}
	if h.Version == 1 {
		err = freshHeaderIV(nh.AuthIV, h.AuthIV)
	}
	var aad []byte
	if err == nil {
		r.body, err = nh.marshalBody()
	}
	if err == nil {
		aad, err = nh.authAAD(false)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	nh.AuthTag = keys.aead.Seal(nil, nh.AuthIV, nil, aad)
	r.new = nh
	return r, nil
}

// materials checks the source against the options and fills r.em: the
// kept data key, the new context (and signing key) and the new EDKs.
func (r *rewrap) materials(ctx context.Context, o RewrapOptions) error {
	h, s := r.old, r.old.Suite
	if RewrapReusesHeaderNonce(s) && !o.AllowHeaderNonceReuse {
		return fmt.Errorf("%w (suite %s fixes the header IV, and a rewrap keeps the data key): allow it explicitly or re-encrypt in full", ErrHeaderNonceReuse, s.Hex())
	}
	if err := o.CommitmentPolicy.checkEncrypt(s); err != nil {
		return fmt.Errorf("rewrap keeps the suite: %w", err)
	}
	if o.Check != nil {
		if err := o.Check(h); err != nil {
			return err
		}
	}
	if r.keys.netV400 {
		return fmt.Errorf("crypto: the source was written by ESDK-.NET 4.0.0 with a non-standard key derivation (suite %s): a rewrap would keep its body, which no standard reader opens; re-encrypt it fully instead", s)
	}
	user := EncryptionContext{}
	for k, v := range h.FullContext() {
		if len(k) < len(ReservedPrefix) || k[:len(ReservedPrefix)] != ReservedPrefix {
			user[k] = v
		}
	}
	var err error
	if o.Context != nil {
		if user, err = o.Context(h); err != nil {
			return err
		}
	}
	if err := user.ValidateUser(); err != nil {
		return err
	}
	em := r.em
	em.Context, em.DataKey = user.Clone(), bytes.Clone(r.m.DataKey)
	if s.Signed() {
		if em.SigningKey, err = ecdsa.GenerateKey(s.curve, rand.Reader); err != nil {
			return fmt.Errorf("crypto: generating signing key: %w", err)
		}
		if em.Context[publicKeyContextKey], err = compressPublicKey(&em.SigningKey.PublicKey); err != nil {
			return err
		}
	}
	if err := wrapExisting(ctx, o.Keyring, em); err != nil {
		return err
	}
	// A keyring that replaced the data key would make every kept frame
	// undecryptable: refuse rather than write such a message.
	if subtle.ConstantTimeCompare(em.DataKey, r.m.DataKey) != 1 {
		return errors.New("crypto: the keyring replaced the data key of a rewrapped message")
	}
	if len(em.EncryptedDataKeys) == 0 {
		return errors.New("crypto: keyring produced no encrypted data key")
	}
	if o.MaxEncryptedDataKeys > 0 && len(em.EncryptedDataKeys) > o.MaxEncryptedDataKeys {
		return fmt.Errorf("%w: %d encrypted data keys, more than the limit of %d", ErrPolicy, len(em.EncryptedDataKeys), o.MaxEncryptedDataKeys)
	}
	return nil
}

// keyringMembers is implemented by composite keyrings (a key group: a
// generator and children). The ESDK contract makes such a keyring refuse
// materials that already hold a data key, because its generator would be
// skipped; a rewrap has a data key by design and wants every member to
// wrap it, so it asks the members one by one.
type keyringMembers interface {
	Generator() Keyring
	Children() []Keyring
}

// wrapExisting makes every (leaf) keyring of kr wrap m.DataKey.
func wrapExisting(ctx context.Context, kr Keyring, m *EncryptionMaterials) error {
	km, ok := kr.(keyringMembers)
	if !ok {
		return kr.OnEncrypt(ctx, m)
	}
	members := km.Children()
	if g := km.Generator(); g != nil {
		members = append([]Keyring{g}, members...)
	}
	for _, c := range members {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := wrapExisting(ctx, c, m); err != nil {
			return err
		}
	}
	return nil
}

// freshHeaderIV fills iv with random bytes whose first eight are not all
// zero, so it can equal neither a frame IV (the sequence number in the
// last four bytes) nor, by the explicit check, the old header IV.
func freshHeaderIV(iv, old []byte) error {
	for {
		if _, err := rand.Read(iv); err != nil {
			return err
		}
		if !bytes.Equal(iv[:8], make([]byte, 8)) && !bytes.Equal(iv, old) {
			return nil
		}
	}
}

// openHeader reads and authenticates a message header (for NewDecryptor
// and Rewrap): limits and policies first, then the data key through the
// CMM, the key commitment and the header tag. It returns the materials (with the data key, which the caller
// must clear) and the derived keys. The returned header carries the
// authenticated-only pairs (RequiredContext) the reproduced context
// supplied.
func openHeader(ctx context.Context, br *bufio.Reader, o DecryptOptions) (*Header, *DecryptionMaterials, *messageKeys, error) {
	h, err := parseHeader(br, HeaderLimits{MaxEncryptedDataKeys: o.MaxEncryptedDataKeys})
	if err != nil {
		return nil, nil, nil, err
	}
	s := h.Suite
	if o.UnsignedOnly && s.Signed() {
		return nil, nil, nil, fmt.Errorf("%w: suite %s is signed, and only unsigned messages are allowed", ErrPolicy, s)
	}
	if err := o.CommitmentPolicy.checkDecrypt(s); err != nil {
		return nil, nil, nil, err
	}
	if err := checkFrameLimit(h, o.MaxBodyLength); err != nil {
		return nil, nil, nil, err
	}
	m, err := o.CMM.DecryptMaterials(ctx, DecryptionRequest{Suite: s, Context: h.Context,
		EncryptedDataKeys: h.EncryptedDataKeys, CommitmentPolicy: o.CommitmentPolicy,
		ReproducedContext: o.ReproducedContext})
	if err != nil {
		return nil, nil, nil, reproducedHint(h, o.ReproducedContext, err)
	}
	h.DecryptedWith = m.DecryptedWith
	if h.RequiredContext, err = checkDecryptContext(h, m, o.ReproducedContext); err == nil {
		var keys *messageKeys
		if keys, err = authenticateHeader(h, m.DataKey, !o.ForbidNetV400Retry); err == nil {
			return h, m, keys, nil
		}
	}
	clear(m.DataKey)
	return nil, nil, nil, reproducedHint(h, o.ReproducedContext, err)
}

// authenticateHeader derives the message keys and checks the key
// commitment and the header tag. Commitment first: no plaintext, not even
// the header's verdict, before the key is known to be the one the message
// was made with.
//
// With netV400, a header tag that does not verify is tried once more the
// way ESDK-.NET 4.0.0 wrote it (the ESDKs' NetV4_0_0 retry policy): the
// content key of v1 HKDF suites derived without the message id, and an
// empty authenticated-only context serialised as a zero pair count. Only
// the header tag is retried; the keys it verifies with then open the body.
func authenticateHeader(h *Header, dataKey []byte, netV400 bool) (*messageKeys, error) {
	keys, err := deriveKeys(h.Suite, dataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	if err := keys.checkCommitment(h); err != nil {
		return nil, err
	}
	if headerTagVerifies(h, keys, false) {
		return keys, nil
	}
	if netV400 {
		legacy := keys
		if netV400KDFDiffers(h.Suite) {
			if legacy, err = deriveKeysInfo(h.Suite, dataKey, h.MessageID, true); err != nil {
				return nil, err
			}
		}
		if headerTagVerifies(h, legacy, true) {
			return legacy, nil
		}
	}
	return nil, errHeaderTag
}

// errHeaderTag is the failure of the header authentication tag (which
// covers the authenticated-only context, unlike the key commitment).
var errHeaderTag = fmt.Errorf("%w: header authentication tag does not verify", ErrAuthentication)

func headerTagVerifies(h *Header, keys *messageKeys, netV400 bool) bool {
	aad, err := h.authAAD(netV400)
	if err != nil {
		return false
	}
	_, err = keys.aead.Open(nil, h.AuthIV, h.AuthTag, aad)
	return err == nil
}

// reproducedHint makes a failure to authenticate a message whose
// reproduced context supplied pairs the header does not store name them:
// their values are authenticated there, so a wrong value fails exactly
// like a wrong key (the error then also wraps ErrReproducedContext).
// Without a reproduced context, an authentication or key failure says
// that a message written with required context keys needs one.
func reproducedHint(h *Header, reproduced EncryptionContext, err error) error {
	if errors.Is(err, ErrReproducedContext) || !(errors.Is(err, errHeaderTag) || errors.Is(err, ErrNoMatchingKey)) {
		return err
	}
	if only := notStored(h, reproduced); len(only) > 0 {
		return fmt.Errorf("%w (%w: the message does not store %s of the reproduced context: if it was written with required encryption context keys, their values are wrong)",
			err, ErrReproducedContext, quoteKeys(only))
	}
	if len(reproduced) == 0 && errors.Is(err, errHeaderTag) {
		return fmt.Errorf("%w (if the message was written with required encryption context keys, give their values as the reproduced encryption context)", err)
	}
	if len(reproduced) == 0 && errors.Is(err, ErrNoMatchingKey) {
		// Keyrings that bind the context to the wrapped key (raw AES, raw
		// ECDH, KMS) cannot tell a wrong key from missing required pairs.
		return fmt.Errorf("%w (or, if the message was written with required encryption context keys, give their values as the reproduced encryption context)", err)
	}
	return err
}

// bodyCopier moves the body of a message from r to w unchanged, checking
// its structure and feeding the old and the new signature hashes (and,
// with pt, opening every frame).
type bodyCopier struct {
	r              *bufio.Reader
	w              io.Writer
	keys           *messageKeys
	h              *Header
	oldSig, newSig hash.Hash
	side           *sideHasher // hashes newSig's body bytes on another core, when set
	pt             hash.Hash
	maxBody        int64  // DecryptOptions.MaxBodyLength
	frame          []byte // scratch for a frame being opened (pt only)
	aad            []byte
}

// sideHasher writes chunks to a hash on its own goroutine; start hands
// it a chunk, wait returns when the chunk is hashed.
type sideHasher struct {
	in   chan []byte
	done chan struct{}
}

func newSideHasher(h hash.Hash) *sideHasher {
	s := &sideHasher{in: make(chan []byte), done: make(chan struct{})}
	go func() {
		for b := range s.in {
			h.Write(b)
			s.done <- struct{}{}
		}
	}()
	return s
}

func (s *sideHasher) start(b []byte) { s.in <- b }
func (s *sideHasher) wait()          { <-s.done }
func (s *sideHasher) stop()          { close(s.in) }

// emit writes header bytes of the new message.
func (c *bodyCopier) emit(b []byte) error {
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("crypto: writing ciphertext: %w", err)
	}
	if c.newSig != nil {
		c.newSig.Write(b)
	}
	return nil
}

// pass copies n body bytes from the source to the output and both
// signature hashes without an intermediate copy; with keep it also
// appends them to c.frame.
func (c *bodyCopier) pass(n int64, what string, keep bool) error {
	for n > 0 {
		k := int(min(n, int64(c.r.Size())))
		b, err := c.r.Peek(k)
		if len(b) == 0 {
			if err == io.EOF || err == io.ErrUnexpectedEOF || err == bufio.ErrBufferFull || err == nil {
				return malformed("truncated message: input ended in %s", what)
			}
			return fmt.Errorf("crypto: reading %s: %w", what, err)
		}
		if c.side != nil {
			c.side.start(b) // the new signature's hash, meanwhile on another core
		}
		_, werr := c.w.Write(b)
		if c.oldSig != nil {
			c.oldSig.Write(b)
			if c.side == nil {
				c.newSig.Write(b)
			}
		}
		if keep {
			c.frame = append(c.frame, b...)
		}
		if c.side != nil {
			c.side.wait() // b is the reader's buffer: hashed before it is reused
		}
		if werr != nil {
			return fmt.Errorf("crypto: writing ciphertext: %w", werr)
		}
		c.r.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// field copies a small fixed-size field and returns it.
func (c *bodyCopier) field(n int, what string) ([]byte, error) {
	start := len(c.frame)
	if err := c.pass(int64(n), what, true); err != nil {
		return nil, err
	}
	f := bytes.Clone(c.frame[start:])
	c.frame = c.frame[:start]
	return f, nil
}

func (c *bodyCopier) copyBody() error {
	if c.h.ContentType == ContentNonFramed {
		return c.copyNonFramed()
	}
	fl := int64(c.h.FrameLength)
	for seq := uint32(1); ; seq++ {
		w, err := c.field(4, "a frame's sequence number")
		if err != nil {
			return err
		}
		got, final, n := binary.BigEndian.Uint32(w), false, fl
		if got == 0xFFFFFFFF {
			final = true
			if w, err = c.field(4, "the final frame's sequence number"); err != nil {
				return err
			}
			got = binary.BigEndian.Uint32(w)
		}
		if got != seq {
			return fmt.Errorf("%w: frame sequence number %d, expected %d", ErrAuthentication, got, seq)
		}
		iv, err := c.field(ivLen, "a frame IV")
		if err != nil {
			return err
		}
		if final {
			if w, err = c.field(4, "the final frame's content length"); err != nil {
				return err
			}
			if n = int64(binary.BigEndian.Uint32(w)); n > fl {
				return malformed("final frame content length %d exceeds the frame length %d", n, fl)
			}
		}
		content := aadFrame
		if final {
			content = aadFinalFrame
		}
		if err := c.sealed(iv, n, content, seq); err != nil {
			return err
		}
		if final {
			return nil
		}
		if seq == 0xFFFFFFFF {
			return malformed("more than 2^32-1 frames")
		}
	}
}

// sealed copies one ciphertext of n bytes and its tag; with pt it opens
// it and hashes the plaintext.
func (c *bodyCopier) sealed(iv []byte, n int64, content string, seq uint32) error {
	if c.pt == nil {
		return c.pass(n+tagLen, "frame content", false)
	}
	c.frame = c.frame[:0]
	if err := c.pass(n+tagLen, "frame content", true); err != nil {
		return err
	}
	c.aad = bodyAAD(c.aad, c.h.MessageID, content, seq, uint64(n))
	pt, err := c.keys.aead.Open(c.frame[:0], iv, c.frame, c.aad)
	if err != nil {
		if content == aadSingle {
			return fmt.Errorf("%w: body does not verify", ErrAuthentication)
		}
		return fmt.Errorf("%w: frame %d does not verify", ErrAuthentication, seq)
	}
	c.pt.Write(pt)
	clear(pt)
	c.frame = c.frame[:0]
	return nil
}

func (c *bodyCopier) copyNonFramed() error {
	iv, err := c.field(ivLen, "the body IV")
	if err != nil {
		return err
	}
	lb, err := c.field(8, "the body length")
	if err != nil {
		return err
	}
	n := binary.BigEndian.Uint64(lb)
	if n > 1<<36-32 {
		return malformed("non-framed body length %d exceeds the AES-GCM limit", n)
	}
	if err := checkNonFramedLimit(n, c.maxBody); err != nil {
		return err
	}
	return c.sealed(iv, int64(n), aadSingle, 1)
}

// finish verifies the old footer, writes the new one, and checks that
// nothing follows the source message.
func (c *bodyCopier) finish(vk *ecdsa.PublicKey, sk *ecdsa.PrivateKey) error {
	if c.oldSig != nil {
		oldDigest, newDigest := c.oldSig.Sum(nil), c.newSig.Sum(nil)
		var lb [2]byte
		if _, err := io.ReadFull(c.r, lb[:]); err != nil {
			return malformed("truncated message: input ended in the footer")
		}
		sig := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c.r, sig); err != nil {
			return malformed("truncated message: input ended in the footer signature")
		}
		if !ecsig.Verify(vk, oldDigest, sig) {
			return fmt.Errorf("%w: signature does not verify", ErrAuthentication)
		}
		nsig, err := ecsig.Sign(rand.Reader, sk, newDigest)
		if err != nil {
			return fmt.Errorf("crypto: signing: %w", err)
		}
		footer := binary.BigEndian.AppendUint16(nil, uint16(len(nsig)))
		if _, err := c.w.Write(append(footer, nsig...)); err != nil {
			return fmt.Errorf("crypto: writing footer: %w", err)
		}
	}
	if _, err := c.r.ReadByte(); err == nil {
		return malformed("unexpected bytes after the end of the message")
	} else if err != io.EOF {
		return fmt.Errorf("crypto: reading after the message: %w", err)
	}
	return nil
}

// BodyTail locates, for a caller that copies an unsigned body of bodyLen
// bytes without reading it (RewrapHeader), the few bytes that show the
// body is whole: it returns their offset from the start of the body and
// a check for them. Framed: the final frame's header (its marker,
// sequence number and content length must be the only ones that add up
// to bodyLen); non-framed: the body length field. A truncated body, or
// one with bytes after the end, fails the check (or BodyTail itself);
// the frames' contents are still checked only by readers, as for any
// message.
func BodyTail(h *Header, bodyLen int64) (off int64, n int, check func([]byte) error, err error) {
	if h.Suite.Signed() {
		return 0, 0, nil, errors.New("crypto: BodyTail is for unsigned messages (a signed body is read whole)")
	}
	if h.ContentType == ContentNonFramed {
		want := bodyLen - ivLen - 8 - tagLen
		return ivLen, 8, func(b []byte) error {
			if got := int64(binary.BigEndian.Uint64(b)); got != want {
				return malformed("non-framed body length %d, but the message has room for %d", got, want)
			}
			return nil
		}, nil
	}
	full := int64(4 + ivLen + tagLen + int64(h.FrameLength))
	rest := bodyLen - (8 + ivLen + 4 + tagLen)
	if rest < 0 {
		return 0, 0, nil, malformed("truncated message: a %d-byte body cannot hold the final frame", bodyLen)
	}
	k, last := rest/full, rest%full
	if last > int64(h.FrameLength) || k >= 0xFFFFFFFF-1 {
		return 0, 0, nil, malformed("a %d-byte body is no whole number of %d-byte frames and a final frame", bodyLen, h.FrameLength)
	}
	return k * full, 8 + ivLen + 4, func(b []byte) error {
		if binary.BigEndian.Uint32(b) != 0xFFFFFFFF || int64(binary.BigEndian.Uint32(b[4:])) != k+1 ||
			int64(binary.BigEndian.Uint32(b[8+ivLen:])) != last {
			return malformed("the final frame is not where the body's length puts it (truncated, or bytes after the end)")
		}
		return nil
	}, nil
}
