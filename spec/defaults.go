package spec

import (
	"runtime"
	"strings"
	"time"
)

// Defaults fills every unset field with its documented default (see
// REFERENCE.md) and normalises names: suites become their canonical
// names, commitment policies their kebab-case names. It is idempotent
// and Parse calls it on every valid job.
//
//	output.suffix          encrypt ".encrypted", decrypt ".decrypted", reencrypt ""
//	output.stripSuffix     decrypt ".encrypted", otherwise ""
//	output.overwrite       never
//	encrypt.algorithm      AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 (none for reencrypt.mode rewrap)
//	encrypt.frameLength    4096 (none for reencrypt.mode rewrap)
//	reencrypt.mode         full, normalised to ""
//	commitmentPolicy       require-encrypt-require-decrypt
//	maxEncryptedDataKeys   10, or the key count of the largest key group
//	caching.capacity       100; maxMessagesEncrypted 2^32; maxBytesEncrypted 2^63-1
//	execution              concurrency 2×GOMAXPROCS, onError continue, retries 3, shards 1
//	s3.partSize            8MiB
//	kms                    retryMode standard, maxAttempts 3, timeout 30s (per attempt)
//	s3.timeout             60s (idle: no progress for that long fails the call)
//	keyGroups.*            raw-aes keyEncoding raw
func (j *Job) Defaults() {
	o := &j.Output
	if !o.InPlace && !o.Stdout {
		switch j.Operation {
		case OpEncrypt:
			if o.Suffix == "" && o.StripSuffix == "" {
				o.Suffix = ".encrypted"
			}
		case OpDecrypt:
			if o.Suffix == "" && o.StripSuffix == "" {
				o.Suffix, o.StripSuffix = ".decrypted", ".encrypted"
			}
		}
	}
	if o.Overwrite == "" {
		o.Overwrite = OverwriteNever
	}
	// The default full is normalised away so existing jobs keep their
	// digest; require rewrap implies mode rewrap.
	j.Reencrypt.Mode = j.Reencrypt.EffectiveMode()
	// A rewrap keeps each message's suite and frame length: no default
	// for either (setting them is an error). A full re-encryption keeps
	// them too unless the job sets them (planner.Runtime.TargetFor): no
	// default either, so that "not set" stays visible.
	if j.Operation == OpReencrypt && !j.Rewrap() && j.Encrypt.Algorithm != "" {
		j.Encrypt.Algorithm = canonicalSuite(j.Encrypt.Algorithm)
	}
	if j.Operation == OpEncrypt {
		j.Encrypt.Algorithm = canonicalSuite(j.Encrypt.Algorithm)
		if j.Encrypt.FrameLength == nil {
			f := defaultFrameLen
			j.Encrypt.FrameLength = &f
		}
	}
	j.CommitmentPolicy = canonicalPolicy(j.CommitmentPolicy)
	j.MaxEncryptedDataKeys = defaultMaxEDKs(j.MaxEncryptedDataKeys, j.KeyGroups)
	defaultKeyGroups(j.KeyGroups)
	defaultCommon(j.Caching, &j.Execution, &j.S3, &j.KMS)
}

// Defaults fills a policy's unset fields (see Job.Defaults).
func (p *Policy) Defaults() {
	for i := range p.Rules {
		if !p.Rules[i].Exempt {
			p.Rules[i].Algorithm = canonicalSuite(p.Rules[i].Algorithm)
		}
	}
	if len(p.DecryptKeyGroups) == 0 {
		p.DecryptKeyGroups = sortedKeys(p.KeyGroups)
	}
	p.CommitmentPolicy = canonicalPolicy(p.CommitmentPolicy)
	p.MaxEncryptedDataKeys = defaultMaxEDKs(p.MaxEncryptedDataKeys, p.KeyGroups)
	defaultKeyGroups(p.KeyGroups)
	defaultCommon(p.Caching, &p.Execution, &p.S3, &p.KMS)
}

func canonicalSuite(a string) string {
	if a == "" {
		return DefaultAlgorithm
	}
	if s, ok := lookupSuite(a); ok {
		return s.name
	}
	return a // a name accepted by a custom Validators hook
}

func canonicalPolicy(c string) string {
	if c == "" {
		return PolicyRequireEncryptRequireDecrypt
	}
	if n := normPolicy(c); strings.HasPrefix(n, "require-") || strings.HasPrefix(n, "forbid-") {
		return n
	}
	return c
}

func defaultKeyGroups(groups map[string]*KeyGroup) {
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, s := range g.Singles() {
			if s.Provider == ProviderRawAES && s.KeyEncoding == "" {
				s.KeyEncoding = "raw"
			}
		}
	}
}

// DefaultConcurrency is execution.concurrency when unset: 2×GOMAXPROCS.
func DefaultConcurrency() int { return 2 * runtime.GOMAXPROCS(0) }

// DefaultMaxEncryptedDataKeys is the encrypted-data-key limit of a job or
// policy that sets none. Every EDK of a message that names one of the
// job's keys costs an unwrap attempt (a KMS Decrypt call for aws-kms), so
// a forged header listing thousands of them must be refused before any
// key is tried. Real messages carry one EDK per wrapping key (a few, for
// multi-Region or multi-account setups); 10 leaves room for those and
// matches the limit the ESDK documentation uses as its example. A job
// whose key groups hold more keys gets their count instead, so a job can
// always decrypt what its own key groups encrypt.
const DefaultMaxEncryptedDataKeys = 10

// Default timeouts (see awskms.DefaultTimeout and sources.DefaultS3Timeout,
// which apply the same values to clients built without a spec).
const (
	DefaultKMSTimeout = 30 * time.Second // per KMS request attempt
	DefaultS3Timeout  = 60 * time.Second // S3: idle, not total (bodies stream)
)

// defaultMaxEDKs is the effective limit: set stays, 0 becomes the larger
// of DefaultMaxEncryptedDataKeys and the key count of the largest group.
func defaultMaxEDKs(set int, groups map[string]*KeyGroup) int {
	if set != 0 {
		return set
	}
	n := DefaultMaxEncryptedDataKeys
	for _, g := range groups {
		if g == nil {
			continue
		}
		keys := 0
		for _, s := range g.Singles() {
			keys += max(1, len(s.Keys))
		}
		n = max(n, keys)
	}
	return min(n, 65535)
}

func defaultCommon(c *Caching, x *Execution, s3 *S3Config, k *KMSConfig) {
	if c != nil {
		if c.Capacity == 0 {
			c.Capacity = defaultCacheCap
		}
		if c.MaxMessagesEncrypted == 0 {
			c.MaxMessagesEncrypted = 1 << 32
		}
		if c.MaxBytesEncrypted == 0 {
			c.MaxBytesEncrypted = 1<<63 - 1
		}
	}
	if x.Concurrency == 0 {
		x.Concurrency = DefaultConcurrency()
	}
	if x.OnError == "" {
		x.OnError = OnErrorContinue
	}
	if x.Retries == nil {
		r := defaultRetries
		x.Retries = &r
	}
	if x.Shards == 0 {
		x.Shards = 1
	}
	if s3.PartSize == 0 {
		s3.PartSize = defaultPartSize
	}
	if k.RetryMode == "" {
		k.RetryMode = RetryStandard
	}
	if k.MaxAttempts == 0 {
		k.MaxAttempts = defaultMaxAttmpt
	}
	if k.Timeout.Duration == 0 {
		k.Timeout.Duration = DefaultKMSTimeout
	}
	if s3.Timeout.Duration == 0 {
		s3.Timeout.Duration = DefaultS3Timeout
	}
}
