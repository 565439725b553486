package kmsblob

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
)

// Encoding is how a blob is stored.
type Encoding string

// Encodings. Base64 is what `aws kms encrypt --output text --query
// CiphertextBlob` prints; Binary is that output piped through
// `base64 --decode`, or fileb:// input.
const (
	Binary Encoding = "binary"
	Base64 Encoding = "base64"
)

// maxBase64Text bounds base64 input: MaxBlob bytes encode to 8192
// characters; the rest allows line breaks and surrounding whitespace.
const maxBase64Text = 12 << 10

// Read reads a whole stored blob ("" encoding means Binary). Base64 text
// may be wrapped and surrounded by whitespace. Input larger than any KMS
// blob is an error, not truncated.
func Read(r io.Reader, enc Encoding) ([]byte, error) {
	limit := int64(MaxBlob)
	if enc == Base64 {
		limit = maxBase64Text
	} else if enc != "" && enc != Binary {
		return nil, fmt.Errorf("kmsblob: unknown encoding %q (want binary or base64)", enc)
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("kmsblob: reading blob: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("kmsblob: input larger than %d bytes: not a KMS ciphertext blob (is it an ESDK message? use format esdk)", limit)
	}
	if enc != Base64 {
		if len(data) == 0 {
			return nil, fmt.Errorf("kmsblob: empty input: not a KMS ciphertext blob")
		}
		return data, nil
	}
	text := bytes.Join(bytes.Fields(data), nil)
	blob := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(blob, text)
	if err != nil {
		return nil, fmt.Errorf("kmsblob: input is not base64: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("kmsblob: empty input: not a KMS ciphertext blob")
	}
	if n > MaxBlob {
		return nil, fmt.Errorf("kmsblob: decoded blob of %d bytes: KMS blobs are at most %d bytes", n, MaxBlob)
	}
	return blob[:n], nil
}

// Write stores a blob: raw bytes, or one line of base64 text ending in a
// newline, as the AWS CLI prints it.
func Write(w io.Writer, blob []byte, enc Encoding) error {
	var err error
	switch enc {
	case "", Binary:
		_, err = w.Write(blob)
	case Base64:
		_, err = io.WriteString(w, base64.StdEncoding.EncodeToString(blob)+"\n")
	default:
		return fmt.Errorf("kmsblob: unknown encoding %q (want binary or base64)", enc)
	}
	if err != nil {
		return fmt.Errorf("kmsblob: writing blob: %w", err)
	}
	return nil
}
