package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrConflict: the output exists and the overwrite policy forbids
	// replacing it, or an in-place source changed since it was listed.
	// The item fails; nothing was written.
	ErrConflict = errors.New("conflict")
	// ErrEscapes: a key would leave the destination root (a ".." or empty
	// segment, an absolute path, a NUL byte, or a symlinked directory).
	ErrEscapes = errors.New("path escapes the destination root")
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
)

// Conflict reasons carried by ConflictError.
const (
	ConflictExists  = "exists"  // overwrite: never and the output exists
	ConflictChanged = "changed" // in place and the source changed since listing
	// ConflictNotFile: the output name holds something other than a
	// regular file (a device such as /dev/null, a fifo, a socket, a
	// symlink). Outputs are committed by rename, which would replace the
	// entry itself, so encjob never does: Got names what is there.
	ConflictNotFile = "not-a-file"
)

// ConflictError describes an ErrConflict: errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Key    string // the destination key
	Reason string // ConflictExists, ConflictChanged or ConflictNotFile
	Want   Fingerprint
	Got    Fingerprint // empty if the object is gone
}

func (e *ConflictError) Error() string {
	if e.Reason == ConflictNotFile {
		return fmt.Sprintf("%s: conflict: it is a %s, not a regular file; outputs are committed by rename, which would replace it, so encjob never does", e.Key, e.Got)
	}
	if e.Reason == ConflictChanged {
		got := string(e.Got)
		if got == "" {
			got = "missing"
		}
		return fmt.Sprintf("%s: conflict: changed since it was read (listed %s, now %s)", e.Key, e.Want, got)
	}
	return fmt.Sprintf("%s: conflict: already exists and overwrite is never", e.Key)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// EscapeError describes an ErrEscapes: errors.Is(err, ErrEscapes) holds.
type EscapeError struct {
	Key    string
	Reason string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("key %q: %s: %s", e.Key, ErrEscapes.Error(), e.Reason)
}

// Is makes errors.Is(err, ErrEscapes) true.
func (e *EscapeError) Is(target error) bool { return target == ErrEscapes }

// IsRetryable reports whether err is transient: S3 5xx responses,
// throttling, request timeouts, connection resets and unexpected EOFs.
// Conflicts, escapes, not-found, 4xx and cancellation are not retryable.
// An error in the chain with a Retryable() bool method decides first.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrConflict) ||
		errors.Is(err, ErrEscapes) || errors.Is(err, ErrNotFound) {
		return false
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		if code >= 500 || code == 429 {
			return true
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled",
			"RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable":
			return true
		}
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, c := range retry.DefaultRetryables {
		if c.IsErrorRetryable(err).Bool() {
			return true
		}
	}
	return false
}
