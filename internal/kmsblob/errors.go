package kmsblob

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/crypto/awskms"
)

// Error is a failed operation: which, with which key, and why. Code is the
// KMS error code when KMS answered with one ("InvalidCiphertextException"
// for a wrong encryption context, "IncorrectKeyException",
// "AccessDeniedException", ...), "" otherwise.
type Error struct {
	Op   string // Encrypt, Decrypt, ReEncrypt
	Key  string // as given ("" when none was)
	Code string
	Err  error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("kmsblob: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("kmsblob: %s with key %s: %v", e.Op, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether another attempt may succeed: throttling,
// KMS-side failures (5xx) and connection failures, after the SDK's own
// retries.
func (e *Error) Retryable() bool { return awskms.Classify(e.Err).Transient() }

func newError(op, key string, err error) *Error {
	e := &Error{Op: op, Key: key, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	return e
}
