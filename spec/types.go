package spec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/encjob/encjob/internal/pathglob"
)

// APIVersion is the only apiVersion this package reads.
const APIVersion = "encjob.dev/v1"

// Document kinds.
const (
	KindJob    = "EncryptionJob"
	KindPolicy = "EncryptionPolicy"
)

// Document is one YAML document of a spec file. Exactly one of Job and
// Policy is set, according to Kind.
type Document struct {
	APIVersion string
	Kind       string
	Metadata   Metadata
	Job        *Job
	Policy     *Policy
	Pos        Position   // where the document starts
	Positions  *Positions // field path → position, e.g. "spec.keyGroups.dev.keyFile"
}

// Metadata names a document.
type Metadata struct {
	Name   string            `json:"name" yaml:"name"`
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Operation is what a job does to each item.
type Operation string

// Operations.
const (
	OpEncrypt   Operation = "encrypt"
	OpDecrypt   Operation = "decrypt"
	OpReencrypt Operation = "reencrypt"
)

// Job is the spec of an EncryptionJob. Field docs give the defaults that
// Defaults applies; spec/REFERENCE.md is the user-facing reference.
type Job struct {
	Operation            Operation            `json:"operation" yaml:"operation"`
	Sources              []Source             `json:"sources" yaml:"sources"`
	Output               Output               `json:"output" yaml:"output"`
	KeyGroups            map[string]*KeyGroup `json:"keyGroups" yaml:"keyGroups"`
	Decrypt              DecryptSettings      `json:"decrypt,omitzero" yaml:"decrypt,omitempty"`
	Encrypt              EncryptSettings      `json:"encrypt,omitzero" yaml:"encrypt,omitempty"`
	Reencrypt            ReencryptSettings    `json:"reencrypt,omitzero" yaml:"reencrypt,omitempty"`
	CommitmentPolicy     string               `json:"commitmentPolicy,omitempty" yaml:"commitmentPolicy,omitempty"`         // default require-encrypt-require-decrypt
	MaxEncryptedDataKeys int                  `json:"maxEncryptedDataKeys,omitempty" yaml:"maxEncryptedDataKeys,omitempty"` // 0 = DefaultMaxEncryptedDataKeys (see Defaults)
	Caching              *Caching             `json:"caching,omitempty" yaml:"caching,omitempty"`                           // nil = no caching
	Execution            Execution            `json:"execution,omitzero" yaml:"execution,omitempty"`
	Metadata             MetadataLog          `json:"metadata,omitzero" yaml:"metadata,omitempty"`
	S3                   S3Config             `json:"s3,omitzero" yaml:"s3,omitempty"`
	KMS                  KMSConfig            `json:"kms,omitzero" yaml:"kms,omitempty"`

	// Positions maps field paths ("spec.output.path") to the file; nil
	// for jobs built in code. Not part of the spec or its digest.
	Positions *Positions `json:"-" yaml:"-"`
}

// Source is one place items are read from.
type Source struct {
	Path           string   `json:"path" yaml:"path"` // local file/dir, "-" for stdin, or s3://bucket/prefix
	Include        []string `json:"include,omitempty" yaml:"include,omitempty"`
	Exclude        []string `json:"exclude,omitempty" yaml:"exclude,omitempty"`
	FollowSymlinks bool     `json:"followSymlinks,omitempty" yaml:"followSymlinks,omitempty"`
	Format         string   `json:"format,omitempty" yaml:"format,omitempty"`     // esdk (default) | kms
	Encoding       string   `json:"encoding,omitempty" yaml:"encoding,omitempty"` // binary (default) | base64: inputs are base64 text
}

// Filter compiles the source's include/exclude lists (see NewFilter).
func (s *Source) Filter() (*pathglob.Filter, error) { return NewFilter(s.Include, s.Exclude) }

// IsS3 reports whether the source is an S3 URL.
func (s *Source) IsS3() bool { return strings.HasPrefix(s.Path, "s3://") }

// Overwrite policies for existing destinations.
const (
	OverwriteNever   = "never"    // an existing destination is a conflict unless provably current (default)
	OverwriteIfNewer = "if-newer" // replaced unless provably made from the source's current version (no timestamp is compared)
	OverwriteAlways  = "always"   // always replaced
)

// Output says where results go. Exactly one of Path, InPlace, Stdout.
type Output struct {
	Path        string `json:"path,omitempty" yaml:"path,omitempty"` // directory, file or s3://bucket/prefix
	Suffix      string `json:"suffix,omitempty" yaml:"suffix,omitempty"`
	StripSuffix string `json:"stripSuffix,omitempty" yaml:"stripSuffix,omitempty"`
	InPlace     bool   `json:"inPlace,omitempty" yaml:"inPlace,omitempty"`
	Stdout      bool   `json:"stdout,omitempty" yaml:"stdout,omitempty"`
	Overwrite   string `json:"overwrite,omitempty" yaml:"overwrite,omitempty"` // never | if-newer | always
	Verify      bool   `json:"verify,omitempty" yaml:"verify,omitempty"`
	Encoding    string `json:"encoding,omitempty" yaml:"encoding,omitempty"` // binary | base64
}

// Name maps a source item name to its output name: when the name ends
// with StripSuffix (non-empty) that suffix is removed and Suffix is not
// added; otherwise Suffix is appended. With the defaults, decrypt maps
// "x.encrypted" to "x" and "y" to "y.decrypted", and encrypt maps "x" to
// "x.encrypted".
func (o *Output) Name(name string) string {
	if o.StripSuffix != "" && strings.HasSuffix(name, o.StripSuffix) && len(name) > len(o.StripSuffix) {
		return strings.TrimSuffix(name, o.StripSuffix)
	}
	return name + o.Suffix
}

// Key providers.
const (
	ProviderAWSKMS = "aws-kms"
	ProviderRawAES = "raw-aes"
	ProviderRawRSA = "raw-rsa"
	// ProviderHierarchy is the AWS KMS Hierarchical keyring (branch keys
	// in a DynamoDB key store; fields in hierarchy.go).
	ProviderHierarchy = "aws-kms-hierarchy"
)

// KeyGroup is a named set of wrapping keys: the keys of one Provider, or,
// when Members is set, the union of several single-provider groups (as
// aws-encryption-cli's repeated -w options make), whose first member's
// first key generates each data key and every other key wraps it too.
type KeyGroup struct {
	Provider string `json:"provider,omitempty" yaml:"provider,omitempty"` // empty exactly when Members is set

	// Members are single-provider groups; a group with members has no
	// other field set.
	Members []KeyGroup `json:"members,omitempty" yaml:"members,omitempty"`

	// aws-kms
	Keys            []string         `json:"keys,omitempty" yaml:"keys,omitempty"`
	Discovery       bool             `json:"discovery,omitempty" yaml:"discovery,omitempty"`
	DiscoveryFilter *DiscoveryFilter `json:"discoveryFilter,omitempty" yaml:"discoveryFilter,omitempty"`
	GrantTokens     []string         `json:"grantTokens,omitempty" yaml:"grantTokens,omitempty"`
	Region          string           `json:"region,omitempty" yaml:"region,omitempty"`
	Profile         string           `json:"profile,omitempty" yaml:"profile,omitempty"`
	Endpoint        string           `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`

	// raw-aes, raw-rsa
	KeyFile     string `json:"keyFile,omitempty" yaml:"keyFile,omitempty"`
	KeyEncoding string `json:"keyEncoding,omitempty" yaml:"keyEncoding,omitempty"` // raw-aes: raw (default) | base64
	Namespace   string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Name        string `json:"name,omitempty" yaml:"name,omitempty"`
	Padding     string `json:"padding,omitempty" yaml:"padding,omitempty"` // raw-rsa
	Generate    bool   `json:"generate,omitempty" yaml:"generate,omitempty"`

	// aws-kms-hierarchy (with grantTokens, region, profile and endpoint
	// for its KMS client)
	KeyStore        *KeyStore        `json:"keyStore,omitempty" yaml:"keyStore,omitempty"`
	BranchKeyID     string           `json:"branchKeyId,omitempty" yaml:"branchKeyId,omitempty"`
	BranchKeyIDFrom *BranchKeyIDFrom `json:"branchKeyIdFrom,omitempty" yaml:"branchKeyIdFrom,omitempty"`
	CacheTTL        Duration         `json:"cacheTTL,omitzero" yaml:"cacheTTL,omitempty"`
	CacheSize       int              `json:"cacheSize,omitempty" yaml:"cacheSize,omitempty"`

	// raw-ecdh, aws-kms-ecdh (keys: the one KMS key-agreement key),
	// aws-kms-rsa (keys: the one KMS RSA key ARN); see asym.go.
	Curve                  string `json:"curve,omitempty" yaml:"curve,omitempty"`
	Scheme                 string `json:"scheme,omitempty" yaml:"scheme,omitempty"`
	PrivateKeyFile         string `json:"privateKeyFile,omitempty" yaml:"privateKeyFile,omitempty"`
	RecipientPublicKeyFile string `json:"recipientPublicKeyFile,omitempty" yaml:"recipientPublicKeyFile,omitempty"`
	PublicKeyFile          string `json:"publicKeyFile,omitempty" yaml:"publicKeyFile,omitempty"` // the KMS key's public key (saves GetPublicKey)
	EncryptionAlgorithm    string `json:"encryptionAlgorithm,omitempty" yaml:"encryptionAlgorithm,omitempty"`
}

// Singles returns the single-provider groups g consists of: its members,
// or g itself.
func (g *KeyGroup) Singles() []*KeyGroup {
	if g == nil {
		return nil // a group written as null (keyGroups: {name}), reported by validation
	}
	if len(g.Members) == 0 {
		return []*KeyGroup{g}
	}
	out := make([]*KeyGroup, len(g.Members))
	for i := range g.Members {
		out[i] = &g.Members[i]
	}
	return out
}

// DiscoveryFilter limits an aws-kms discovery group to keys of these
// accounts in this partition.
type DiscoveryFilter struct {
	Accounts  []string `json:"accounts" yaml:"accounts"`
	Partition string   `json:"partition" yaml:"partition"`
}

// DecryptSettings configure the decrypt side (decrypt and reencrypt).
type DecryptSettings struct {
	KeyGroup string `json:"keyGroup,omitempty" yaml:"keyGroup,omitempty"`
	// RequireContext lists pairs every message must carry; a nil value
	// means only the key must be present.
	RequireContext map[string]*string `json:"requireContext,omitempty" yaml:"requireContext,omitempty"`
	UnsignedOnly   bool               `json:"unsignedOnly,omitempty" yaml:"unsignedOnly,omitempty"`
	MaxBodyLength  ByteSize           `json:"maxBodyLength,omitempty" yaml:"maxBodyLength,omitempty"` // 0 = no limit
	// ReproducedContext is the encryption context the messages are
	// expected to have (the ESDKs' decrypt encryption context): pairs a
	// message stores must agree with it, and it supplies the pairs a
	// required-encryption-context CMM kept out of the header (they are
	// authenticated on decryption, so a wrong value fails the item).
	ReproducedContext map[string]string `json:"reproducedContext,omitempty" yaml:"reproducedContext,omitempty"`
}

// EncryptSettings configure the encrypt side (encrypt and reencrypt).
type EncryptSettings struct {
	KeyGroup    string            `json:"keyGroup,omitempty" yaml:"keyGroup,omitempty"`
	Context     map[string]string `json:"context,omitempty" yaml:"context,omitempty"`
	Algorithm   string            `json:"algorithm,omitempty" yaml:"algorithm,omitempty"`     // default AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
	FrameLength *int              `json:"frameLength,omitempty" yaml:"frameLength,omitempty"` // default 4096; 0 = non-framed
	// RequiredContextKeys are context keys whose pairs the new messages
	// authenticate but do not store (the required-encryption-context CMM):
	// readers must reproduce them (decrypt.reproducedContext).
	RequiredContextKeys []string `json:"requiredContextKeys,omitempty" yaml:"requiredContextKeys,omitempty"`
}

// ReencryptSettings edit the encryption context carried over on
// re-encryption: Remove is applied first, then Add.
type ReencryptSettings struct {
	Add    map[string]string `json:"add,omitempty" yaml:"add,omitempty"`
	Remove []string          `json:"remove,omitempty" yaml:"remove,omitempty"`
	// Mode is full (a new data key, every byte re-encrypted; the default,
	// normalised to "") or rewrap (the data key, suite, frame length and
	// body are kept; only the wrapped keys, the context and the header
	// authentication - and the signature of signed suites - are new).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// AllowHeaderNonceReuse makes mode rewrap rewrap message format v2
	// (0x0478, 0x0578) too. Without it those items are re-encrypted in
	// full: their rewrap would authenticate the new header under the old
	// header's key and nonce (crypto.RewrapReusesHeaderNonce).
	AllowHeaderNonceReuse bool `json:"allowHeaderNonceReuse,omitempty" yaml:"allowHeaderNonceReuse,omitempty"`
	// Require makes the mode a demand instead of a preference: rewrap
	// (implies mode rewrap) turns every item that would otherwise be
	// re-encrypted in full - message format v2 without
	// allowHeaderNonceReuse, a KMS blob, in a policy a suite violation -
	// into an error item naming why; full (mode full) makes a policy
	// rule re-encrypt in full any item whose current message a rewrap
	// wrote, as the metadata log shows (headers cannot tell). The policy
	// check audits both: an item whose recorded last change is not the
	// required kind violates its rule.
	Require string `json:"require,omitempty" yaml:"require,omitempty"`
	// HeaderInPlace lets an in-place rewrap of a local file whose new
	// header has exactly the old header's length (unsigned suites)
	// overwrite the header in place behind a durable journal instead of
	// writing a whole new file: O(header) for a file of any size. Opt-in
	// because it is not atomic for readers: during the one write of a few
	// hundred bytes a reader may see a mix of the two headers, which fails
	// authentication (see sources.HeaderRewriter). Only with mode rewrap
	// and output.inPlace.
	HeaderInPlace bool `json:"headerInPlace,omitempty" yaml:"headerInPlace,omitempty"`
	// StoreRequiredContext makes the new message store the pairs the
	// source authenticated without storing (supplied by
	// decrypt.reproducedContext). Without it the new message keeps them
	// out of its header too, so its readers need the same reproduced
	// context; encrypt.requiredContextKeys are kept out either way.
	StoreRequiredContext bool `json:"storeRequiredContext,omitempty" yaml:"storeRequiredContext,omitempty"`
}

// Re-encryption modes.
const (
	ReencryptFull   = "full"
	ReencryptRewrap = "rewrap"
)

// Rewrap reports whether the job re-encrypts by rewrapping data keys.
func (j *Job) Rewrap() bool {
	return j.Operation == OpReencrypt && j.Reencrypt.EffectiveMode() == ReencryptRewrap
}

// EffectiveMode is the mode the settings ask for: Mode, or rewrap when
// only Require rewrap is set; "" (full) otherwise.
func (r *ReencryptSettings) EffectiveMode() string {
	if r.Mode == "" && r.Require == ReencryptRewrap {
		return ReencryptRewrap
	}
	if r.Mode == ReencryptFull {
		return ""
	}
	return r.Mode
}

// RequiresRewrap reports whether every re-encrypted item must be
// rewrapped (reencrypt.require: rewrap): no fallback to a full
// re-encryption.
func (r *ReencryptSettings) RequiresRewrap() bool { return r.Require == ReencryptRewrap }

// RequiresFull reports whether every re-encrypted item must get a new
// data key (reencrypt.require: full).
func (r *ReencryptSettings) RequiresFull() bool { return r.Require == ReencryptFull }

// Caching configures the caching materials manager.
type Caching struct {
	Capacity             int      `json:"capacity,omitempty" yaml:"capacity,omitempty"` // default 100
	MaxAge               Duration `json:"maxAge" yaml:"maxAge"`                         // required
	MaxMessagesEncrypted int64    `json:"maxMessagesEncrypted,omitempty" yaml:"maxMessagesEncrypted,omitempty"`
	MaxBytesEncrypted    ByteSize `json:"maxBytesEncrypted,omitempty" yaml:"maxBytesEncrypted,omitempty"`
}

// Error handling modes.
const (
	OnErrorContinue  = "continue"
	OnErrorFailFast  = "fail-fast"
	defaultRetries   = 3
	defaultCacheCap  = 100
	defaultPartSize  = 8 << 20
	minPartSize      = 5 << 20
	maxPartSize      = 5 << 30
	defaultFrameLen  = 4096
	maxFrameLen      = math.MaxInt32
	defaultMaxAttmpt = 3
)

// Execution tunes how a job runs; it does not change what it produces
// and is left out of Digest.
type Execution struct {
	Concurrency int    `json:"concurrency,omitempty" yaml:"concurrency,omitempty"` // default 2×GOMAXPROCS
	OnError     string `json:"onError,omitempty" yaml:"onError,omitempty"`         // continue | fail-fast
	Retries     *int   `json:"retries,omitempty" yaml:"retries,omitempty"`         // default 3
	ExpectSkips bool   `json:"expectSkips,omitempty" yaml:"expectSkips,omitempty"`
	Shards      int    `json:"shards,omitempty" yaml:"shards,omitempty"` // default 1
}

// MetadataLog configures the per-item JSON-lines log.
type MetadataLog struct {
	Output    string `json:"output,omitempty" yaml:"output,omitempty"` // path, s3:// URL or "-"; "" = no log
	Overwrite bool   `json:"overwrite,omitempty" yaml:"overwrite,omitempty"`
}

// S3Config configures the S3 client.
type S3Config struct {
	Region    string   `json:"region,omitempty" yaml:"region,omitempty"`
	Profile   string   `json:"profile,omitempty" yaml:"profile,omitempty"`
	Endpoint  string   `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
	PathStyle bool     `json:"pathStyle,omitempty" yaml:"pathStyle,omitempty"`
	PartSize  ByteSize `json:"partSize,omitempty" yaml:"partSize,omitempty"` // default 8MiB, >= 5MiB
	// Timeout: every S3 call must make progress (connect, response
	// headers, each read/write) within it; default 60s.
	Timeout Duration `json:"timeout,omitzero" yaml:"timeout,omitempty"`
	// NoConditionalWrites: the server does not honour If-None-Match /
	// If-Match on writes; destinations check with HEAD right before each
	// write instead (sources.S3Options.NoConditionalWrites).
	NoConditionalWrites bool `json:"noConditionalWrites,omitempty" yaml:"noConditionalWrites,omitempty"`
}

// KMS retry modes.
const (
	RetryStandard = "standard"
	RetryAdaptive = "adaptive"
)

// KMSConfig configures the KMS client.
type KMSConfig struct {
	RateLimit   float64 `json:"rateLimit,omitempty" yaml:"rateLimit,omitempty"`     // requests/s; 0 = unlimited
	RetryMode   string  `json:"retryMode,omitempty" yaml:"retryMode,omitempty"`     // standard | adaptive
	MaxAttempts int     `json:"maxAttempts,omitempty" yaml:"maxAttempts,omitempty"` // default 3
	Endpoint    string  `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
	// Timeout bounds each KMS request attempt; default 30s.
	Timeout Duration `json:"timeout,omitzero" yaml:"timeout,omitempty"`
}

// Policy is the spec of an EncryptionPolicy: items under Sources must
// satisfy the first rule whose pattern matches their location.
type Policy struct {
	Sources   []Source             `json:"sources" yaml:"sources"`
	Rules     []Rule               `json:"rules" yaml:"rules"`
	KeyGroups map[string]*KeyGroup `json:"keyGroups" yaml:"keyGroups"`
	// DecryptKeyGroups are tried to decrypt an item that must be
	// re-wrapped; default: every key group, in name order.
	DecryptKeyGroups     []string    `json:"decryptKeyGroups,omitempty" yaml:"decryptKeyGroups,omitempty"`
	CommitmentPolicy     string      `json:"commitmentPolicy,omitempty" yaml:"commitmentPolicy,omitempty"`
	MaxEncryptedDataKeys int         `json:"maxEncryptedDataKeys,omitempty" yaml:"maxEncryptedDataKeys,omitempty"`
	Caching              *Caching    `json:"caching,omitempty" yaml:"caching,omitempty"`
	Execution            Execution   `json:"execution,omitzero" yaml:"execution,omitempty"`
	Metadata             MetadataLog `json:"metadata,omitzero" yaml:"metadata,omitempty"`
	S3                   S3Config    `json:"s3,omitzero" yaml:"s3,omitempty"`
	KMS                  KMSConfig   `json:"kms,omitzero" yaml:"kms,omitempty"`

	Positions *Positions `json:"-" yaml:"-"`
}

// Rule is one policy rule. An Exempt rule matches items that the policy
// leaves alone (neither checked nor changed).
type Rule struct {
	Match          []string           `json:"match" yaml:"match"`
	Exempt         bool               `json:"exempt,omitempty" yaml:"exempt,omitempty"`
	KeyGroup       string             `json:"keyGroup,omitempty" yaml:"keyGroup,omitempty"`
	RequireContext map[string]*string `json:"requireContext,omitempty" yaml:"requireContext,omitempty"`
	// RequiredContextKeys are requireContext keys whose pairs matching
	// messages authenticate without storing (a required encryption
	// context): a header that does not store one is not missing it, one
	// that stores it violates the rule, and reconciliation writes messages
	// that keep them out, reproducing their values from requireContext.
	RequiredContextKeys []string `json:"requiredContextKeys,omitempty" yaml:"requiredContextKeys,omitempty"`
	Algorithm           string   `json:"algorithm,omitempty" yaml:"algorithm,omitempty"` // default: the job default suite
	RequireSigned       bool     `json:"requireSigned,omitempty" yaml:"requireSigned,omitempty"`
	RequireCommitting   bool     `json:"requireCommitting,omitempty" yaml:"requireCommitting,omitempty"`
	// Reencrypt says how apply moves a message that violates the rule
	// only by its key group or context: mode full (the default: a fresh
	// data key) or rewrap (the data key and body kept, plan ^), with
	// allowHeaderNonceReuse as for a job. A violation of the suite is
	// always fixed by full re-encryption. add and remove are not rule
	// fields (requireContext is).
	Reencrypt ReencryptSettings `json:"reencrypt,omitzero" yaml:"reencrypt,omitempty"`
}

// PolicyMatcher finds the rule that applies to an item.
type PolicyMatcher struct {
	rules    []Rule
	patterns [][]*pathglob.Pattern
}

// Matcher compiles the rules' patterns.
func (p *Policy) Matcher() (*PolicyMatcher, error) {
	m := &PolicyMatcher{rules: p.Rules}
	var errs ErrorList
	for i, r := range p.Rules {
		var ps []*pathglob.Pattern
		for j, g := range r.Match {
			c, err := pathglob.Compile(g)
			if err != nil {
				errs = append(errs, Invalid(NewPath("spec", "rules").Index(i).Child("match").Index(j), g, patternReason(err)))
				continue
			}
			ps = append(ps, c)
		}
		m.patterns = append(m.patterns, ps)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return m, nil
}

// Match returns the first rule matching location (the source path joined
// with the item's relative path, e.g. "data/invoices/a.csv" or
// "s3://bucket/invoices/a.csv"), its index and the pattern that matched;
// index -1 and a nil rule when none does. A leading "./" and leading "/"
// of location are ignored, so "/a.csv" matches "./a.csv" and "/a.csv".
func (m *PolicyMatcher) Match(location string) (index int, rule *Rule, pattern string) {
	location = strings.TrimLeft(strings.TrimPrefix(location, "./"), "/")
	for i, ps := range m.patterns {
		for _, p := range ps {
			if p.Match(location) {
				return i, &m.rules[i], p.String()
			}
		}
	}
	return -1, nil, ""
}

// Duration is a time.Duration written as "90s", "5m", "1h30m".
type Duration struct{ time.Duration }

func (d *Duration) setScalar(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errors.New(`want a duration such as "90s", "5m" or "1h30m"`)
	}
	d.Duration = v
	return nil
}

// MarshalText renders the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error { return d.setScalar(string(b)) }

// IsZero reports whether the duration is zero (for omitzero).
func (d Duration) IsZero() bool { return d.Duration == 0 }

// ByteSize is a number of bytes written as an integer or with a unit:
// 8MiB, 5MB, 64KiB, 1GiB (KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB
// of 1000; K/M/G/T mean KiB/MiB/GiB/TiB).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mul    int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

func (b *ByteSize) setScalar(s string) error {
	t := strings.TrimSpace(s)
	mul := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), 10, 64)
	if err != nil || n < 0 {
		return errors.New(`want a non-negative size such as 8388608, "64KiB" or "8MiB"`)
	}
	if n > math.MaxInt64/mul {
		return errors.New("size too large")
	}
	*b = ByteSize(n * mul)
	return nil
}

// String renders the size with the largest exact binary unit.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.m, u.s)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
