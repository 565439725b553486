package keystore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// CreateKey creates a branch key (its first, active version and its beacon
// key) and returns its id. id "" makes a random UUID id; a chosen id needs a
// non-empty custom encryption context (as the specification requires, so
// that chosen ids are bound to something the caller meant). The custom
// encryption context is bound to every version. Costs three KMS calls
// (two GenerateDataKeyWithoutPlaintext, one ReEncrypt) and one DynamoDB
// TransactWriteItems; an existing id fails with ErrExists.
func (s *Store) CreateKey(ctx context.Context, id string, custom map[string]string) (string, error) {
	fail := func(k Kind, err error) (string, error) {
		return "", &Error{Op: "CreateKey", Table: s.table, BranchKeyID: id, Kind: k, Err: err}
	}
	if s.kmsCfg.Discovery {
		return fail(KindConfig, errors.New("a discovery key store cannot create branch keys; configure the KMS key ARN"))
	}
	if id != "" && len(custom) == 0 {
		return fail(KindConfig, errors.New("a chosen branch key id needs a custom encryption context"))
	}
	for k := range custom {
		if k == "" {
			return fail(KindConfig, errors.New("custom encryption context has an empty key"))
		}
	}
	if id == "" {
		u, err := newUUID()
		if err != nil {
			return fail(KindUnknown, err)
		}
		id = u
	}
	nv, err := s.newVersion(id, maps.Clone(custom))
	if err != nil {
		return fail(KindUnknown, err)
	}
	decryptOnly, active, err := s.wrapVersion(ctx, nv)
	if err != nil {
		return fail(kmsKind(err), err)
	}
	beaconOut, err := s.kms.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{
		KeyId: aws.String(nv.kmsARN), NumberOfBytes: aws.Int32(32),
		EncryptionContext: nv.ec(s.logical, typeBeacon), GrantTokens: s.grants,
	})
	if err != nil {
		return fail(kmsKind(err), fmt.Errorf("KMS GenerateDataKeyWithoutPlaintext (beacon key): %w", err))
	}
	notExists := "attribute_not_exists(#id)"
	names := map[string]string{"#id": attrID}
	put := func(typ string, enc []byte) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(s.table), Item: nv.item(typ, enc),
			ConditionExpression: aws.String(notExists), ExpressionAttributeNames: names,
		}}
	}
	_, err = s.ddb.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		put(versionPrefix+nv.version, decryptOnly), put(typeActive, active), put(typeBeacon, beaconOut.CiphertextBlob),
	}})
	if err != nil {
		if conditionFailed(err) {
			return fail(KindExists, err)
		}
		return fail(KindDynamoDB, fmt.Errorf("DynamoDB TransactWriteItems: %w", err))
	}
	return id, nil
}

// VersionKey rotates branch key id: a new version becomes active; the old
// ones stay readable (GetBranchKeyVersion). The active item is
// authenticated first (KMS ReEncrypt under its own encryption context), and
// the write succeeds only if the active item is still the one read
// (ErrConflict otherwise). Returns the new version.
func (s *Store) VersionKey(ctx context.Context, id string) (string, error) {
	fail := func(k Kind, err error) (string, error) {
		return "", &Error{Op: "VersionKey", Table: s.table, BranchKeyID: id, Kind: k, Err: err}
	}
	if s.kmsCfg.Discovery {
		return fail(KindConfig, errors.New("a discovery key store cannot rotate branch keys; configure the KMS key ARN"))
	}
	old, err := s.readItem(ctx, id, typeActive, true)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Op = "VersionKey"
		}
		return "", err
	}
	if !s.compatible(old.kmsARN) {
		return fail(KindWrongKMSKey, fmt.Errorf("item is protected by %s, the key store is configured for %s", old.kmsARN, s.key))
	}
	// Authenticate the active item without ever seeing its plaintext.
	if _, err := s.kms.ReEncrypt(ctx, &kms.ReEncryptInput{
		CiphertextBlob: old.enc, SourceKeyId: aws.String(s.key.String()), SourceEncryptionContext: old.ec,
		DestinationKeyId: aws.String(s.key.String()), DestinationEncryptionContext: old.ec, GrantTokens: s.grants,
	}); err != nil {
		return fail(kmsKind(err), fmt.Errorf("authenticate active item: KMS ReEncrypt: %w", err))
	}
	nv, err := s.newVersion(id, old.custom)
	if err != nil {
		return fail(KindUnknown, err)
	}
	// The kms-arn stored never changes, even for an MRK-compatible store
	// configured with a replica.
	nv.kmsARN = old.kmsARN.String()
	decryptOnly, active, err := s.wrapVersion(ctx, nv)
	if err != nil {
		return fail(kmsKind(err), err)
	}
	_, err = s.ddb.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.table), Item: nv.item(versionPrefix+nv.version, decryptOnly),
			ConditionExpression: aws.String("attribute_not_exists(#id)"), ExpressionAttributeNames: map[string]string{"#id": attrID}}},
		{Put: &types.Put{TableName: aws.String(s.table), Item: nv.item(typeActive, active),
			ConditionExpression:       aws.String("attribute_exists(#id) AND #enc = :encOld"),
			ExpressionAttributeNames:  map[string]string{"#id": attrID, "#enc": attrEnc},
			ExpressionAttributeValues: map[string]types.AttributeValue{":encOld": &types.AttributeValueMemberB{Value: old.enc}}}},
	}})
	if err != nil {
		if conditionFailed(err) {
			return fail(KindConflict, err)
		}
		return fail(KindDynamoDB, fmt.Errorf("DynamoDB TransactWriteItems: %w", err))
	}
	return nv.version, nil
}

func (s *Store) newVersion(id string, custom map[string]string) (*newVersion, error) {
	v, err := newUUID()
	if err != nil {
		return nil, err
	}
	if custom == nil {
		custom = map[string]string{}
	}
	return &newVersion{id: id, version: v, createTime: now(), kmsARN: s.key.String(), custom: custom}, nil
}

// wrapVersion makes a new branch key inside KMS (never in plaintext here):
// GenerateDataKeyWithoutPlaintext under the version item's context, then
// ReEncrypt to the active item's context.
func (s *Store) wrapVersion(ctx context.Context, nv *newVersion) (decryptOnly, active []byte, err error) {
	gen, err := s.kms.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{
		KeyId: aws.String(s.key.String()), NumberOfBytes: aws.Int32(32),
		EncryptionContext: nv.ec(s.logical, versionPrefix+nv.version), GrantTokens: s.grants,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("KMS GenerateDataKeyWithoutPlaintext: %w", err)
	}
	re, err := s.kms.ReEncrypt(ctx, &kms.ReEncryptInput{
		CiphertextBlob: gen.CiphertextBlob, SourceKeyId: aws.String(s.key.String()),
		SourceEncryptionContext: nv.ec(s.logical, versionPrefix+nv.version),
		DestinationKeyId:        aws.String(s.key.String()), DestinationEncryptionContext: nv.ec(s.logical, typeActive),
		GrantTokens: s.grants,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("KMS ReEncrypt: %w", err)
	}
	if len(gen.CiphertextBlob) == 0 || len(re.CiphertextBlob) == 0 {
		return nil, nil, errors.New("KMS returned an empty ciphertext")
	}
	return gen.CiphertextBlob, re.CiphertextBlob, nil
}

// conditionFailed reports whether a write failed on its condition.
func conditionFailed(err error) bool {
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for _, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return true
			}
		}
		return false
	}
	var cc *types.ConditionalCheckFailedException
	return errors.As(err, &cc)
}

// VersionInfo describes one branch key version without decrypting it.
type VersionInfo struct {
	Version    string `json:"version"`
	CreateTime string `json:"createTime"`
	Active     bool   `json:"active"`
}

// Description is what the table says about a branch key (no KMS call).
type Description struct {
	ID                string            `json:"branchKeyId"`
	KMSKeyARN         string            `json:"kmsKeyArn"`
	ActiveVersion     string            `json:"activeVersion"`
	Versions          []VersionInfo     `json:"versions"` // oldest first
	HasBeaconKey      bool              `json:"hasBeaconKey"`
	EncryptionContext map[string]string `json:"encryptionContext"` // custom, without prefix
}

// Describe lists the versions of branch key id with DynamoDB Query calls
// (no KMS call: nothing is decrypted or authenticated, so a tampered table
// shows what it says).
func (s *Store) Describe(ctx context.Context, id string) (*Description, error) {
	fail := func(k Kind, err error) (*Description, error) {
		return nil, &Error{Op: "Describe", Table: s.table, BranchKeyID: id, Kind: k, Err: err}
	}
	d := &Description{ID: id}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: aws.String("#id = :id"),
		ExpressionAttributeNames:  map[string]string{"#id": attrID},
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": &types.AttributeValueMemberS{Value: id}},
	}
	for {
		out, err := s.ddb.Query(ctx, in)
		if err != nil {
			return fail(KindDynamoDB, fmt.Errorf("DynamoDB Query: %w", err))
		}
		for _, av := range out.Items {
			if err := s.describeItem(d, av); err != nil {
				return fail(KindInvalidItem, err)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if d.ActiveVersion == "" {
		return fail(KindNotFound, fmt.Errorf("no %q item in table %s", typeActive, s.table))
	}
	for i := range d.Versions {
		d.Versions[i].Active = d.Versions[i].Version == d.ActiveVersion
	}
	slices.SortFunc(d.Versions, func(a, b VersionInfo) int {
		return strings.Compare(a.CreateTime+a.Version, b.CreateTime+b.Version)
	})
	return d, nil
}

func (s *Store) describeItem(d *Description, av map[string]types.AttributeValue) error {
	t, _ := av[attrType].(*types.AttributeValueMemberS)
	if t == nil {
		return errors.New(`an item has no string "type"`)
	}
	it, err := s.parseItem(av, t.Value)
	if err != nil {
		return fmt.Errorf("item %q: %w", t.Value, err)
	}
	switch {
	case it.typ == typeActive:
		d.ActiveVersion, d.KMSKeyARN, d.EncryptionContext = it.version, it.kmsARN.String(), it.custom
	case it.typ == typeBeacon:
		d.HasBeaconKey = true
	default:
		d.Versions = append(d.Versions, VersionInfo{Version: it.version, CreateTime: it.createTime})
	}
	return nil
}
