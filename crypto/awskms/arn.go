package awskms

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// ARN is a parsed AWS KMS ARN: arn:<partition>:kms:<region>:<account>:<type>/<id>
// where type is "key" or "alias". It is the one ARN parser of encjob: every
// package that needs a KMS key's region, account or multi-Region identity
// parses it here.
type ARN struct {
	Partition    string
	Region       string
	Account      string
	ResourceType string // "key" or "alias"
	ResourceID   string
}

// ParseARN parses an AWS KMS key or alias ARN. The error says which part
// is wrong.
func ParseARN(s string) (ARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return ARN{}, fmt.Errorf("%q is not an ARN: %w", s, err)
	}
	if a.Service != "kms" {
		return ARN{}, fmt.Errorf("%q is not an AWS KMS ARN (service %q)", s, a.Service)
	}
	if a.Partition == "" || a.Region == "" || a.AccountID == "" {
		return ARN{}, fmt.Errorf("%q is not an AWS KMS ARN: partition, region and account must be set", s)
	}
	typ, id, ok := strings.Cut(a.Resource, "/")
	if !ok || id == "" || (typ != "key" && typ != "alias") {
		return ARN{}, fmt.Errorf("%q is not an AWS KMS ARN: resource must be key/<id> or alias/<name>", s)
	}
	return ARN{Partition: a.Partition, Region: a.Region, Account: a.AccountID, ResourceType: typ, ResourceID: id}, nil
}

func (a ARN) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":" + a.ResourceType + "/" + a.ResourceID
}

// IsKey reports whether a names a key (not an alias).
func (a ARN) IsKey() bool { return a.ResourceType == "key" }

// IsKeyARN reports whether s is a well-formed AWS KMS key ARN (not an alias
// ARN, a key id or an alias name).
func IsKeyARN(s string) bool {
	a, err := ParseARN(s)
	return err == nil && a.IsKey()
}

// ARNRegion returns the region of a key or alias ARN, "" for anything else
// (key ids and alias names, which take the configured region).
func ARNRegion(s string) string {
	a, err := ParseARN(s)
	if err != nil {
		return ""
	}
	return a.Region
}

// IsMRK reports whether a names a multi-Region key (key ids starting "mrk-").
func (a ARN) IsMRK() bool {
	return a.ResourceType == "key" && strings.HasPrefix(a.ResourceID, "mrk-")
}

// InRegion returns a copy of a in region r.
func (a ARN) InRegion(r string) ARN {
	a.Region = r
	return a
}

// MRKMatch implements the specification's "AWS KMS MRK Match for Decrypt":
// identical ARNs match; two multi-Region key ARNs match when everything but
// the region is equal; anything else does not match.
func MRKMatch(configured, edk ARN) bool {
	if configured == edk {
		return true
	}
	if !configured.IsMRK() || !edk.IsMRK() {
		return false
	}
	return configured.InRegion("") == edk.InRegion("")
}

// identifierKind classifies a configured key identifier.
type identifierKind int

const (
	idKeyID identifierKind = iota
	idKeyARN
	idAliasName
	idAliasARN
)

// classifyIdentifier tells key ids, key ARNs, alias names and alias ARNs
// apart. It returns the parsed ARN for the ARN forms.
func classifyIdentifier(s string) (identifierKind, ARN, error) {
	switch {
	case s == "":
		return 0, ARN{}, fmt.Errorf("empty key identifier")
	case strings.HasPrefix(s, "arn:"):
		a, err := ParseARN(s)
		if err != nil {
			return 0, ARN{}, err
		}
		if a.ResourceType == "alias" {
			return idAliasARN, a, nil
		}
		return idKeyARN, a, nil
	case strings.HasPrefix(s, "alias/"):
		if len(s) == len("alias/") {
			return 0, ARN{}, fmt.Errorf("%q: alias name is empty", s)
		}
		return idAliasName, ARN{}, nil
	case strings.ContainsAny(s, ":/ "):
		return 0, ARN{}, fmt.Errorf("%q is not a key id, key ARN, alias name (alias/...) or alias ARN", s)
	default:
		return idKeyID, ARN{}, nil
	}
}
