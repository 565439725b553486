package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// GetActiveBranchKey returns the active version of branch key id: one
// DynamoDB GetItem and one KMS Decrypt.
func (s *Store) GetActiveBranchKey(ctx context.Context, id string) (*BranchKey, error) {
	return s.getBranchKey(ctx, "GetActiveBranchKey", id, "", typeActive)
}

// GetBranchKeyVersion returns version (a UUID string) of branch key id: one
// DynamoDB GetItem and one KMS Decrypt.
func (s *Store) GetBranchKeyVersion(ctx context.Context, id, version string) (*BranchKey, error) {
	if _, err := VersionBytes(version); err != nil {
		return nil, &Error{Op: "GetBranchKeyVersion", Table: s.table, BranchKeyID: id, Version: version, Kind: KindInvalidItem, Err: err}
	}
	return s.getBranchKey(ctx, "GetBranchKeyVersion", id, version, versionPrefix+version)
}

// GetBeaconKey returns the beacon key of branch key id (searchable
// encryption's root key; Version is empty).
func (s *Store) GetBeaconKey(ctx context.Context, id string) (*BranchKey, error) {
	return s.getBranchKey(ctx, "GetBeaconKey", id, "", typeBeacon)
}

func (s *Store) getBranchKey(ctx context.Context, op, id, version, typ string) (*BranchKey, error) {
	fail := func(k Kind, err error) (*BranchKey, error) {
		return nil, &Error{Op: op, Table: s.table, BranchKeyID: id, Version: version, Kind: k, Err: err}
	}
	it, err := s.readItem(ctx, id, typ, false)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op, e.Version = op, version
		}
		return nil, err
	}
	if !s.kmsCfg.Discovery && !s.compatible(it.kmsARN) {
		return fail(KindWrongKMSKey, fmt.Errorf("item is protected by %s, the key store is configured for %s", it.kmsARN, s.key))
	}
	keyID := s.decryptKeyID(it.kmsARN)
	out, err := s.kms.Decrypt(ctx, &kms.DecryptInput{
		KeyId: aws.String(keyID), CiphertextBlob: it.enc, EncryptionContext: it.ec, GrantTokens: s.grants,
	})
	if err != nil {
		return fail(kmsKind(err), fmt.Errorf("KMS Decrypt with %s: %w", keyID, err))
	}
	if len(out.Plaintext) != 32 {
		n := len(out.Plaintext)
		clear(out.Plaintext)
		return fail(KindKMS, fmt.Errorf("KMS Decrypt returned %d bytes, want 32", n))
	}
	if out.KeyId != nil && *out.KeyId != keyID {
		clear(out.Plaintext)
		return fail(KindWrongKMSKey, fmt.Errorf("KMS Decrypt used %s, not %s", *out.KeyId, keyID))
	}
	return &BranchKey{ID: it.id, Version: it.version, Key: out.Plaintext, EncryptionContext: it.custom,
		CreateTime: it.createTime, KMSKeyARN: it.kmsARN.String()}, nil
}

// readItem reads and validates the item (id, typ).
func (s *Store) readItem(ctx context.Context, id, typ string, consistent bool) (*item, error) {
	fail := func(k Kind, err error) (*item, error) {
		return nil, &Error{Op: "GetItem", Table: s.table, BranchKeyID: id, Kind: k, Err: err}
	}
	if id == "" {
		return fail(KindNotFound, errors.New("branch key id is empty"))
	}
	out, err := s.ddb.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key: map[string]types.AttributeValue{
			attrID:   &types.AttributeValueMemberS{Value: id},
			attrType: &types.AttributeValueMemberS{Value: typ},
		},
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return fail(KindDynamoDB, fmt.Errorf("DynamoDB GetItem %s: %w", typ, err))
	}
	if len(out.Item) == 0 {
		return fail(KindNotFound, fmt.Errorf("no item %q in table %s", typ, s.table))
	}
	it, err := s.parseItem(out.Item, typ)
	if err != nil {
		return fail(KindInvalidItem, fmt.Errorf("item %q: %w", typ, err))
	}
	if it.id != id {
		return fail(KindInvalidItem, fmt.Errorf("item %q names branch key %q", typ, it.id))
	}
	return it, nil
}

// kmsKind classifies a KMS error for a key store item.
func kmsKind(err error) Kind {
	var ic *kmstypes.InvalidCiphertextException
	var ik *kmstypes.IncorrectKeyException
	switch {
	case errors.As(err, &ic):
		return KindAuthentication
	case errors.As(err, &ik):
		return KindWrongKMSKey
	}
	return KindKMS
}

// ActiveVersion returns the active version of branch key id as the table
// says, with one DynamoDB GetItem and no KMS call: nothing is decrypted or
// authenticated, so it serves planning (which messages are under an older
// version), never cryptography.
func (s *Store) ActiveVersion(ctx context.Context, id string) (string, error) {
	it, err := s.readItem(ctx, id, typeActive, false)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = "ActiveVersion"
		}
		return "", err
	}
	return it.version, nil
}
