package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Content types.
const (
	ContentNonFramed = 1
	ContentFramed    = 2
)

const v1TypeCustomerAEData = 0x80

// Header is a parsed ESDK message header. Fields hold what is on the wire;
// a Header returned by ParseHeader is not authenticated (no key was used).
type Header struct {
	Version           int // 1 or 2
	Type              byte
	Suite             *Suite
	MessageID         []byte
	Context           EncryptionContext
	EncryptedDataKeys []EncryptedDataKey
	ContentType       int
	IVLength          int    // v1 only (always 12); 0 on v2
	FrameLength       uint32 // 0 for non-framed
	CommitKey         []byte // v2 algorithm suite data
	AuthIV            []byte // v1 header IV; zero bytes on v2 (not on the wire)
	AuthTag           []byte

	// DecryptedWith is not part of the message: NewDecryptor sets it to
	// the key that unwrapped the data key (DecryptionMaterials.DecryptedWith)
	// on the header it authenticated. Empty on a parsed header.
	DecryptedWith string
	// RequiredContext holds the pairs the header authenticates but does
	// not store (keys a required-encryption-context CMM listed; see
	// NewRequiredContextCMM). Not on the wire: set on headers encjob writes
	// and on headers NewDecryptor and Rewrap authenticated with them from
	// the reproduced context. Empty on a parsed header, which cannot know
	// them.
	RequiredContext EncryptionContext

	body []byte // the serialised header body, exactly the bytes authenticated by AuthTag
}

// Len returns the length of the serialised header including its
// authentication section.
func (h *Header) Len() int { return len(h.body) + h.authLen() }

func (h *Header) authLen() int {
	if h.Version == 1 {
		return ivLen + tagLen
	}
	return tagLen
}

// FullContext returns the message's whole encryption context: the stored
// pairs and the authenticated-only ones (RequiredContext), as a new map.
func (h *Header) FullContext() EncryptionContext {
	out := h.Context.Clone()
	for k, v := range h.RequiredContext {
		out[k] = v
	}
	return out
}

// authAAD is the additional data of the header authentication tag: the
// header body followed by the serialised authenticated-only context
// (nothing when it is empty). With netV400 an empty one is serialised as
// a zero pair count, as ESDK-.NET 4.0.0 wrote it.
func (h *Header) authAAD(netV400 bool) ([]byte, error) {
	extra, err := h.RequiredContext.Serialize()
	if err != nil {
		return nil, err
	}
	if netV400 && len(extra) == 0 {
		extra = []byte{0, 0}
	}
	return append(h.body[:len(h.body):len(h.body)], extra...), nil
}

// marshalBody serialises the header body (everything before the auth
// section) and keeps it for authentication.
func (h *Header) marshalBody() ([]byte, error) {
	ec, err := h.Context.Serialize()
	if err != nil {
		return nil, err
	}
	if len(h.EncryptedDataKeys) == 0 || len(h.EncryptedDataKeys) > 0xFFFF {
		return nil, fmt.Errorf("crypto: a message needs 1 to 65535 encrypted data keys, not %d", len(h.EncryptedDataKeys))
	}
	// Sized first: one allocation per header.
	size := 2 + 2 + len(h.MessageID) + 2 + len(ec) + 2 + 1 + 4 + len(h.CommitKey) + 6
	for i, k := range h.EncryptedDataKeys {
		if !k.WireOK() {
			return nil, fmt.Errorf("crypto: encrypted data key %d has a field longer than 65535 bytes", i)
		}
		size += k.WireLen()
	}
	b := make([]byte, 0, size)
	b = append(b, byte(h.Version))
	if h.Version == 1 {
		b = append(b, v1TypeCustomerAEData)
	}
	b = binary.BigEndian.AppendUint16(b, h.Suite.ID)
	b = append(b, h.MessageID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ec)))
	b = append(b, ec...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.EncryptedDataKeys)))
	for _, k := range h.EncryptedDataKeys {
		b = k.AppendWire(b)
	}
	b = append(b, byte(h.ContentType))
	if h.Version == 1 {
		b = append(b, 0, 0, 0, 0, ivLen)
	}
	b = binary.BigEndian.AppendUint32(b, h.FrameLength)
	if h.Version == 2 {
		b = append(b, h.CommitKey...)
	}
	h.body = b
	return h.body, nil
}

// marshalAuth serialises the header authentication section.
func (h *Header) marshalAuth() []byte {
	if h.Version == 1 {
		return append(append([]byte(nil), h.AuthIV...), h.AuthTag...)
	}
	return append([]byte(nil), h.AuthTag...)
}

// HeaderLimits bound what a header parser accepts, checked before the
// fields they limit are read.
type HeaderLimits struct {
	MaxEncryptedDataKeys int // 0: no limit
}

// ParseHeader reads a message header and its authentication section from r
// without any key, leaving r positioned at the body. The header is NOT
// authenticated: use it for inspection and planning only.
func ParseHeader(r io.Reader) (*Header, error) {
	return parseHeader(r, HeaderLimits{})
}

// ParseHeaderLimits is ParseHeader with limits: a header over them fails
// with ErrPolicy before its encrypted data keys are read.
func ParseHeaderLimits(r io.Reader, l HeaderLimits) (*Header, error) {
	return parseHeader(r, l)
}

// headerReader reads fields from r while recording every byte, with a
// sticky error that turns a short read into ErrMalformed.
type headerReader struct {
	r   io.Reader
	b   []byte // every byte read, in order; fields are slices of it
	err error
}

func (hr *headerReader) read(n int, what string) []byte {
	if hr.err != nil {
		return nil
	}
	// Memory follows the bytes that arrive, never the length field. A
	// field is a slice of hr.b, which a later read may move (grow), never
	// change: fields cost no allocation of their own.
	start := len(hr.b)
	b, err := appendFull(hr.r, hr.b, n, what)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			hr.err = fmt.Errorf("%w: truncated header: input ended in %s", ErrMalformed, what)
		} else {
			hr.err = err // "crypto: reading <field>: <cause>"
		}
		return nil
	}
	hr.b = b
	if b == nil {
		return []byte{} // a zero-length field is present, not missing
	}
	return b[start:len(b):len(b)]
}

func (hr *headerReader) u8(what string) byte {
	if b := hr.read(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (hr *headerReader) u16(what string) int {
	if b := hr.read(2, what); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (hr *headerReader) u32(what string) uint32 {
	if b := hr.read(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func parseHeader(r io.Reader, lim HeaderLimits) (*Header, error) {
	// Room for a typical header (one or two EDKs) from the start.
	hr := &headerReader{r: r, b: make([]byte, 0, 512)}
	h := &Header{}
	if err := hr.versionAndSuite(h); err != nil {
		return nil, err
	}
	idLen := messageIDV1
	if h.Version == 2 {
		idLen = messageIDV2
	}
	h.MessageID = hr.read(idLen, "message id")
	ecLen := hr.u16("encryption context length")
	ec := hr.read(ecLen, "encryption context")
	if hr.err != nil {
		return nil, hr.err
	}
	var err error
	if h.Context, err = parseContext(ec); err != nil {
		return nil, err
	}
	if err := hr.encryptedDataKeys(h, lim); err != nil {
		return nil, err
	}
	h.ContentType = int(hr.u8("content type"))
	if hr.err == nil && h.ContentType != ContentFramed && h.ContentType != ContentNonFramed {
		return nil, malformed("unknown content type 0x%02x", h.ContentType)
	}
	if h.Version == 1 {
		reserved := hr.read(4, "reserved field")
		if hr.err == nil && !bytes.Equal(reserved, []byte{0, 0, 0, 0}) {
			return nil, malformed("reserved header field is not zero")
		}
		h.IVLength = int(hr.u8("IV length"))
		if hr.err == nil && h.IVLength != ivLen {
			return nil, malformed("IV length %d, want %d", h.IVLength, ivLen)
		}
	}
	h.FrameLength = hr.u32("frame length")
	if hr.err == nil {
		switch {
		case h.ContentType == ContentNonFramed && h.FrameLength != 0:
			return nil, malformed("non-framed message with frame length %d", h.FrameLength)
		case h.ContentType == ContentFramed && h.FrameLength == 0:
			return nil, malformed("framed message with frame length 0")
		}
	}
	if h.Version == 2 {
		h.CommitKey = hr.read(commitKeyLen, "commitment key")
	}
	if hr.err != nil {
		return nil, hr.err
	}
	h.body = hr.b[:len(hr.b):len(hr.b)]
	if h.Version == 1 {
		h.AuthIV = hr.read(ivLen, "header IV")
	} else {
		h.AuthIV = make([]byte, ivLen)
	}
	h.AuthTag = hr.read(tagLen, "header authentication tag")
	if hr.err != nil {
		return nil, hr.err
	}
	return h, nil
}

// versionAndSuite reads the version, the v1 message type and the suite.
func (hr *headerReader) versionAndSuite(h *Header) error {
	h.Version = int(hr.u8("version"))
	if hr.err != nil {
		if errors.Is(hr.err, ErrMalformed) {
			return fmt.Errorf("%w: empty input", ErrMalformed)
		}
		return hr.err // a read error, not an empty message
	}
	switch h.Version {
	case 1:
		h.Type = hr.u8("type")
		if hr.err == nil && h.Type != v1TypeCustomerAEData {
			return malformed("unknown message type 0x%02x", h.Type)
		}
	case 2:
	default:
		if h.Version == 'A' || h.Version == 'Q' {
			// Base64 of a v1/v2 message starts with "AY"/"Ag": a common
			// mistake worth naming.
			return malformed("unsupported version byte 0x%02x (is the input base64? use --decode)", h.Version)
		}
		return malformed("unsupported message version 0x%02x", h.Version)
	}
	id := uint16(hr.u16("algorithm suite id"))
	if hr.err != nil {
		return hr.err
	}
	h.Suite = SuiteByID(id)
	if h.Suite == nil {
		return malformed("unknown algorithm suite 0x%04X", id)
	}
	if h.Suite.MessageVersion != h.Version {
		return malformed("suite %s cannot appear in a version %d message", h.Suite, h.Version)
	}
	return nil
}

// encryptedDataKeys reads the EDK count and the keys, refusing more than
// the limit before reading any of them.
func (hr *headerReader) encryptedDataKeys(h *Header, lim HeaderLimits) error {
	n := hr.u16("encrypted data key count")
	if hr.err != nil {
		return hr.err
	}
	if n == 0 {
		return malformed("header has no encrypted data keys")
	}
	if lim.MaxEncryptedDataKeys > 0 && n > lim.MaxEncryptedDataKeys {
		return fmt.Errorf("%w: message has %d encrypted data keys, more than the limit of %d", ErrPolicy, n, lim.MaxEncryptedDataKeys)
	}
	for i := 0; i < n && hr.err == nil; i++ {
		var k EncryptedDataKey
		k.ProviderID = string(hr.read(hr.u16("key provider id length"), "key provider id"))
		k.ProviderInfo = hr.read(hr.u16("key provider info length"), "key provider info")
		k.Ciphertext = hr.read(hr.u16("encrypted data key length"), "encrypted data key")
		h.EncryptedDataKeys = append(h.EncryptedDataKeys, k)
	}
	return hr.err
}
