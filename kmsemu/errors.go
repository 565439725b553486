package kmsemu

import (
	"fmt"
	"net/http"
)

// apiError is an error the emulator returns on the wire: the KMS error type
// (the "__type" of the JSON body), the HTTP status and a message.
type apiError struct {
	Type    string
	Status  int
	Message string
}

func (e *apiError) Error() string { return "kmsemu: " + e.Type + ": " + e.Message }

func newErr(typ string, status int, format string, args ...any) *apiError {
	return &apiError{Type: typ, Status: status, Message: fmt.Sprintf(format, args...)}
}

func clientErr(typ, format string, args ...any) *apiError {
	return newErr(typ, http.StatusBadRequest, format, args...)
}

// The error types below are the ones real KMS returns; the SDK maps most of
// them to types in github.com/aws/aws-sdk-go-v2/service/kms/types.
const (
	errAccessDenied      = "AccessDeniedException"
	errAlreadyExists     = "AlreadyExistsException"
	errDisabled          = "DisabledException"
	errDryRun            = "DryRunOperationException"
	errIncompleteSig     = "IncompleteSignatureException"
	errIncorrectKey      = "IncorrectKeyException"
	errInternal          = "KMSInternalException"
	errInvalidAlias      = "InvalidAliasNameException"
	errInvalidCiphertext = "InvalidCiphertextException"
	errInvalidKeyUsage   = "InvalidKeyUsageException"
	errInvalidMarker     = "InvalidMarkerException"
	errInvalidSignature  = "InvalidSignatureException"
	errInvalidState      = "KMSInvalidStateException"
	errMissingAuth       = "MissingAuthenticationTokenException"
	errNotFound          = "NotFoundException"
	errSerialization     = "SerializationException"
	errThrottling        = "ThrottlingException"
	errUnavailable       = "ServiceUnavailableException"
	errUnknownOperation  = "UnknownOperationException"
	errUnsupported       = "UnsupportedOperationException"
	errValidation        = "ValidationException"
)

// validationErr mimics the message shape of the service's input validation.
func validationErr(format string, args ...any) *apiError {
	return clientErr(errValidation, "1 validation error detected: "+format, args...)
}

func requiredErr(member string) *apiError {
	return validationErr("Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}
