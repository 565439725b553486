package awskms

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// keyARN is a parsed AWS KMS ARN: arn:<partition>:kms:<region>:<account>:<type>/<id>
// where type is "key" or "alias".
type keyARN struct {
	Partition    string
	Region       string
	Account      string
	ResourceType string // "key" or "alias"
	ResourceID   string
}

// parseKeyARN parses an AWS KMS key or alias ARN.
func parseKeyARN(s string) (keyARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return keyARN{}, fmt.Errorf("%q is not an ARN: %w", s, err)
	}
	if a.Service != "kms" {
		return keyARN{}, fmt.Errorf("%q is not an AWS KMS ARN (service %q)", s, a.Service)
	}
	if a.Partition == "" || a.Region == "" || a.AccountID == "" {
		return keyARN{}, fmt.Errorf("%q is not an AWS KMS ARN: partition, region and account must be set", s)
	}
	typ, id, ok := strings.Cut(a.Resource, "/")
	if !ok || id == "" || (typ != "key" && typ != "alias") {
		return keyARN{}, fmt.Errorf("%q is not an AWS KMS ARN: resource must be key/<id> or alias/<name>", s)
	}
	return keyARN{Partition: a.Partition, Region: a.Region, Account: a.AccountID, ResourceType: typ, ResourceID: id}, nil
}

func (a keyARN) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":" + a.ResourceType + "/" + a.ResourceID
}

// isMRK reports whether a names a multi-Region key (key ids starting "mrk-").
func (a keyARN) isMRK() bool {
	return a.ResourceType == "key" && strings.HasPrefix(a.ResourceID, "mrk-")
}

// inRegion returns a copy of a in region r.
func (a keyARN) inRegion(r string) keyARN {
	a.Region = r
	return a
}

// mrkMatch implements the specification's "AWS KMS MRK Match for Decrypt":
// identical ARNs match; two multi-Region key ARNs match when everything but
// the region is equal; anything else does not match.
func mrkMatch(configured, edk keyARN) bool {
	if configured == edk {
		return true
	}
	if !configured.isMRK() || !edk.isMRK() {
		return false
	}
	return configured.inRegion("") == edk.inRegion("")
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
func classifyIdentifier(s string) (identifierKind, keyARN, error) {
	switch {
	case s == "":
		return 0, keyARN{}, fmt.Errorf("empty key identifier")
	case strings.HasPrefix(s, "arn:"):
		a, err := parseKeyARN(s)
		if err != nil {
			return 0, keyARN{}, err
		}
		if a.ResourceType == "alias" {
			return idAliasARN, a, nil
		}
		return idKeyARN, a, nil
	case strings.HasPrefix(s, "alias/"):
		if len(s) == len("alias/") {
			return 0, keyARN{}, fmt.Errorf("%q: alias name is empty", s)
		}
		return idAliasName, keyARN{}, nil
	case strings.ContainsAny(s, ":/ "):
		return 0, keyARN{}, fmt.Errorf("%q is not a key id, key ARN, alias name (alias/...) or alias ARN", s)
	default:
		return idKeyID, keyARN{}, nil
	}
}
