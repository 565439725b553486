package awskms

import (
	"fmt"
	"slices"

	"github.com/encjob/encjob/crypto"
)

// Matcher answers crypto.EDKMatcher for an AWS KMS keyring configuration
// from key ARNs alone, without clients or KMS calls: a strict keyring
// matches EDKs whose provider info is one of its key ARNs (or a replica of
// one of its multi-Region keys), a discovery keyring every AWS KMS key ARN
// its filter allows. A Keyring answers with the Matcher of its resolved
// configuration; NewMatcher builds one for a configuration that has not
// been (or cannot be) turned into a keyring.
type Matcher struct {
	keys      []ARN
	discovery bool
	filter    *DiscoveryFilter
}

var _ crypto.EDKMatcher = (*Matcher)(nil)

// NewMatcher returns the matcher of a strict configuration (keyARNs, which
// must be key ARNs: aliases and key ids need DescribeKey, see New) or of a
// discovery one (discovery true, optional filter, keyARNs empty).
func NewMatcher(keyARNs []string, discovery bool, filter *DiscoveryFilter) (*Matcher, error) {
	if discovery == (len(keyARNs) > 0) {
		return nil, fmt.Errorf("awskms: a matcher needs either key ARNs or discovery, not both or neither")
	}
	m := &Matcher{discovery: discovery}
	if filter != nil {
		m.filter = &DiscoveryFilter{Accounts: slices.Clone(filter.Accounts), Partition: filter.Partition}
	}
	for i, s := range keyARNs {
		a, err := ParseARN(s)
		if err == nil && !a.IsKey() {
			err = fmt.Errorf("%q is an alias ARN, not a key ARN", s)
		}
		if err != nil {
			return nil, fmt.Errorf("awskms: keys[%d]: %w", i, err)
		}
		m.keys = append(m.keys, a)
	}
	return m, nil
}

// MatchesEDK implements crypto.EDKMatcher.
func (m *Matcher) MatchesEDK(edk crypto.EncryptedDataKey) bool {
	if m.discovery {
		_, why := m.discoveryTarget(edk)
		return why == ""
	}
	for _, key := range m.keys {
		if strictMatch(key, edk) {
			return true
		}
	}
	return false
}

// strictMatch: edk is an AWS KMS EDK under key (or a replica of it).
func strictMatch(key ARN, edk crypto.EncryptedDataKey) bool {
	if edk.ProviderID != ProviderID {
		return false
	}
	a, err := ParseARN(string(edk.ProviderInfo))
	return err == nil && MRKMatch(key, a)
}

// discoveryTarget returns the key ARN a discovery keyring would call
// Decrypt with for edk, or why it would not try edk ("" when it would).
func (m *Matcher) discoveryTarget(edk crypto.EncryptedDataKey) (ARN, string) {
	if edk.ProviderID != ProviderID {
		return ARN{}, "not an AWS KMS encrypted data key"
	}
	info := string(edk.ProviderInfo)
	a, err := ParseARN(info)
	if err == nil && !a.IsKey() {
		err = fmt.Errorf("%s is not a key ARN", info)
	}
	if err != nil {
		return ARN{}, fmt.Sprintf("provider info: %v", err)
	}
	if f := m.filter; f != nil {
		if a.Partition != f.Partition {
			return ARN{}, fmt.Sprintf("%s: partition %s is not the discovery filter's %s", info, a.Partition, f.Partition)
		}
		if !slices.Contains(f.Accounts, a.Account) {
			return ARN{}, fmt.Sprintf("%s: account %s is not in the discovery filter %v", info, a.Account, f.Accounts)
		}
	}
	return a, ""
}
