package crypto

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// EncryptionContext is the set of non-secret key/value pairs bound to a
// message as additional authenticated data.
type EncryptionContext map[string]string

// ReservedPrefix starts context keys that only the ESDK itself may set.
const ReservedPrefix = "aws-crypto-"

// publicKeyContextKey holds the base64 compressed verification key of signed
// messages.
const publicKeyContextKey = "aws-crypto-public-key"

// Clone returns a copy (nil stays nil only when empty).
func (c EncryptionContext) Clone() EncryptionContext {
	out := make(EncryptionContext, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// SortedKeys returns the keys in UTF-8 byte order, the canonical order.
func (c EncryptionContext) SortedKeys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys) // Go strings compare bytewise: UTF-8 byte order
	return keys
}

// ValidateUser checks a caller-supplied context: valid UTF-8, no reserved
// keys, representable on the wire.
func (c EncryptionContext) ValidateUser() error {
	for k, v := range c {
		if strings.HasPrefix(k, ReservedPrefix) {
			return fmt.Errorf("crypto: encryption context key %q uses the reserved prefix %q", k, ReservedPrefix)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("crypto: encryption context pair %q is not valid UTF-8", k)
		}
		if k == "" {
			return fmt.Errorf("crypto: encryption context key must not be empty")
		}
	}
	_, err := c.Serialize()
	return err
}

// Serialize returns the canonical wire form: a uint16 count and then each
// pair (uint16 length + bytes, for key and value) in UTF-8 key order. The
// empty context serialises to nothing (its length field, written by the
// header, is zero).
func (c EncryptionContext) Serialize() ([]byte, error) {
	if len(c) == 0 {
		return nil, nil
	}
	if len(c) > 0xFFFF {
		return nil, fmt.Errorf("crypto: encryption context has %d pairs, more than 65535", len(c))
	}
	// Every message serialises its context (header, keyring AAD): keys of
	// a small context are sorted on the stack, and the output is
	// allocated once at its size.
	var small [8]string
	keys := small[:0]
	size := 2
	for k, v := range c {
		keys = append(keys, k)
		size += 4 + len(k) + len(v)
	}
	slices.Sort(keys) // bytewise: UTF-8 byte order
	out := make([]byte, 2, size)
	binary.BigEndian.PutUint16(out, uint16(len(c)))
	for _, k := range keys {
		v := c[k]
		if len(k) > 0xFFFF || len(v) > 0xFFFF {
			return nil, fmt.Errorf("crypto: encryption context pair %q is longer than 65535 bytes", k)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
		out = append(out, v...)
	}
	if len(out) > 0xFFFF {
		return nil, fmt.Errorf("crypto: serialised encryption context is %d bytes, more than 65535", len(out))
	}
	return out, nil
}

// parseContext decodes the canonical form, rejecting duplicates, invalid
// UTF-8, non-canonical order and trailing bytes.
func parseContext(b []byte) (EncryptionContext, error) {
	ctx := EncryptionContext{}
	if len(b) == 0 {
		return ctx, nil
	}
	r := byteReader{b: b}
	n := int(r.u16())
	if n == 0 && r.err == nil {
		return nil, fmt.Errorf("%w: encryption context has a zero pair count but a non-zero length", ErrMalformed)
	}
	prev := ""
	for i := 0; i < n && r.err == nil; i++ {
		k := string(r.bytes(int(r.u16())))
		v := string(r.bytes(int(r.u16())))
		if r.err != nil {
			break
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%w: encryption context pair %d is not valid UTF-8", ErrMalformed, i)
		}
		if _, dup := ctx[k]; dup {
			return nil, fmt.Errorf("%w: encryption context key %q appears twice", ErrMalformed, k)
		}
		if i > 0 && k < prev {
			return nil, fmt.Errorf("%w: encryption context keys are not in canonical order", ErrMalformed)
		}
		prev = k
		ctx[k] = v
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: encryption context: %v", ErrMalformed, r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the encryption context", ErrMalformed, len(r.b))
	}
	return ctx, nil
}

// byteReader is a sticky-error cursor over a byte slice.
type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("need %d bytes, have %d", n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *byteReader) u8() uint8 {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *byteReader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *byteReader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// sliceReader reads b without copying it first.
type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
