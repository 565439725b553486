// Package keystore is the branch key store of the AWS KMS Hierarchical
// keyring: branch keys kept in a DynamoDB table, each version wrapped by an
// AWS KMS key under an encryption context made of the item's own attributes
// and the store's logical name. The item format is the one the AWS
// Cryptographic Material Providers Library writes (partition key
// "branch-key-id", sort key "type"; items "branch:ACTIVE",
// "branch:version:<uuid>" and "beacon:ACTIVE"), so branch keys created by the
// other implementations are read here and the other way round.
//
// A Store reads branch keys (GetActiveBranchKey, GetBranchKeyVersion, one
// DynamoDB GetItem and one KMS Decrypt each; callers cache) and administers
// them (CreateKey, VersionKey, Describe). Failures are *Error values whose
// Kind says what went wrong (errors.Is with ErrNotFound, ErrAuthentication,
// ErrWrongKMSKey, ...).
package keystore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// DynamoDBAPI is the part of *dynamodb.Client the store uses.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// KMSAPI is the part of *kms.Client the store uses.
type KMSAPI interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
	ReEncrypt(ctx context.Context, in *kms.ReEncryptInput, optFns ...func(*kms.Options)) (*kms.ReEncryptOutput, error)
	GenerateDataKeyWithoutPlaintext(ctx context.Context, in *kms.GenerateDataKeyWithoutPlaintextInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyWithoutPlaintextOutput, error)
}

var (
	_ DynamoDBAPI = (*dynamodb.Client)(nil)
	_ KMSAPI      = (*kms.Client)(nil)
)

// KMSConfig says which KMS key protects the store's branch keys. Exactly one
// of KeyARN and Discovery must be set.
type KMSConfig struct {
	// KeyARN: the key ARN (not an alias) that wraps every branch key; items
	// naming another key are refused (ErrWrongKMSKey) before any KMS call.
	KeyARN string
	// MRK makes KeyARN multi-Region aware: items whose kms-arn is a replica
	// of KeyARN (same multi-Region key, another region) are accepted and
	// decrypted with KeyARN.
	MRK bool
	// Discovery: decrypt with whichever key an item names (read-only:
	// CreateKey and VersionKey fail with ErrConfig).
	Discovery bool
	// DiscoveryRegion (discovery only): multi-Region key ARNs found in items
	// are used in this region.
	DiscoveryRegion string
}

// Config configures a Store.
type Config struct {
	Table       string // DynamoDB table name
	LogicalName string // logical key store name, bound into every item's KMS encryption context
	KMS         KMSConfig
	GrantTokens []string // sent with every KMS call
	DynamoDB    DynamoDBAPI
	KMSClient   KMSAPI
}

// Store is a branch key store. It is safe for concurrent use.
type Store struct {
	table, logical string
	kmsCfg         KMSConfig
	key            arn // parsed KMSConfig.KeyARN (zero in discovery)
	grants         []string
	ddb            DynamoDBAPI
	kms            KMSAPI
}

// New validates cfg. It makes no call.
func New(cfg Config) (*Store, error) {
	if cfg.Table == "" {
		return nil, errors.New("keystore: table name is empty")
	}
	if cfg.LogicalName == "" {
		return nil, errors.New("keystore: logical key store name is empty")
	}
	if cfg.DynamoDB == nil || cfg.KMSClient == nil {
		return nil, errors.New("keystore: DynamoDB and KMS clients are required")
	}
	if len(cfg.GrantTokens) > 10 {
		return nil, fmt.Errorf("keystore: %d grant tokens: KMS accepts at most 10 per request", len(cfg.GrantTokens))
	}
	s := &Store{table: cfg.Table, logical: cfg.LogicalName, kmsCfg: cfg.KMS,
		grants: slices.Clone(cfg.GrantTokens), ddb: cfg.DynamoDB, kms: cfg.KMSClient}
	k := cfg.KMS
	switch {
	case k.Discovery && k.KeyARN != "":
		return nil, errors.New("keystore: KMS configuration: set either a key ARN or discovery, not both")
	case k.Discovery:
		if k.MRK {
			return nil, errors.New("keystore: KMS configuration: mrk applies to a key ARN, not to discovery (use a discovery region)")
		}
	case k.KeyARN == "":
		return nil, errors.New("keystore: KMS configuration: set a key ARN or discovery")
	default:
		if k.DiscoveryRegion != "" {
			return nil, errors.New("keystore: KMS configuration: a discovery region applies only to discovery")
		}
		a, err := parseARN(k.KeyARN)
		if err != nil {
			return nil, fmt.Errorf("keystore: KMS key %q: %w", k.KeyARN, err)
		}
		s.key = a
	}
	return s, nil
}

// Table returns the DynamoDB table name.
func (s *Store) Table() string { return s.table }

// LogicalName returns the logical key store name (part of the hierarchical
// keyring's cache identifiers).
func (s *Store) LogicalName() string { return s.logical }

// arn is a parsed AWS KMS key ARN.
type arn struct {
	Partition, Region, Account, KeyID string
}

func (a arn) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":key/" + a.KeyID
}

func (a arn) isMRK() bool { return strings.HasPrefix(a.KeyID, "mrk-") }

// parseARN accepts only key ARNs: the spec forbids aliases in a key store.
func parseARN(s string) (arn, error) {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] != "kms" || p[3] == "" || p[4] == "" {
		return arn{}, errors.New("not an AWS KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)")
	}
	typ, id, ok := strings.Cut(p[5], "/")
	if typ == "alias" {
		return arn{}, errors.New("an alias cannot protect a key store; use the key ARN")
	}
	if !ok || typ != "key" || id == "" {
		return arn{}, errors.New("not an AWS KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)")
	}
	return arn{Partition: p[1], Region: p[3], Account: p[4], KeyID: id}, nil
}

// compatible reports whether an item's kms-arn may be used with the
// configured key: equal, or (MRK) the same multi-Region key elsewhere.
func (s *Store) compatible(item arn) bool {
	if item == s.key {
		return true
	}
	if !s.kmsCfg.MRK || !item.isMRK() {
		return false
	}
	a, b := item, s.key
	a.Region, b.Region = "", ""
	return a == b
}

// decryptKeyID is the KeyId of the Decrypt call for an item protected by
// item: the configured key, or in discovery the item's (moved to the
// discovery region when it is a multi-Region key).
func (s *Store) decryptKeyID(item arn) string {
	if !s.kmsCfg.Discovery {
		return s.key.String()
	}
	if s.kmsCfg.DiscoveryRegion != "" && item.isMRK() {
		item.Region = s.kmsCfg.DiscoveryRegion
	}
	return item.String()
}
