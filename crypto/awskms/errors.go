package awskms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/encjob/encjob/crypto"
)

// ErrorKind classifies why a KMS call for one key failed.
type ErrorKind int

// Error kinds. KindThrottled and KindUnavailable are transient
// (KeyError.Retryable); the others will fail again the same way.
const (
	KindUnknown           ErrorKind = iota
	KindAccessDenied                // AccessDeniedException: the caller may not use the key
	KindNotFound                    // NotFoundException: no such key or alias
	KindDisabled                    // DisabledException: the key is disabled
	KindInvalidState                // KMSInvalidStateException: e.g. pending deletion
	KindInvalidCiphertext           // InvalidCiphertextException: wrong ciphertext or encryption context
	KindIncorrectKey                // IncorrectKeyException: the ciphertext belongs to another key
	KindInvalidKeyUsage             // InvalidKeyUsageException: the key is not for ENCRYPT_DECRYPT
	KindThrottled                   // ThrottlingException after the SDK's retries
	KindUnavailable                 // 5xx, KMSInternalException, DependencyTimeoutException, connection failures
	KindInvalidResponse             // KMS answered with a key id or data key that fails validation
)

var kindNames = [...]string{
	KindUnknown:           "failed",
	KindAccessDenied:      "access denied",
	KindNotFound:          "not found",
	KindDisabled:          "key disabled",
	KindInvalidState:      "key in invalid state",
	KindInvalidCiphertext: "invalid ciphertext or encryption context",
	KindIncorrectKey:      "incorrect key",
	KindInvalidKeyUsage:   "invalid key usage",
	KindThrottled:         "throttled",
	KindUnavailable:       "service unavailable",
	KindInvalidResponse:   "invalid response",
}

func (k ErrorKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// KeyError is the failure of one KMS operation for one key. Test for it with
// errors.As; the message names the key, the operation and the cause. It
// never contains key material.
type KeyError struct {
	Key  string // the key ARN, or the identifier as configured when it did not resolve
	Op   string // KMS operation: DescribeKey, GenerateDataKey, Encrypt, Decrypt
	Kind ErrorKind
	Err  error // the SDK error or validation failure
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("awskms: %s with key %s: %s: %v", e.Op, e.Key, e.Kind, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// Retryable reports whether the same call may succeed later (throttling or a
// server-side failure that outlasted the SDK's retries).
func (e *KeyError) Retryable() bool { return e.Kind.Transient() }

// Transient reports whether a call that failed this way may succeed later.
func (k ErrorKind) Transient() bool { return k == KindThrottled || k == KindUnavailable }

func newKeyError(key, op string, err error) *KeyError {
	return &KeyError{Key: key, Op: op, Kind: Classify(err), Err: err}
}

// codeKinds is the one list of KMS error codes encjob interprets (the
// keyrings, KMS ciphertext blobs and the CLI's preflight all classify
// through it). Codes not listed are KindUnknown.
var codeKinds = map[string]ErrorKind{
	"AccessDeniedException":      KindAccessDenied,
	"NotFoundException":          KindNotFound,
	"DisabledException":          KindDisabled,
	"KMSInvalidStateException":   KindInvalidState,
	"InvalidCiphertextException": KindInvalidCiphertext,
	"IncorrectKeyException":      KindIncorrectKey,
	"InvalidKeyUsageException":   KindInvalidKeyUsage,
	"ThrottlingException":        KindThrottled,
	"LimitExceededException":     KindThrottled,
	"KMSInternalException":       KindUnavailable,
	"DependencyTimeoutException": KindUnavailable,
	"KeyUnavailableException":    KindUnavailable,
}

// CodeKind returns the kind of a KMS error code (KindUnknown for codes it
// does not interpret, and for "").
func CodeKind(code string) ErrorKind { return codeKinds[code] }

// Classify maps an error of a KMS call to a kind: by its KMS error code,
// then by HTTP status (5xx: unavailable), then connection failures
// (unavailable). A cancelled or expired context is KindUnknown: the
// caller gave up, KMS did not fail.
func Classify(err error) ErrorKind {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if k, ok := codeKinds[ae.ErrorCode()]; ok {
			return k
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return KindUnavailable
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return KindUnknown
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err).Bool() {
		return KindUnavailable
	}
	return KindUnknown
}

// noMatchError is returned by OnDecrypt when no key unwrapped any EDK. It
// wraps crypto.ErrNoMatchingKey and every *KeyError met on the way.
type noMatchError struct {
	keys     []string // configured key ARNs, or nil in discovery mode
	skipped  []string // why EDKs were not tried
	failures []error  // one *KeyError per attempted KMS call
}

func (e *noMatchError) Error() string {
	var b strings.Builder
	b.WriteString("awskms: no key could decrypt any encrypted data key")
	if e.keys != nil {
		fmt.Fprintf(&b, " (configured keys: %s)", strings.Join(e.keys, ", "))
	} else {
		b.WriteString(" (discovery mode)")
	}
	if len(e.failures) == 0 && len(e.skipped) == 0 {
		b.WriteString(": the message has no aws-kms encrypted data key")
	}
	if len(e.failures) == 0 && len(e.skipped) > 0 && e.keys != nil {
		b.WriteString(": none of the message's aws-kms keys is configured")
	}
	// One entry per EDK of an untrusted header: bounded, with a count.
	parts := make([]string, 0, min(len(e.failures)+len(e.skipped), crypto.ListItems+1))
	for _, f := range e.failures {
		if len(parts) > crypto.ListItems {
			break
		}
		var ke *KeyError
		if errors.As(f, &ke) {
			parts = append(parts, fmt.Sprintf("%s: %s: %v", ke.Key, ke.Kind, ke.Err))
		} else {
			parts = append(parts, f.Error())
		}
	}
	for _, s := range e.skipped {
		if len(parts) > crypto.ListItems {
			break
		}
		parts = append(parts, "skipped "+s)
	}
	if len(parts) > 0 {
		// BoundedList counts what is left out from the full length.
		all := append(parts, make([]string, len(e.failures)+len(e.skipped)-len(parts))...)
		b.WriteString("; ")
		b.WriteString(crypto.BoundedList(all, "; "))
	}
	return b.String()
}

func (e *noMatchError) Unwrap() []error {
	return append([]error{crypto.ErrNoMatchingKey}, e.failures...)
}
