package kmsemu

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Default account and region of a seed, and the caller's account.
const (
	DefaultAccount = "111122223333"
	DefaultRegion  = "us-east-1"
)

// Seed declares the keys an emulator starts with. Account and Region are the
// defaults for keys that name neither; Account is also the caller's account:
// the account in which bare key ids and alias names are resolved and in which
// CreateKey, ListKeys and ListAliases operate.
type Seed struct {
	Account string    `yaml:"account"`
	Region  string    `yaml:"region"`
	Keys    []SeedKey `yaml:"keys"`
}

// SeedKey declares one KMS key.
type SeedKey struct {
	// ID is a key id (a UUID such as 1234abcd-12ab-34cd-56ef-1234567890ab)
	// or, for a multi-region key, "mrk-" and 32 lowercase hex digits.
	// Generated if empty (an mrk- id when Replicas is not empty).
	ID string `yaml:"id"`
	// Account and Region default to the seed's.
	Account string `yaml:"account"`
	Region  string `yaml:"region"`
	// Aliases ("alias/name") are created in the key's region and in every
	// replica region.
	Aliases []string `yaml:"aliases"`
	// Replicas lists the other regions that hold a replica of a
	// multi-region key, with the same key material.
	Replicas []string `yaml:"replicas"`
	// AllowedOperations lists the key-scoped operations the caller may
	// perform with this key (DescribeKey, Encrypt, Decrypt, ReEncrypt
	// or ReEncryptFrom/ReEncryptTo, GenerateDataKey,
	// GenerateDataKeyWithoutPlaintext, EnableKey, DisableKey,
	// ScheduleKeyDeletion, CreateAlias); empty allows all.
	AllowedOperations []string `yaml:"allowedOperations"`
	// Enabled defaults to true.
	Enabled *bool `yaml:"enabled"`
	// Usage is ENCRYPT_DECRYPT (the default), or SIGN_VERIFY,
	// GENERATE_VERIFY_MAC or KEY_AGREEMENT for keys that exist only to be
	// rejected by the cryptographic operations (InvalidKeyUsageException).
	Usage string `yaml:"usage"`
	// KeySpec is SYMMETRIC_DEFAULT (the default), RSA_2048, RSA_3072 or
	// RSA_4096 (usage ENCRYPT_DECRYPT: RSAES_OAEP_SHA_1/256), or
	// ECC_NIST_P256, ECC_NIST_P384 or ECC_NIST_P521 (usage KEY_AGREEMENT:
	// DeriveSharedSecret). Asymmetric key pairs are generated at start
	// and have no replicas. Usages SIGN_VERIFY and GENERATE_VERIFY_MAC
	// keep their default spec (RSA_2048, HMAC_256) and have no key.
	KeySpec string `yaml:"keySpec"`
	// Material is optional standard base64 of 32 bytes of key material,
	// for reproducible demos; random if empty.
	Material string `yaml:"material"`
}

// ParseSeed decodes a YAML seed strictly (unknown fields are errors) and
// validates it. Errors name the field path and its line.
func ParseSeed(data []byte) (*Seed, error) {
	var s Seed
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("kmsemu: seed: %w", err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // already decoded once; only used for line numbers
	if _, _, _, err := s.normalize(func(p fieldPath) int { return p.line(&root) }); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadSeed reads and parses a seed file.
func LoadSeed(path string) (*Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kmsemu: read seed: %w", err)
	}
	s, err := ParseSeed(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

var reAlias = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

func validKeyID(id string) bool { return isUUID(id) || isMRK(id) }

// checkAliasName returns a problem with an alias name, or "".
func checkAliasName(name string) string {
	switch {
	case !reAlias.MatchString(name):
		return "must be alias/ followed by 1 to 250 of a-z A-Z 0-9 / _ -"
	case strings.HasPrefix(name, "alias/aws/"):
		return "the alias/aws/ prefix is reserved for AWS managed keys"
	}
	return ""
}

// fieldPath is a path into the seed document, such as keys[2].aliases[0].
type fieldPath []any

func (p fieldPath) String() string {
	var b strings.Builder
	for _, el := range p {
		switch v := el.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// line returns the line of the node at p in doc, or of its closest existing
// ancestor; 0 if unknown.
func (p fieldPath) line(doc *yaml.Node) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, el := range p {
		var next *yaml.Node
		switch v := el.(type) {
		case int:
			if n.Kind == yaml.SequenceNode && v < len(n.Content) {
				next = n.Content[v]
			}
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == v {
						next = n.Content[i+1]
					}
				}
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// normKey is a validated seed key with every default applied.
type normKey struct {
	SeedKey
	material []byte // nil unless given
	enabled  bool
	allowed  map[string]bool // nil = all
}

// normalize validates the seed and returns its keys with defaults applied
// (ids are generated). line maps a field path to a line number (may be nil).
// Every problem is reported, each with its field path.
func (s *Seed) normalize(line func(fieldPath) int) (account, region string, keys []normKey, err error) {
	var errs []error
	bad := func(p fieldPath, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line != nil {
			if l := line(p); l > 0 {
				errs = append(errs, fmt.Errorf("kmsemu: seed: line %d: %s: %s", l, p, msg))
				return
			}
		}
		errs = append(errs, fmt.Errorf("kmsemu: seed: %s: %s", p, msg))
	}
	account, region = s.Account, s.Region
	if account == "" {
		account = DefaultAccount
	} else if !isAccount(account) {
		bad(fieldPath{"account"}, "%q is not a 12-digit AWS account id", account)
	}
	if region == "" {
		region = DefaultRegion
	} else if !isRegion(region) {
		bad(fieldPath{"region"}, "%q is not a region name such as us-east-1", region)
	}
	type loc struct{ account, region, name string }
	ids := map[loc]fieldPath{}
	aliases := map[loc]fieldPath{}
	for i, sk := range s.Keys {
		p := fieldPath{"keys", i}
		k := normKey{SeedKey: sk, enabled: sk.Enabled == nil || *sk.Enabled}
		k.Aliases, k.Replicas, k.AllowedOperations = slices.Clone(sk.Aliases), slices.Clone(sk.Replicas), slices.Clone(sk.AllowedOperations)
		if k.Account == "" {
			k.Account = account
		} else if !isAccount(k.Account) {
			bad(append(p, "account"), "%q is not a 12-digit AWS account id", k.Account)
		}
		if k.Region == "" {
			k.Region = region
		} else if !isRegion(k.Region) {
			bad(append(p, "region"), "%q is not a region name such as us-east-1", k.Region)
		}
		switch {
		case k.ID == "" && len(k.Replicas) > 0:
			k.ID = newMRKID()
		case k.ID == "":
			k.ID = newKeyID()
		case !validKeyID(k.ID):
			bad(append(p, "id"), "%q is neither a key id (lowercase UUID) nor a multi-region key id (mrk- and 32 lowercase hex digits)", k.ID)
		}
		if len(k.Replicas) > 0 && !strings.HasPrefix(k.ID, "mrk-") {
			bad(append(p, "replicas"), "only multi-region keys (id mrk-...) have replicas")
		}
		regions := []string{k.Region}
		for j, r := range k.Replicas {
			switch {
			case !isRegion(r):
				bad(append(p, "replicas", j), "%q is not a region name such as us-east-1", r)
			case slices.Contains(regions, r):
				bad(append(p, "replicas", j), "region %q is listed twice (the key's own region counts)", r)
			default:
				regions = append(regions, r)
			}
		}
		for _, r := range regions {
			l := loc{k.Account, r, k.ID}
			if prev, dup := ids[l]; dup {
				bad(append(p, "id"), "key %s already exists in %s/%s (declared at %s)", k.ID, k.Account, r, prev)
			}
			ids[l] = append(p, "id")
		}
		for j, a := range k.Aliases {
			ap := append(slices.Clone(p), "aliases", j)
			if msg := checkAliasName(a); msg != "" {
				bad(ap, "%q: %s", a, msg)
				continue
			}
			for _, r := range regions {
				l := loc{k.Account, r, a}
				if prev, dup := aliases[l]; dup {
					bad(ap, "alias %s already exists in %s/%s (declared at %s)", a, k.Account, r, prev)
				}
				aliases[l] = ap
			}
		}
		k.checkKind(p, bad)
		keys = append(keys, k)
	}
	if len(errs) > 0 {
		return "", "", nil, errors.Join(errs...)
	}
	return account, region, keys, nil
}

// checkKind validates a seed key's allowed operations, usage, key spec
// and material (filling k.allowed, k.Usage, k.KeySpec and k.material).
func (k *normKey) checkKind(p fieldPath, bad func(fieldPath, string, ...any)) {
	if len(k.AllowedOperations) > 0 {
		k.allowed = map[string]bool{}
		for j, op := range k.AllowedOperations {
			if !slices.Contains(keyScopedOps, op) {
				bad(append(p, "allowedOperations", j), "%q is not a key-scoped operation; use one of %s", op, strings.Join(keyScopedOps, ", "))
				continue
			}
			k.allowed[op] = true
		}
	}
	switch k.Usage {
	case "":
		k.Usage = usageEncrypt
	case usageEncrypt, "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT":
	default:
		bad(append(p, "usage"), "%q is not ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC or KEY_AGREEMENT", k.Usage)
	}
	if k.KeySpec == "" {
		k.KeySpec = specFor(k.Usage)
	}
	if stub := k.Usage == "SIGN_VERIFY" || k.Usage == "GENERATE_VERIFY_MAC"; !stub {
		if msg := checkSpecUsage(k.KeySpec, k.Usage); msg != "" {
			bad(append(p, "keySpec"), "%s", msg)
		}
		if asymSpecs[k.KeySpec] != "" && (len(k.Replicas) > 0 || k.Material != "") {
			bad(append(p, "keySpec"), "asymmetric keys have no replicas and no material (the key pair is generated)")
		}
	} else if k.KeySpec != specFor(k.Usage) {
		bad(append(p, "keySpec"), "%q is not supported for usage %s", k.KeySpec, k.Usage)
	}
	if k.Material != "" {
		m, err := base64.StdEncoding.DecodeString(k.Material)
		switch {
		case err != nil:
			bad(append(p, "material"), "not standard base64: %v", err)
		case len(m) != 32:
			bad(append(p, "material"), "decodes to %d bytes, want 32", len(m))
		default:
			k.material = m
		}
	}
}
