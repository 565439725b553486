package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keyring"
	"github.com/encjob/encjob/internal/awslog"
	"github.com/encjob/encjob/spec"
)

// Preflight: problems that would fail every item are found once, before
// any item, and reported as one setup error (exit 2):
//
//   - no usable AWS credentials (checked once per profile, bounded by
//     preflightCredsTimeout, so a missing instance metadata service costs
//     seconds, not the SDK's retries per item);
//   - a configured KMS key that does not exist, is disabled or pending
//     deletion, or is not a symmetric encryption key (one DescribeKey per
//     key, at most preflightAttempts attempts within preflightKMSTimeout);
//   - an unreachable KMS endpoint (connection refused, unknown host, no
//     answer within the timeout);
//   - access denied on a key the job encrypts with (confirmed with a
//     GenerateDataKey dry run when DescribeKey itself is denied: a policy
//     may allow encryption without DescribeKey);
//   - an RSA key file that holds only a public key, in a group that must
//     decrypt.
//
// Throttling and server errors are not setup errors: the run proceeds and
// the items retry. Errors met while running that will fail every other
// item too are classified by fatalItemError and stop the run.
const (
	preflightCredsTimeout = 5 * time.Second
	preflightKMSTimeout   = 8 * time.Second
	preflightAttempts     = 2
)

// setupError is a problem found before any item: exit 2.
func setupError(format string, args ...any) error {
	return &exitError{Code: exitUsage, Err: fmt.Errorf(format, args...)}
}

// kmsGroup is one aws-kms key group (or member) a job uses.
type kmsGroup struct {
	name    string
	g       *spec.KeyGroup
	encrypt bool // the job encrypts with it (every key must work for every item)
}

// preflight runs the checks above for a job; baseDir resolves key files.
func preflight(ctx context.Context, e *env, job *spec.Job, baseDir string) error {
	roles := map[string][2]bool{} // group name -> {encrypt, decrypt}
	if job.Operation != spec.OpDecrypt {
		r := roles[job.Encrypt.KeyGroup]
		r[0] = true
		roles[job.Encrypt.KeyGroup] = r
	}
	if job.Operation != spec.OpEncrypt {
		r := roles[job.Decrypt.KeyGroup]
		r[1] = true
		roles[job.Decrypt.KeyGroup] = r
	}
	var kmsGroups []kmsGroup
	for name, role := range roles {
		g := job.KeyGroups[name]
		if g == nil {
			continue // validation reports it
		}
		for i, s := range g.Singles() {
			member := name
			if len(g.Members) > 0 {
				member = fmt.Sprintf("%s.members[%d]", name, i)
			}
			switch s.Provider {
			case spec.ProviderRawRSA:
				if role[1] {
					if err := checkRSAPrivate(member, resolveAgainst(baseDir, s.KeyFile)); err != nil {
						return err
					}
				}
			case spec.ProviderAWSKMS:
				kmsGroups = append(kmsGroups, kmsGroup{name: member, g: s, encrypt: role[0]})
			}
		}
	}
	usesS3 := false
	for _, s := range job.Sources {
		usesS3 = usesS3 || isS3(s.Path)
	}
	usesS3 = usesS3 || isS3(job.Output.Path) || isS3(job.Metadata.Output)
	if len(kmsGroups) == 0 && !usesS3 {
		return nil
	}
	// Credentials, once per profile.
	profiles := map[string]bool{}
	for _, k := range kmsGroups {
		profiles[k.g.Profile] = true
	}
	if usesS3 {
		profiles[job.S3.Profile] = true
	}
	for p := range profiles {
		if err := checkCredentials(ctx, p); err != nil {
			return err
		}
	}
	for _, k := range kmsGroups {
		if err := checkKMSKeys(ctx, e, job, k); err != nil {
			return err
		}
	}
	return nil
}

func isS3(p string) bool { return strings.HasPrefix(strings.ToLower(p), "s3://") }

// checkRSAPrivate refuses an RSA key file that cannot decrypt.
func checkRSAPrivate(group, path string) error {
	_, err := keyring.LoadRSAPrivateKeyPEM(path)
	if err == nil {
		return nil
	}
	if _, perr := keyring.LoadRSAPublicKeyPEM(path); perr == nil {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("key group %q: %s holds only an RSA public key, which cannot decrypt", group, path),
			Hint: "give the RSA private key (PEM) of this group; a public key can only encrypt"}
	}
	return &exitError{Code: exitUsage, Err: fmt.Errorf("key group %q: %w", group, err)}
}

// checkCredentials resolves the credentials of a profile ("" = the default
// chain) within preflightCredsTimeout.
func checkCredentials(ctx context.Context, profile string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightCredsTimeout)
	defer cancel()
	opts := []func(*config.LoadOptions) error{config.WithLogger(awslog.Logger())}
	which := "AWS credentials"
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
		which = fmt.Sprintf("AWS credentials for profile %q", profile)
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("loading the AWS configuration: %s", shortAWSError(err))}
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	hint := "set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), run aws sso login, or run with an IAM role"
	switch {
	case err == nil && creds.CanExpire && !creds.Expires.IsZero() && time.Now().After(creds.Expires):
		return &exitError{Code: exitUsage, Err: fmt.Errorf("%s expired at %s", which, creds.Expires.UTC().Format(time.RFC3339)), Hint: hint}
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		slog.Debug("credential lookup", "error", err.Error())
		return &exitError{Code: exitUsage, Err: fmt.Errorf("no %s found within %s (environment, shared files, SSO, container and instance roles; the instance metadata service did not answer)", which, preflightCredsTimeout), Hint: hint}
	case ctx.Err() != nil:
		return ctx.Err()
	}
	slog.Debug("credential lookup", "error", err.Error())
	return &exitError{Code: exitUsage, Err: fmt.Errorf("no %s: %s", which, credentialCause(err)), Hint: hint}
}

// credentialCause says briefly why the credential chain failed (the SDK's
// message runs to hundreds of characters of IMDS detail).
func credentialCause(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no EC2 IMDS role found"), strings.Contains(msg, "EC2 IMDS"), strings.Contains(msg, "failed to refresh cached credentials"):
		return "none found in the environment (AWS_ACCESS_KEY_ID), the shared files (~/.aws), SSO, a container role or an instance role"
	case strings.Contains(strings.ToLower(msg), "sso") && strings.Contains(strings.ToLower(msg), "expired"):
		return "the SSO session has expired"
	}
	return shortAWSError(err)
}

// shortAWSError keeps the part of an SDK error that says what went wrong.
func shortAWSError(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	msg := err.Error()
	if len(msg) > 240 {
		msg = msg[:240] + "…"
	}
	return msg
}

// kmsEndpoint names the endpoint a group's KMS calls go to, for messages.
func kmsEndpoint(job *spec.Job, g *spec.KeyGroup, e func(string) string) string {
	for _, v := range []string{g.Endpoint, job.KMS.Endpoint, e("AWS_ENDPOINT_URL_KMS"), e("AWS_ENDPOINT_URL")} {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkKMSKeys describes every key of an aws-kms group.
func checkKMSKeys(ctx context.Context, e *env, job *spec.Job, k kmsGroup) error {
	if k.g.Discovery {
		return nil // no configured key: credentials are all there is to check
	}
	endpoint := kmsEndpoint(job, k.g, e.getenv)
	prov := &awskms.DefaultProvider{Profile: k.g.Profile, Endpoint: k.g.Endpoint, MaxAttempts: preflightAttempts, MaxBackoff: 500 * time.Millisecond}
	if prov.Endpoint == "" {
		prov.Endpoint = job.KMS.Endpoint
	}
	for _, id := range k.g.Keys {
		region := k.g.Region
		if r := awskms.ARNRegion(id); r != "" {
			region = r
		}
		if err := describeKey(ctx, prov, k, id, region, endpoint); err != nil {
			return err
		}
	}
	return nil
}

func describeKey(ctx context.Context, prov *awskms.DefaultProvider, k kmsGroup, id, region, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightKMSTimeout)
	defer cancel()
	api, err := prov.Client(ctx, region)
	if err != nil {
		return setupError("key group %q: %v", k.name, err)
	}
	where := "KMS"
	if region != "" {
		where += " in " + region
	}
	if endpoint != "" {
		where += " at " + endpoint
	}
	out, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id), GrantTokens: k.g.GrantTokens})
	if err == nil {
		return checkKeyMetadata(k, id, out.KeyMetadata)
	}
	if parent := context.Cause(ctx); parent != nil && !errors.Is(parent, context.DeadlineExceeded) {
		return parent // interrupted
	}
	slog.Debug("preflight DescribeKey", "key", id, "error", err.Error())
	if code, ok := credentialErrorCode(err); ok {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("key group %q: %s refused the credentials (%s)", k.name, where, code),
			Hint: "the credentials are invalid or expired; refresh them (aws sso login, a new session token) and run again"}
	}
	if unreachable(ctx, err) {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("key group %q: %s is unreachable: %s", k.name, where, netCause(ctx, err)),
			Hint: "check the endpoint (kms.endpoint, endpoint=, AWS_ENDPOINT_URL_KMS), the region and the network"}
	}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch awskms.CodeKind(code) {
	case awskms.KindNotFound:
		return setupError("key group %q: KMS key %s not found (%s)", k.name, id, where)
	case awskms.KindDisabled:
		return setupError("key group %q: KMS key %s is disabled", k.name, id)
	case awskms.KindInvalidState:
		return setupError("key group %q: KMS key %s cannot be used: %s", k.name, id, ae.ErrorMessage())
	case awskms.KindAccessDenied:
		if !k.encrypt {
			// Decrypt-only use: DescribeKey is not needed to decrypt, and
			// a dry run needs a ciphertext; items report it if it matters.
			slog.Info("DescribeKey denied; not checking this decryption key further", "group", k.name, "key", id)
			return nil
		}
		return dryRunGenerate(ctx, api, k, id, ae)
	}
	slog.Info("preflight DescribeKey failed; continuing", "group", k.name, "key", id, "error", shortAWSError(err))
	return nil // throttling, 5xx: the items retry
}

// dryRunGenerate tells "may not describe" from "may not encrypt".
func dryRunGenerate(ctx context.Context, api awskms.API, k kmsGroup, id string, denied smithy.APIError) error {
	_, err := api.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: kmstypes.DataKeySpecAes256,
		GrantTokens: k.g.GrantTokens, DryRun: aws.Bool(true)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "DryRunOperationException" {
		return nil
	}
	if errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException" {
		return setupError("key group %q: access denied to KMS key %s: %s", k.name, id, ae.ErrorMessage())
	}
	slog.Info("GenerateDataKey dry run inconclusive", "group", k.name, "key", id, "describe", denied.ErrorMessage())
	return nil
}

func checkKeyMetadata(k kmsGroup, id string, m *kmstypes.KeyMetadata) error {
	if m == nil {
		return nil
	}
	switch m.KeyState {
	case kmstypes.KeyStateEnabled, "":
	case kmstypes.KeyStateDisabled:
		return setupError("key group %q: KMS key %s is disabled", k.name, id)
	default:
		return setupError("key group %q: KMS key %s cannot be used: it is %s", k.name, id, m.KeyState)
	}
	if m.KeyUsage != "" && m.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt {
		return setupError("key group %q: KMS key %s has key usage %s; the Encryption SDK needs ENCRYPT_DECRYPT", k.name, id, m.KeyUsage)
	}
	if m.KeySpec != "" && m.KeySpec != kmstypes.KeySpecSymmetricDefault {
		return setupError("key group %q: KMS key %s is a %s key; the Encryption SDK needs a symmetric (SYMMETRIC_DEFAULT) key", k.name, id, m.KeySpec)
	}
	return nil
}

// credentialErrorCode reports an error meaning "these credentials are not
// accepted" (invalid, expired, badly signed).
func credentialErrorCode(err error) (string, bool) {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return "", false
	}
	switch c := ae.ErrorCode(); c {
	case "UnrecognizedClientException", "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId",
		"InvalidSignatureException", "IncompleteSignature", "IncompleteSignatureException", "MissingAuthenticationToken",
		"MissingAuthenticationTokenException", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "RequestExpired":
		return c, true
	}
	return "", false
}

// unreachable reports a connection that could not be made or was never
// answered.
func unreachable(ctx context.Context, err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return false // the service answered
	}
	var op *net.OpError
	var dns *net.DNSError
	var ue *url.Error
	return errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &ue) && ue.Timeout() ||
		errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil
}

func netCause(ctx context.Context, err error) string {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns):
		return "unknown host " + dns.Name
	case errors.As(err, &op) && op.Op == "dial":
		return "connection refused or no route (" + op.Err.Error() + ")"
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", preflightKMSTimeout)
	}
	return shortAWSError(err)
}

// fatalItemError reports an item error that every other item would meet
// too, so the run stops (executor.Options.Fatal) even with onError:
// continue: rejected or missing credentials, or a key the job encrypts
// with that is denied, gone or disabled (every item encrypts under every
// key of its group).
func fatalItemError(job *spec.Job) func(error) bool {
	return func(err error) bool {
		if _, ok := credentialErrorCode(err); ok {
			return true
		}
		msg := err.Error()
		if strings.Contains(msg, "failed to refresh cached credentials") || strings.Contains(msg, "get identity: get credentials") ||
			strings.Contains(msg, "failed to retrieve credentials") {
			return true
		}
		var ke *awskms.KeyError
		if errors.As(err, &ke) && (ke.Op == "GenerateDataKey" || ke.Op == "Encrypt") {
			switch ke.Kind {
			case awskms.KindAccessDenied, awskms.KindNotFound, awskms.KindDisabled, awskms.KindInvalidState, awskms.KindInvalidKeyUsage:
				return true
			}
		}
		return false
	}
}
