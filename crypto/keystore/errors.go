package keystore

import (
	"errors"
	"fmt"
)

// Kind classifies a key store failure. Test with errors.Is against the
// sentinel errors below (an *Error matches the sentinel of its Kind).
type Kind int

const (
	KindUnknown Kind = iota
	// KindNotFound: the table has no such branch key (or version).
	KindNotFound
	// KindInvalidItem: an item lacks a required attribute or has one of
	// the wrong type or form (not an item the key store format allows).
	KindInvalidItem
	// KindAuthentication: KMS refused to decrypt the item's wrapped key
	// under the encryption context built from the item: the item (or its
	// ciphertext) was changed after it was written, or it belongs to
	// another logical key store.
	KindAuthentication
	// KindWrongKMSKey: the item is protected by a KMS key this key store is
	// not configured for (or KMS says the ciphertext is for another key).
	KindWrongKMSKey
	// KindExists: CreateKey named a branch key id that already exists.
	KindExists
	// KindConflict: VersionKey lost a race with another rotation.
	KindConflict
	// KindConfig: the operation is not possible in this configuration
	// (e.g. CreateKey with a discovery configuration).
	KindConfig
	// KindKMS: another AWS KMS failure (access denied, throttling, ...).
	KindKMS
	// KindDynamoDB: another DynamoDB failure.
	KindDynamoDB
)

// Sentinels for errors.Is.
var (
	ErrNotFound       = errors.New("keystore: branch key not found")
	ErrInvalidItem    = errors.New("keystore: malformed key store item")
	ErrAuthentication = errors.New("keystore: key store item failed authentication")
	ErrWrongKMSKey    = errors.New("keystore: key store item is protected by another KMS key")
	ErrExists         = errors.New("keystore: branch key already exists")
	ErrConflict       = errors.New("keystore: concurrent branch key rotation")
	ErrConfig         = errors.New("keystore: operation not allowed by the key store configuration")
	ErrKMS            = errors.New("keystore: AWS KMS call failed")
	ErrDynamoDB       = errors.New("keystore: DynamoDB call failed")
)

var sentinels = map[Kind]error{
	KindNotFound: ErrNotFound, KindInvalidItem: ErrInvalidItem, KindAuthentication: ErrAuthentication,
	KindWrongKMSKey: ErrWrongKMSKey, KindExists: ErrExists, KindConflict: ErrConflict,
	KindConfig: ErrConfig, KindKMS: ErrKMS, KindDynamoDB: ErrDynamoDB,
}

// Error is a failed key store operation on one branch key. It never
// carries key material.
type Error struct {
	Op          string // GetActiveBranchKey, GetBranchKeyVersion, CreateKey, VersionKey, ...
	Table       string
	BranchKeyID string
	Version     string // "" when the operation concerns the active version or none
	Kind        Kind
	Err         error // the cause (an SDK error, or a description)
}

func (e *Error) Error() string {
	what := fmt.Sprintf("branch key %q", e.BranchKeyID)
	if e.Version != "" {
		what += " version " + e.Version
	}
	msg := fmt.Sprintf("keystore %s: %s %s", e.Table, e.Op, what)
	if s, ok := sentinels[e.Kind]; ok {
		msg += ": " + s.Error()[len("keystore: "):]
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) (etc.) true for an *Error of that Kind.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Kind]
	return ok && s == target
}
