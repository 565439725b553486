package awskms

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"golang.org/x/time/rate"

	"github.com/encjob/encjob/internal/awslog"
	"github.com/encjob/encjob/internal/nettimeout"
)

// API is the part of *kms.Client the keyring uses.
type API interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var _ API = (*kms.Client)(nil)

// ClientProvider returns a KMS client for a region. The keyring calls it at
// most once per region and caches the result. region is "" when the key
// identifier names no region and Config.Region is empty: the provider then
// uses its default region, or fails.
type ClientProvider interface {
	Client(ctx context.Context, region string) (API, error)
}

// DefaultTimeout bounds one KMS request attempt when no timeout is set:
// KMS answers in milliseconds, and 30 s leaves room for a throttled or
// distant region while a dead endpoint costs at most MaxAttempts × 30 s.
const DefaultTimeout = 30 * time.Second

// DefaultProvider builds *kms.Client values from aws-sdk-go-v2/config's
// LoadDefaultConfig: the standard credential chain, shared config files, and
// the AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_KMS variables (the SDK's own
// support). The zero value is ready to use.
type DefaultProvider struct {
	Profile     string                  // named profile; "" = AWS_PROFILE or default
	Endpoint    string                  // KMS endpoint URL; "" = the SDK's resolution
	RetryMode   string                  // "standard" or "adaptive"; "" = the SDK's (standard unless AWS_RETRY_MODE / profile say otherwise)
	MaxAttempts int                     // attempts per call including the first; 0 = the SDK's (3)
	MaxBackoff  time.Duration           // cap on the delay between attempts; 0 = the SDK's (20s)
	Timeout     time.Duration           // per attempt (and per read/write of its connection); 0 = DefaultTimeout
	Credentials aws.CredentialsProvider // nil = the default chain

	mu     sync.Mutex
	loaded bool
	cfg    aws.Config
}

// Client implements ClientProvider.
func (p *DefaultProvider) Client(ctx context.Context, region string) (API, error) {
	cfg, err := p.base(ctx)
	if err != nil {
		return nil, err
	}
	if region == "" && cfg.Region == "" {
		return nil, fmt.Errorf("awskms: no AWS region: name the region in a key ARN, set the keyring's region, AWS_REGION, or the profile's region")
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		if region != "" {
			o.Region = region
		}
		if p.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.Endpoint)
		}
		if p.MaxBackoff > 0 && o.Retryer != nil {
			o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, p.MaxBackoff)
		}
	}), nil
}

// base loads the shared aws.Config once (a failed load is retried on the
// next call).
func (p *DefaultProvider) base(ctx context.Context) (aws.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loaded {
		return p.cfg, nil
	}
	var opts []func(*config.LoadOptions) error
	if p.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(p.Profile))
	}
	switch p.RetryMode {
	case "":
	case string(aws.RetryModeStandard):
		opts = append(opts, config.WithRetryMode(aws.RetryModeStandard))
	case string(aws.RetryModeAdaptive):
		opts = append(opts, config.WithRetryMode(aws.RetryModeAdaptive))
	default:
		return aws.Config{}, fmt.Errorf("awskms: retry mode %q: want standard or adaptive", p.RetryMode)
	}
	if p.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(p.MaxAttempts))
	}
	if p.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(p.Credentials))
	}
	// Every call has a deadline: a KMS endpoint that accepts and never
	// answers fails the attempt (retried by the SDK, then by the item)
	// instead of hanging the run.
	t := p.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	opts = append(opts, config.WithHTTPClient(nettimeout.Loading(t)))
	opts = append(opts, config.WithLogger(awslog.Logger())) // never the SDK's own stderr lines
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if p.Profile != "" {
			return aws.Config{}, fmt.Errorf("awskms: load AWS configuration (profile %q): %w", p.Profile, err)
		}
		return aws.Config{}, fmt.Errorf("awskms: load AWS configuration: %w", err)
	}
	nettimeout.Install(&cfg, t, t)
	p.cfg, p.loaded = cfg, true
	return cfg, nil
}

// clientCache holds one client per region, created lazily, each behind its
// own request-rate limiter when a limit is set.
type clientCache struct {
	provider ClientProvider
	limit    rate.Limit // 0 = unlimited
	burst    int

	mu sync.Mutex
	m  map[string]*regionClient
}

type regionClient struct {
	api     API
	limiter *rate.Limiter // nil when unlimited
}

func newClientCache(p ClientProvider, perSecond float64, burst int) *clientCache {
	c := &clientCache{provider: p, m: map[string]*regionClient{}}
	if perSecond > 0 {
		c.limit = rate.Limit(perSecond)
		c.burst = burst
		if c.burst <= 0 {
			c.burst = int(math.Max(1, math.Ceil(perSecond)))
		}
	}
	return c
}

// client returns the cached client for region, creating it on first use.
func (c *clientCache) client(ctx context.Context, region string) (API, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.m[region]; ok {
		return rc.wrapped(), nil
	}
	api, err := c.provider.Client(ctx, region)
	if err != nil {
		if region == "" {
			return nil, fmt.Errorf("awskms: kms client for the default region: %w", err)
		}
		return nil, fmt.Errorf("awskms: kms client for region %s: %w", region, err)
	}
	rc := &regionClient{api: api}
	if c.limit > 0 {
		rc.limiter = rate.NewLimiter(c.limit, c.burst)
	}
	c.m[region] = rc
	return rc.wrapped(), nil
}

// limiter returns the limiter of region, nil when none (for tests).
func (c *clientCache) limiter(region string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.m[region]; ok {
		return rc.limiter
	}
	return nil
}

func (rc *regionClient) wrapped() API {
	if rc.limiter == nil {
		return rc.api
	}
	return limitedAPI{rc.api, rc.limiter}
}

// limitedAPI waits for a token before every call (SDK retries of that call
// are not counted: the SDK's own retryer paces them).
type limitedAPI struct {
	api API
	l   *rate.Limiter
}

func (a limitedAPI) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	if err := a.l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("awskms: rate limit: %w", err)
	}
	return a.api.DescribeKey(ctx, in, optFns...)
}

func (a limitedAPI) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	if err := a.l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("awskms: rate limit: %w", err)
	}
	return a.api.GenerateDataKey(ctx, in, optFns...)
}

func (a limitedAPI) Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	if err := a.l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("awskms: rate limit: %w", err)
	}
	return a.api.Encrypt(ctx, in, optFns...)
}

func (a limitedAPI) Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	if err := a.l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("awskms: rate limit: %w", err)
	}
	return a.api.Decrypt(ctx, in, optFns...)
}
