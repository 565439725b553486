package keystore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/encjob/encjob/internal/awslog"
	"github.com/encjob/encjob/internal/nettimeout"
)

// ClientOptions builds the SDK clients of a store from the standard AWS
// configuration (credential chain, shared files, AWS_ENDPOINT_URL_*).
type ClientOptions struct {
	Profile string
	// Region of both clients; "" = the KMS key ARN's region (as the
	// specification requires), else the discovery region, else the
	// profile's / AWS_REGION.
	Region           string
	KMSEndpoint      string // "" = the SDK's resolution
	DynamoDBEndpoint string // "" = the SDK's resolution
	MaxAttempts      int
	Timeout          time.Duration // per attempt; 0 = 30 s
	Credentials      aws.CredentialsProvider
}

// NewClients returns the DynamoDB and KMS clients for kc. The KMS client
// carries the user agent "aws-kms-hierarchy", as the other implementations'.
func NewClients(ctx context.Context, kc KMSConfig, o ClientOptions) (DynamoDBAPI, KMSAPI, error) {
	region := o.Region
	if region == "" && kc.KeyARN != "" {
		if a, err := parseARN(kc.KeyARN); err == nil {
			region = a.Region
		}
	}
	if region == "" {
		region = kc.DiscoveryRegion
	}
	t := o.Timeout
	if t <= 0 {
		t = 30 * time.Second
	}
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(nettimeout.Loading(t)), config.WithLogger(awslog.Logger()),
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if o.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	if o.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("keystore: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, nil, fmt.Errorf("keystore: no AWS region: use a KMS key ARN, a region, AWS_REGION or the profile's region")
	}
	nettimeout.Install(&cfg, t, t)
	ddb := dynamodb.NewFromConfig(cfg, func(d *dynamodb.Options) {
		if o.DynamoDBEndpoint != "" {
			d.BaseEndpoint = aws.String(o.DynamoDBEndpoint)
		}
	})
	k := kms.NewFromConfig(cfg, func(k *kms.Options) {
		if o.KMSEndpoint != "" {
			k.BaseEndpoint = aws.String(o.KMSEndpoint)
		}
		k.APIOptions = append(k.APIOptions, awsmiddleware.AddUserAgentKey("aws-kms-hierarchy"))
	})
	return ddb, k, nil
}
