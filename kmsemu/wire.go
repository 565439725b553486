package kmsemu

import (
	"encoding/json"
	"strconv"
	"time"
)

// Request and response bodies of the implemented operations, with the
// member names of the KMS API. []byte members are base64 in JSON, as the
// service's blob members are.

// epochTime is a timestamp on the wire: seconds since the epoch, as a number.
type epochTime time.Time

func epoch(t time.Time) epochTime { return epochTime(t) }

func (t epochTime) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64), nil
}

type keyMetadata struct {
	AWSAccountId             string             `json:"AWSAccountId"`
	KeyId                    string             `json:"KeyId"`
	Arn                      string             `json:"Arn"`
	CreationDate             epochTime          `json:"CreationDate"`
	Enabled                  bool               `json:"Enabled"`
	Description              string             `json:"Description"`
	KeyUsage                 string             `json:"KeyUsage"`
	KeyState                 string             `json:"KeyState"`
	DeletionDate             *epochTime         `json:"DeletionDate,omitempty"`
	Origin                   string             `json:"Origin"`
	KeyManager               string             `json:"KeyManager"`
	CustomerMasterKeySpec    string             `json:"CustomerMasterKeySpec"`
	KeySpec                  string             `json:"KeySpec"`
	EncryptionAlgorithms     []string           `json:"EncryptionAlgorithms,omitempty"`
	KeyAgreementAlgorithms   []string           `json:"KeyAgreementAlgorithms,omitempty"`
	MultiRegion              bool               `json:"MultiRegion"`
	MultiRegionConfiguration *multiRegionConfig `json:"MultiRegionConfiguration,omitempty"`
}

type multiRegionConfig struct {
	MultiRegionKeyType string           `json:"MultiRegionKeyType"`
	PrimaryKey         *multiRegionKey  `json:"PrimaryKey"`
	ReplicaKeys        []multiRegionKey `json:"ReplicaKeys"`
}

type multiRegionKey struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

type createKeyInput struct {
	Policy                         string
	Description                    string
	KeyUsage                       string
	CustomerMasterKeySpec          string
	KeySpec                        string
	Origin                         string
	CustomKeyStoreId               string
	BypassPolicyLockoutSafetyCheck bool
	Tags                           []struct{ TagKey, TagValue string }
	MultiRegion                    bool
	XksKeyId                       string
}

type keyMetadataOutput struct {
	KeyMetadata *keyMetadata `json:"KeyMetadata"`
}

type keyIDInput struct {
	KeyId       string
	GrantTokens []string
}

type listInput struct {
	KeyId  string
	Limit  *int
	Marker string
}

type keyListEntry struct {
	KeyId  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

type listKeysOutput struct {
	Keys       []keyListEntry `json:"Keys"`
	NextMarker string         `json:"NextMarker,omitempty"`
	Truncated  bool           `json:"Truncated"`
}

type aliasListEntry struct {
	AliasName       string    `json:"AliasName"`
	AliasArn        string    `json:"AliasArn"`
	TargetKeyId     string    `json:"TargetKeyId"`
	CreationDate    epochTime `json:"CreationDate"`
	LastUpdatedDate epochTime `json:"LastUpdatedDate"`
}

type listAliasesOutput struct {
	Aliases    []aliasListEntry `json:"Aliases"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

type createAliasInput struct {
	AliasName   string
	TargetKeyId string
}

type encryptInput struct {
	KeyId               string
	Plaintext           []byte
	EncryptionContext   map[string]string
	GrantTokens         []string
	EncryptionAlgorithm string
	DryRun              bool
}

type encryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyId               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

type decryptInput struct {
	CiphertextBlob      []byte
	EncryptionContext   map[string]string
	GrantTokens         []string
	KeyId               string
	EncryptionAlgorithm string
	Recipient           json.RawMessage
	DryRun              bool
}

type decryptOutput struct {
	KeyId               string `json:"KeyId"`
	Plaintext           []byte `json:"Plaintext"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

type reEncryptInput struct {
	CiphertextBlob                 []byte
	SourceEncryptionContext        map[string]string
	SourceKeyId                    string
	DestinationKeyId               string
	DestinationEncryptionContext   map[string]string
	SourceEncryptionAlgorithm      string
	DestinationEncryptionAlgorithm string
	GrantTokens                    []string
	DryRun                         bool
}

type reEncryptOutput struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	SourceKeyId                    string `json:"SourceKeyId"`
	KeyId                          string `json:"KeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
}

type generateDataKeyInput struct {
	KeyId             string
	EncryptionContext map[string]string
	NumberOfBytes     *int
	KeySpec           string
	GrantTokens       []string
	Recipient         json.RawMessage
	DryRun            bool
}

type generateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext,omitempty"`
	KeyId          string `json:"KeyId"`
}

type scheduleKeyDeletionInput struct {
	KeyId               string
	PendingWindowInDays *int
}

type scheduleKeyDeletionOutput struct {
	KeyId               string    `json:"KeyId"`
	DeletionDate        epochTime `json:"DeletionDate"`
	KeyState            string    `json:"KeyState"`
	PendingWindowInDays int       `json:"PendingWindowInDays"`
}

type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}
