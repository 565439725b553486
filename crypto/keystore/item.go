package keystore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names and values of the key store item format.
const (
	attrID        = "branch-key-id"
	attrType      = "type"
	attrVersion   = "version"
	attrEnc       = "enc"
	attrKMSARN    = "kms-arn"
	attrCreate    = "create-time"
	attrHierarchy = "hierarchy-version"
	ecTableName   = "tablename" // KMS encryption context only: the logical name

	typeActive    = "branch:ACTIVE"
	typeBeacon    = "beacon:ACTIVE"
	versionPrefix = "branch:version:"
	// CustomPrefix prefixes custom encryption context keys in items and in
	// the KMS encryption context.
	CustomPrefix = "aws-crypto-ec:"

	hierarchyVersion = "1"
	// timeLayout: ISO 8601 in UTC to the microsecond, as the spec requires.
	timeLayout = "2006-01-02T15:04:05.000000Z"
)

// BranchKey is one version of a branch key, decrypted. Key is secret:
// callers must not log it and should clear it when done.
type BranchKey struct {
	ID      string
	Version string // UUID string, lower case
	Key     []byte // 32 bytes
	// EncryptionContext is the branch key's custom encryption context
	// (without the aws-crypto-ec: prefix).
	EncryptionContext map[string]string
	CreateTime        string
	KMSKeyARN         string
}

// item is a validated key store item.
type item struct {
	id, typ, version string // version: the UUID (for branch items), "" for beacon
	enc              []byte
	kmsARN           arn
	createTime       string
	custom           map[string]string // without prefix
	// ec is the KMS encryption context the item's enc is bound to: every
	// attribute except enc, plus tablename.
	ec map[string]string
}

// parseItem validates a DynamoDB item against the record format and builds
// its KMS encryption context. wantType is the sort key that was read.
func (s *Store) parseItem(av map[string]types.AttributeValue, wantType string) (*item, error) {
	it := &item{custom: map[string]string{}, ec: map[string]string{ecTableName: s.logical}}
	for name, v := range av {
		switch name {
		case attrEnc:
			b, ok := v.(*types.AttributeValueMemberB)
			if !ok || len(b.Value) == 0 {
				return nil, errors.New(`attribute "enc" is not a non-empty binary`)
			}
			it.enc = b.Value
			continue
		case attrHierarchy:
			n, ok := v.(*types.AttributeValueMemberN)
			if !ok || n.Value != hierarchyVersion {
				return nil, fmt.Errorf("attribute %q is not the number %s", attrHierarchy, hierarchyVersion)
			}
			it.ec[name] = n.Value
			continue
		case ecTableName:
			return nil, fmt.Errorf("attribute %q is reserved for the logical key store name", ecTableName)
		}
		sv, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return nil, fmt.Errorf("attribute %q is not a string", name)
		}
		it.ec[name] = sv.Value
		if k, ok := strings.CutPrefix(name, CustomPrefix); ok {
			it.custom[k] = sv.Value
		}
	}
	return it, it.check(wantType)
}

// check validates the fields every item must carry and derives the version.
func (it *item) check(wantType string) error {
	for _, name := range []string{attrID, attrType, attrCreate, attrKMSARN, attrHierarchy} {
		if it.ec[name] == "" {
			return fmt.Errorf("attribute %q is missing or empty", name)
		}
	}
	if it.enc == nil {
		return errors.New(`attribute "enc" is missing`)
	}
	it.id, it.typ, it.createTime = it.ec[attrID], it.ec[attrType], it.ec[attrCreate]
	if it.typ != wantType {
		return fmt.Errorf("item type %q, want %q", it.typ, wantType)
	}
	a, err := parseARN(it.ec[attrKMSARN])
	if err != nil {
		return fmt.Errorf("attribute %q: %w", attrKMSARN, err)
	}
	it.kmsARN = a
	v, hasVersion := it.ec[attrVersion]
	switch {
	case it.typ == typeActive:
		u, ok := strings.CutPrefix(v, versionPrefix)
		if !hasVersion || !ok {
			return fmt.Errorf("active item's %q attribute %q does not start with %q", attrVersion, v, versionPrefix)
		}
		it.version = u
	case it.typ == typeBeacon:
		if hasVersion {
			return fmt.Errorf("beacon item has a %q attribute", attrVersion)
		}
	default:
		u, ok := strings.CutPrefix(it.typ, versionPrefix)
		if !ok || hasVersion {
			return fmt.Errorf("item type %q is not a branch key version item", it.typ)
		}
		it.version = u
	}
	if it.typ != typeBeacon {
		if _, err := VersionBytes(it.version); err != nil {
			return err
		}
	}
	return nil
}

// VersionBytes converts a branch key version (a UUID string) to the 16
// bytes the hierarchical keyring stores in encrypted data keys.
func VersionBytes(version string) ([16]byte, error) {
	var out [16]byte
	if len(version) != 36 || version[8] != '-' || version[13] != '-' || version[18] != '-' || version[23] != '-' {
		return out, fmt.Errorf("branch key version %q is not a UUID", version)
	}
	h := version[0:8] + version[9:13] + version[14:18] + version[19:23] + version[24:]
	if _, err := hex.Decode(out[:], []byte(h)); err != nil {
		return out, fmt.Errorf("branch key version %q is not a UUID", version)
	}
	return out, nil
}

// VersionString is the inverse of VersionBytes (lower-case UUID form).
func VersionString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("branch key version is %d bytes, want 16", len(b))
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// newUUID returns a random (version 4) UUID string.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return VersionString(b[:])
}

func now() string { return time.Now().UTC().Format(timeLayout) }

// newItems describes the items of one new branch key version (and, for
// CreateKey, the beacon key), before any KMS call.
type newVersion struct {
	id, version, createTime string
	kmsARN                  string
	custom                  map[string]string
}

// ec returns the KMS encryption context of the item of type typ.
func (n *newVersion) ec(logical, typ string) map[string]string {
	ec := map[string]string{
		attrID: n.id, attrType: typ, attrCreate: n.createTime,
		ecTableName: logical, attrKMSARN: n.kmsARN, attrHierarchy: hierarchyVersion,
	}
	if typ == typeActive {
		ec[attrVersion] = versionPrefix + n.version
	}
	for k, v := range n.custom {
		ec[CustomPrefix+k] = v
	}
	return ec
}

// item returns the DynamoDB item of type typ carrying enc.
func (n *newVersion) item(typ string, enc []byte) map[string]types.AttributeValue {
	av := map[string]types.AttributeValue{
		attrID:        &types.AttributeValueMemberS{Value: n.id},
		attrType:      &types.AttributeValueMemberS{Value: typ},
		attrEnc:       &types.AttributeValueMemberB{Value: enc},
		attrCreate:    &types.AttributeValueMemberS{Value: n.createTime},
		attrKMSARN:    &types.AttributeValueMemberS{Value: n.kmsARN},
		attrHierarchy: &types.AttributeValueMemberN{Value: hierarchyVersion},
	}
	if typ == typeActive {
		av[attrVersion] = &types.AttributeValueMemberS{Value: versionPrefix + n.version}
	}
	for k, v := range n.custom {
		av[CustomPrefix+k] = &types.AttributeValueMemberS{Value: v}
	}
	return av
}
