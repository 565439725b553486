// Package awskms is the AWS KMS keyring: it wraps message data keys under
// AWS KMS keys, wire-compatible with the other AWS Encryption SDKs (each
// encrypted data key has provider id "aws-kms", the key ARN as provider info,
// and the KMS ciphertext blob as ciphertext; the message's encryption context
// is the KMS encryption context).
//
// A strict keyring (Config.Keys) encrypts under every listed key — the first
// generates the data key — and decrypts only with the listed keys, in order.
// Aliases and bare key ids are resolved to key ARNs once, by New, so that
// decryption can match them against the ARNs stored in messages;
// Keyring.Resolved says what each resolved to.
//
// A discovery keyring (Config.Discovery) decrypts with whichever key an
// encrypted data key names, optionally restricted by a DiscoveryFilter; it
// cannot encrypt.
//
// Multi-Region keys (ids starting "mrk-") match their replicas: a keyring
// configured with the eu-west-1 replica decrypts what the us-east-1 key
// encrypted, calling KMS in eu-west-1.
//
// Every KMS call carries the configured grant tokens. One client per region
// is created on first use, optionally behind a client-side request-rate
// limit. Failures are *KeyError values naming the key, the operation and the
// cause.
package awskms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/crypto"
)

// ProviderID is the provider id of AWS KMS encrypted data keys.
const ProviderID = "aws-kms"

// Config configures a keyring. Exactly one of Keys and Discovery must be set.
type Config struct {
	// Keys: key ids, key ARNs, alias names (alias/x) or alias ARNs. The
	// first generates the data key.
	Keys []string
	// Discovery: decrypt with any AWS KMS key named by the message, subject
	// to DiscoveryFilter.
	Discovery bool
	// DiscoveryFilter restricts discovery to keys of these accounts in this
	// partition; nil allows every key.
	DiscoveryFilter *DiscoveryFilter
	// DiscoveryRegion makes discovery multi-Region-key aware: a multi-Region
	// key ARN from the message is rewritten to this region before Decrypt
	// (so a local replica is used). Other keys are used in their own region.
	DiscoveryRegion string

	GrantTokens []string // sent with every KMS call

	// Region for key ids and alias names (ARNs carry their own region);
	// "" = the provider's default (profile, AWS_REGION).
	Region string

	// Clients supplies KMS clients; nil builds a DefaultProvider from the
	// fields below.
	Clients     ClientProvider
	Profile     string
	Endpoint    string // KMS endpoint URL override; "" = AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL / AWS
	RetryMode   string // "standard" (default) or "adaptive"
	MaxAttempts int
	MaxBackoff  time.Duration
	// Timeout bounds each KMS request attempt (and every read or write of
	// its connection); 0 = DefaultTimeout.
	Timeout     time.Duration
	Credentials aws.CredentialsProvider

	// RateLimit caps KMS calls per second per region on this side (0 = no
	// limit); RateBurst is the bucket size (0 = one second's worth).
	RateLimit float64
	RateBurst int
}

// DiscoveryFilter restricts discovery to keys of these accounts in this
// partition, as aws-encryption-cli's discovery-account / discovery-partition.
type DiscoveryFilter struct {
	Accounts  []string
	Partition string // e.g. "aws"
}

// Resolution records what a configured key identifier resolved to.
type Resolution struct {
	Input string // as configured
	ARN   string // the key ARN
}

// Keyring is an AWS KMS keyring. It is safe for concurrent use.
type Keyring struct {
	Matcher               // MatchesEDK of the resolved configuration
	keys            []ARN // strict mode; nil in discovery mode
	resolved        []Resolution
	discovery       bool
	discoveryRegion string
	grantTokens     []string
	clients         *clientCache
}

// New validates cfg and, in strict mode, resolves every alias and bare key id
// to a key ARN with DescribeKey (key ARNs are taken as they are and need no
// call). A key that does not resolve is reported as a *KeyError.
func New(ctx context.Context, cfg Config) (*Keyring, error) {
	if cfg.Discovery == (len(cfg.Keys) > 0) {
		return nil, errors.New("awskms: set either keys or discovery, not both or neither")
	}
	clients, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	k := &Keyring{
		discovery:       cfg.Discovery,
		discoveryRegion: cfg.DiscoveryRegion,
		grantTokens:     slices.Clone(cfg.GrantTokens),
		clients:         clients,
	}
	if cfg.Discovery {
		if f := cfg.DiscoveryFilter; f != nil {
			if f.Partition == "" || len(f.Accounts) == 0 || slices.Contains(f.Accounts, "") {
				return nil, errors.New("awskms: discovery filter needs a partition and at least one account")
			}
			k.filter = &DiscoveryFilter{Accounts: slices.Clone(f.Accounts), Partition: f.Partition}
		}
		k.Matcher.discovery = true
		return k, nil
	}
	if cfg.DiscoveryFilter != nil || cfg.DiscoveryRegion != "" {
		return nil, errors.New("awskms: discovery filter and discovery region apply only in discovery mode")
	}
	for i, id := range cfg.Keys {
		kind, a, err := classifyIdentifier(id)
		if err != nil {
			return nil, fmt.Errorf("awskms: keys[%d]: %w", i, err)
		}
		if kind != idKeyARN {
			region := cfg.Region
			if kind == idAliasARN {
				region = a.Region
			}
			if a, err = k.describe(ctx, id, region); err != nil {
				return nil, err
			}
		}
		k.keys = append(k.keys, a)
		k.resolved = append(k.resolved, Resolution{Input: id, ARN: a.String()})
	}
	k.Matcher.keys = k.keys
	return k, nil
}

// newClients validates the client settings of cfg (rate limit, retry
// mode, grant tokens, attempts) and returns its client cache.
func newClients(cfg Config) (*clientCache, error) {
	if cfg.RateLimit < 0 || cfg.RateBurst < 0 {
		return nil, fmt.Errorf("awskms: rate limit %v/s burst %d must not be negative", cfg.RateLimit, cfg.RateBurst)
	}
	switch cfg.RetryMode {
	case "", "standard", "adaptive":
	default:
		return nil, fmt.Errorf("awskms: retry mode %q: want standard or adaptive", cfg.RetryMode)
	}
	// KMS refuses more than 10 grant tokens per request (ValidationException);
	// say so before any call rather than on the first item, and not at all
	// on a KMS that does not check (local-kms accepts any number).
	if len(cfg.GrantTokens) > 10 {
		return nil, fmt.Errorf("awskms: %d grant tokens: KMS accepts at most 10 per request", len(cfg.GrantTokens))
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("awskms: max attempts %d must not be negative", cfg.MaxAttempts)
	}
	provider := cfg.Clients
	if provider == nil {
		provider = &DefaultProvider{
			Profile: cfg.Profile, Endpoint: cfg.Endpoint, RetryMode: cfg.RetryMode,
			MaxAttempts: cfg.MaxAttempts, MaxBackoff: cfg.MaxBackoff, Timeout: cfg.Timeout, Credentials: cfg.Credentials,
		}
	}
	return newClientCache(provider, cfg.RateLimit, cfg.RateBurst), nil
}

// describe resolves id with DescribeKey in region.
func (k *Keyring) describe(ctx context.Context, id, region string) (ARN, error) {
	api, err := k.clients.client(ctx, region)
	if err != nil {
		return ARN{}, fmt.Errorf("awskms: resolve key %s: %w", id, err)
	}
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id), GrantTokens: k.grantTokens})
	if err != nil {
		return ARN{}, newKeyError(id, "DescribeKey", err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.Arn == nil {
		return ARN{}, &KeyError{Key: id, Op: "DescribeKey", Kind: KindInvalidResponse, Err: errors.New("response has no key ARN")}
	}
	a, err := ParseARN(*out.KeyMetadata.Arn)
	if err == nil && a.ResourceType != "key" {
		err = fmt.Errorf("%s is not a key ARN", a)
	}
	if err != nil {
		return ARN{}, &KeyError{Key: id, Op: "DescribeKey", Kind: KindInvalidResponse, Err: err}
	}
	return a, nil
}

// Resolved lists each configured key identifier and the key ARN it resolved
// to, in configured order (nil in discovery mode).
func (k *Keyring) Resolved() []Resolution { return slices.Clone(k.resolved) }

// OnEncrypt implements crypto.Keyring. Discovery keyrings return an error
// wrapping crypto.ErrCannotGenerate; KMS failures are *KeyError.
func (k *Keyring) OnEncrypt(ctx context.Context, m *crypto.EncryptionMaterials) error {
	if k.discovery {
		return fmt.Errorf("awskms: %w: a discovery keyring can only decrypt; configure key ARNs or aliases to encrypt", crypto.ErrCannotGenerate)
	}
	if m.Suite == nil {
		return errors.New("awskms: encryption materials have no algorithm suite")
	}
	if m.DataKey != nil && len(m.DataKey) != m.Suite.KeyLen {
		return fmt.Errorf("awskms: data key is %d bytes, suite %s needs %d", len(m.DataKey), m.Suite.Hex(), m.Suite.KeyLen)
	}
	ec := kmsContext(m.Context)
	keys := k.keys
	if m.DataKey == nil {
		key := keys[0]
		keys = keys[1:]
		api, err := k.clients.client(ctx, key.Region)
		if err != nil {
			return err
		}
		out, err := api.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
			KeyId:             aws.String(key.String()),
			NumberOfBytes:     aws.Int32(int32(m.Suite.KeyLen)),
			EncryptionContext: ec,
			GrantTokens:       k.grantTokens,
		})
		if err != nil {
			return newKeyError(key.String(), "GenerateDataKey", err)
		}
		if len(out.Plaintext) != m.Suite.KeyLen {
			n := len(out.Plaintext)
			clear(out.Plaintext)
			return &KeyError{Key: key.String(), Op: "GenerateDataKey", Kind: KindInvalidResponse,
				Err: fmt.Errorf("data key is %d bytes, want %d", n, m.Suite.KeyLen)}
		}
		edk, err := responseEDK(key, "GenerateDataKey", out.KeyId, out.CiphertextBlob)
		if err != nil {
			clear(out.Plaintext)
			return err
		}
		m.DataKey = out.Plaintext
		m.EncryptedDataKeys = append(m.EncryptedDataKeys, edk)
	}
	for _, key := range keys {
		api, err := k.clients.client(ctx, key.Region)
		if err != nil {
			return err
		}
		out, err := api.Encrypt(ctx, &kms.EncryptInput{
			KeyId:             aws.String(key.String()),
			Plaintext:         m.DataKey,
			EncryptionContext: ec,
			GrantTokens:       k.grantTokens,
		})
		if err != nil {
			return newKeyError(key.String(), "Encrypt", err)
		}
		edk, err := responseEDK(key, "Encrypt", out.KeyId, out.CiphertextBlob)
		if err != nil {
			return err
		}
		m.EncryptedDataKeys = append(m.EncryptedDataKeys, edk)
	}
	return nil
}

// responseEDK checks that KMS answered with a key ARN and a ciphertext and
// builds the EDK (provider info = the ARN KMS returned, as the other ESDKs do).
func responseEDK(key ARN, op string, keyID *string, blob []byte) (crypto.EncryptedDataKey, error) {
	bad := func(err error) (crypto.EncryptedDataKey, error) {
		return crypto.EncryptedDataKey{}, &KeyError{Key: key.String(), Op: op, Kind: KindInvalidResponse, Err: err}
	}
	if keyID == nil {
		return bad(errors.New("response has no KeyId"))
	}
	a, err := ParseARN(*keyID)
	if err != nil {
		return bad(fmt.Errorf("response KeyId: %w", err))
	}
	if a.ResourceType != "key" {
		return bad(fmt.Errorf("response KeyId %s is not a key ARN", *keyID))
	}
	if len(blob) == 0 {
		return bad(errors.New("response has no ciphertext"))
	}
	return crypto.EncryptedDataKey{ProviderID: ProviderID, ProviderInfo: []byte(*keyID), Ciphertext: blob}, nil
}

// OnDecrypt implements crypto.Keyring. When no key unwraps any EDK it returns
// an error wrapping crypto.ErrNoMatchingKey and every *KeyError met (use
// errors.As); a cancelled context is returned as it is.
func (k *Keyring) OnDecrypt(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey) error {
	if m.DataKey != nil {
		return errors.New("awskms: decryption materials already have a data key")
	}
	if m.Suite == nil {
		return errors.New("awskms: decryption materials have no algorithm suite")
	}
	nm := &noMatchError{}
	if k.discovery {
		if err := k.decryptDiscovery(ctx, m, edks, nm); err != nil || m.DataKey != nil {
			return err
		}
		return nm
	}
	for _, key := range k.keys {
		nm.keys = append(nm.keys, key.String())
	}
	for _, key := range k.keys {
		for i, edk := range edks {
			if !strictMatch(key, edk) {
				continue
			}
			if err := k.decrypt(ctx, m, key, edk); err == nil {
				return nil
			} else if ctx.Err() != nil {
				return ctx.Err()
			} else {
				nm.failures = append(nm.failures, fmt.Errorf("encrypted data key %d: %w", i, err))
			}
		}
	}
	if len(nm.failures) == 0 {
		for _, edk := range edks {
			if edk.ProviderID == ProviderID {
				nm.skipped = append(nm.skipped, fmt.Sprintf("%s (not a configured key)", edk.ProviderInfo))
			}
		}
	}
	return nm
}

func (k *Keyring) decryptDiscovery(ctx context.Context, m *crypto.DecryptionMaterials, edks []crypto.EncryptedDataKey, nm *noMatchError) error {
	for i, edk := range edks {
		if edk.ProviderID != ProviderID {
			continue
		}
		a, why := k.discoveryTarget(edk)
		if why != "" {
			nm.skipped = append(nm.skipped, fmt.Sprintf("encrypted data key %d: %s", i, why))
			continue
		}
		if k.discoveryRegion != "" && a.IsMRK() {
			a = a.InRegion(k.discoveryRegion)
		}
		if err := k.decrypt(ctx, m, a, edk); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return ctx.Err()
		} else {
			nm.failures = append(nm.failures, fmt.Errorf("encrypted data key %d: %w", i, err))
		}
	}
	return nil
}

// decrypt calls KMS Decrypt with key in key's region and, after validating
// the response, sets m.DataKey.
func (k *Keyring) decrypt(ctx context.Context, m *crypto.DecryptionMaterials, key ARN, edk crypto.EncryptedDataKey) error {
	api, err := k.clients.client(ctx, key.Region)
	if err != nil {
		return &KeyError{Key: key.String(), Op: "Decrypt", Kind: KindUnknown, Err: err}
	}
	out, err := api.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             aws.String(key.String()),
		CiphertextBlob:    edk.Ciphertext,
		EncryptionContext: kmsContext(m.Context),
		GrantTokens:       k.grantTokens,
	})
	if err != nil {
		return newKeyError(key.String(), "Decrypt", err)
	}
	if out.KeyId == nil || *out.KeyId != key.String() {
		clear(out.Plaintext)
		got := "<none>"
		if out.KeyId != nil {
			got = *out.KeyId
		}
		return &KeyError{Key: key.String(), Op: "Decrypt", Kind: KindInvalidResponse, Err: fmt.Errorf("response KeyId %s is not the requested key", got)}
	}
	if len(out.Plaintext) != m.Suite.KeyLen {
		n := len(out.Plaintext)
		clear(out.Plaintext)
		return &KeyError{Key: key.String(), Op: "Decrypt", Kind: KindInvalidResponse, Err: fmt.Errorf("data key is %d bytes, suite %s needs %d", n, m.Suite.Hex(), m.Suite.KeyLen)}
	}
	m.DataKey, m.DecryptedWith = out.Plaintext, key.String()
	return nil
}

// kmsContext converts the message's encryption context for KMS (nil when
// empty, as KMS treats absent and empty alike).
func kmsContext(c crypto.EncryptionContext) map[string]string {
	if len(c) == 0 {
		return nil
	}
	return map[string]string(c.Clone())
}

var _ crypto.Keyring = (*Keyring)(nil)
