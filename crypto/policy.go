package crypto

import (
	"fmt"
	"strings"
)

// CommitmentPolicy decides which suites may encrypt and decrypt.
type CommitmentPolicy int

const (
	// RequireEncryptRequireDecrypt is the default: only committing suites.
	RequireEncryptRequireDecrypt CommitmentPolicy = iota
	// RequireEncryptAllowDecrypt encrypts with committing suites and
	// decrypts any.
	RequireEncryptAllowDecrypt
	// ForbidEncryptAllowDecrypt encrypts only with non-committing suites
	// (for readers still on ESDK 1.x) and decrypts any.
	ForbidEncryptAllowDecrypt
)

var policyNames = []string{"require-encrypt-require-decrypt", "require-encrypt-allow-decrypt", "forbid-encrypt-allow-decrypt"}

func (p CommitmentPolicy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("CommitmentPolicy(%d)", int(p))
}

// ParseCommitmentPolicy accepts the kebab-case names and the upper-case
// names the ESDKs use (REQUIRE_ENCRYPT_REQUIRE_DECRYPT).
func ParseCommitmentPolicy(s string) (CommitmentPolicy, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	for i, n := range policyNames {
		if t == n {
			return CommitmentPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("crypto: unknown commitment policy %q (want one of %s)", s, strings.Join(policyNames, ", "))
}

// AllowsEncrypt reports whether the policy allows encrypting with s.
func (p CommitmentPolicy) AllowsEncrypt(s *Suite) bool { return s != nil && p.checkEncrypt(s) == nil }

// checkEncrypt reports whether the policy allows encrypting with s.
func (p CommitmentPolicy) checkEncrypt(s *Suite) error {
	switch {
	case p == ForbidEncryptAllowDecrypt && s.Committing:
		return fmt.Errorf("%w: commitment policy %s forbids the committing suite %s", ErrPolicy, p, s)
	case p != ForbidEncryptAllowDecrypt && !s.Committing:
		return fmt.Errorf("%w: commitment policy %s requires a committing suite, not %s", ErrPolicy, p, s)
	}
	return nil
}

// checkDecrypt reports whether the policy allows decrypting a message of s.
func (p CommitmentPolicy) checkDecrypt(s *Suite) error {
	if p == RequireEncryptRequireDecrypt && !s.Committing {
		return fmt.Errorf("%w: commitment policy %s refuses the non-committing suite %s", ErrPolicy, p, s)
	}
	return nil
}

// CheckEncrypt reports whether the policy allows writing messages of s
// (an error wrapping ErrPolicy when not).
func (p CommitmentPolicy) CheckEncrypt(s *Suite) error { return p.checkEncrypt(s) }
