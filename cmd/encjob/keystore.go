package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/keystore"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/spec"
)

// keystoreUsage is the long help of `encjob keystore`.
const keystoreUsage = `Administers the branch keys of an AWS KMS Hierarchical keyring's DynamoDB
key store, in the item format every AWS Encryption SDK reads:

  create-key   create a branch key (random id, or --branch-key-id with --context)
  version-key  rotate a branch key: a new version becomes active, old ones stay readable
  describe     list a branch key's versions from the table (no KMS call)

The key store comes from flags (--table, --kms-key, --logical-name,
--dynamodb-endpoint, --kms-endpoint, --region, --profile) or from an
aws-kms-hierarchy key group of a job spec (-f FILE --key-group NAME; flags
override). create-key and version-key print the branch key id and version.
`

// keystoreFlags are the key store settings of every keystore subcommand.
type keystoreFlags struct {
	file, group              *string
	table, logical, kmsKey   *string
	ddbEndpoint, kmsEndpoint *string
	region, profile          *string
	branchKeyID              *string
	context                  *[]string
	asJSON                   *bool
	timeout                  *time.Duration
}

func newKeystoreFlags(fs *pflag.FlagSet, withContext bool) *keystoreFlags {
	k := &keystoreFlags{
		file:        fs.StringP("file", "f", "", "job spec holding the key group (with --key-group)"),
		group:       fs.StringP("key-group", "k", "", "aws-kms-hierarchy key group of --file"),
		table:       fs.String("table", "", "DynamoDB table of the key store"),
		logical:     fs.String("logical-name", "", "logical key store name (default: the table name)"),
		kmsKey:      fs.String("kms-key", "", "KMS key ARN protecting the branch keys"),
		ddbEndpoint: fs.String("dynamodb-endpoint", "", "DynamoDB endpoint URL"),
		kmsEndpoint: fs.String("kms-endpoint", "", "KMS endpoint URL"),
		region:      fs.String("region", "", "AWS region (default: the KMS key's)"),
		profile:     fs.String("profile", "", "AWS profile"),
		branchKeyID: fs.String("branch-key-id", "", "branch key id"),
		asJSON:      fs.Bool("json", false, "print the result as JSON"),
		timeout:     fs.Duration("timeout", 30*time.Second, "per-request timeout"),
	}
	if withContext {
		k.context = fs.StringArray("context", nil, "custom encryption context KEY=VALUE bound to the branch key (repeatable; required with --branch-key-id)")
	}
	return k
}

// group returns the key group the flags describe.
func (k *keystoreFlags) keyGroup(e *env) (*spec.KeyGroup, error) {
	g := &spec.KeyGroup{Provider: spec.ProviderHierarchy}
	if *k.file != "" || *k.group != "" {
		if *k.file == "" || *k.group == "" {
			return nil, usageErrorf("--key-group", "use --file and --key-group together")
		}
		docs, err := loadSpec(e, *k.file)
		if err != nil {
			return nil, &exitError{Code: exitUsage, Err: err}
		}
		var found *spec.KeyGroup
		for _, d := range docs {
			if d.Job != nil && d.Job.KeyGroups[*k.group] != nil {
				found = d.Job.KeyGroups[*k.group]
			}
		}
		if found == nil || found.Provider != spec.ProviderHierarchy {
			return nil, usageErrorf("--key-group", "%s has no aws-kms-hierarchy key group %q", *k.file, *k.group)
		}
		c := *found
		ks := *found.KeyStore
		c.KeyStore = &ks
		g = &c
	}
	if g.KeyStore == nil {
		g.KeyStore = &spec.KeyStore{}
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&g.KeyStore.Table, *k.table}, {&g.KeyStore.LogicalName, *k.logical}, {&g.KeyStore.KMSKey, *k.kmsKey},
		{&g.KeyStore.Endpoint, *k.ddbEndpoint}, {&g.Endpoint, *k.kmsEndpoint}, {&g.Region, *k.region},
		{&g.Profile, *k.profile}, {&g.BranchKeyID, *k.branchKeyID},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if g.KeyStore.Table == "" {
		return nil, usageErrorf("--table", "name the key store's DynamoDB table (or use -f FILE --key-group NAME)")
	}
	if g.KeyStore.KMSKey != "" {
		g.KeyStore.Discovery = false
	}
	return g, nil
}

func (k *keystoreFlags) store(ctx context.Context, e *env, needKey bool) (*keystore.Store, *spec.KeyGroup, error) {
	g, err := k.keyGroup(e)
	if err != nil {
		return nil, nil, err
	}
	if needKey && g.KeyStore.KMSKey == "" {
		return nil, nil, usageErrorf("--kms-key", "creating and rotating branch keys needs the KMS key ARN that protects them")
	}
	if g.KeyStore.KMSKey == "" && !g.KeyStore.Discovery {
		g.KeyStore.Discovery = true // describe makes no KMS call
	}
	s, err := keygroup.KeyStore(ctx, g, awskms.Config{Timeout: *k.timeout})
	if err != nil {
		return nil, nil, &exitError{Code: exitUsage, Err: err}
	}
	return s, g, nil
}

func cmdKeystore(ctx context.Context, e *env, _ *console, args []string) error {
	if len(args) == 0 {
		return usageErrorf("keystore", "name a subcommand: create-key, version-key or describe")
	}
	sub, rest := args[0], args[1:]
	if strings.HasPrefix(sub, "-") {
		// Flags before the subcommand (and help's flag listing): the
		// flags every subcommand shares.
		fs := newFlagSet("keystore", e)
		newKeystoreFlags(fs, true)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return usageErrorf("keystore", "name a subcommand first: create-key, version-key or describe")
	}
	fs := newFlagSet("keystore "+sub, e)
	switch sub {
	case "create-key":
		k := newKeystoreFlags(fs, true)
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return keystoreCreate(ctx, e, k)
	case "version-key":
		k := newKeystoreFlags(fs, false)
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return keystoreVersion(ctx, e, k)
	case "describe":
		k := newKeystoreFlags(fs, false)
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return keystoreDescribe(ctx, e, k)
	}
	u := usageErrorf(sanitize(sub), "unknown keystore subcommand")
	if s := suggest(sub, []string{"create-key", "version-key", "describe"}); len(s) > 0 {
		return u.withHint("did you mean %s?", strings.Join(s, " or "))
	}
	return u.withHint("use create-key, version-key or describe")
}

func keystoreCreate(ctx context.Context, e *env, k *keystoreFlags) error {
	s, g, err := k.store(ctx, e, true)
	if err != nil {
		return err
	}
	custom := map[string]string{}
	for _, kv := range *k.context {
		key, v, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return usageErrorf("--context", "%q: want KEY=VALUE", sanitize(kv))
		}
		custom[key] = v
	}
	id, err := s.CreateKey(ctx, g.BranchKeyID, custom)
	if err != nil {
		return keystoreErr(err)
	}
	d, err := s.Describe(ctx, id)
	if err != nil {
		return keystoreErr(err)
	}
	return printKeystore(e, *k.asJSON, map[string]string{"branchKeyId": id, "version": d.ActiveVersion},
		fmt.Sprintf("created branch key %s (active version %s)\n", id, d.ActiveVersion))
}

func keystoreVersion(ctx context.Context, e *env, k *keystoreFlags) error {
	s, g, err := k.store(ctx, e, true)
	if err != nil {
		return err
	}
	if g.BranchKeyID == "" {
		return usageErrorf("--branch-key-id", "name the branch key to rotate")
	}
	v, err := s.VersionKey(ctx, g.BranchKeyID)
	if err != nil {
		return keystoreErr(err)
	}
	return printKeystore(e, *k.asJSON, map[string]string{"branchKeyId": g.BranchKeyID, "version": v},
		fmt.Sprintf("branch key %s: new active version %s (older versions still decrypt; re-encrypt or rewrap what is under them)\n", g.BranchKeyID, v))
}

func keystoreDescribe(ctx context.Context, e *env, k *keystoreFlags) error {
	s, g, err := k.store(ctx, e, false)
	if err != nil {
		return err
	}
	if g.BranchKeyID == "" {
		return usageErrorf("--branch-key-id", "name the branch key to describe")
	}
	d, err := s.Describe(ctx, g.BranchKeyID)
	if err != nil {
		return keystoreErr(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "branch key %s (KMS key %s)\n", sanitize(d.ID), sanitize(d.KMSKeyARN))
	for _, v := range d.Versions {
		mark := ""
		if v.Active {
			mark = "  active"
		}
		fmt.Fprintf(&b, "  %s  created %s%s\n", sanitize(v.Version), sanitize(v.CreateTime), mark)
	}
	return printKeystore(e, *k.asJSON, d, b.String())
}

func printKeystore(e *env, asJSON bool, v any, text string) error {
	if !asJSON {
		_, err := fmt.Fprint(e.stdout, text)
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

// keystoreErr maps key store failures to exit codes: configuration and
// requests that can never succeed are usage errors (2); the rest (a
// missing or tampered key, KMS or DynamoDB failures) exit 1.
func keystoreErr(err error) error {
	if errors.Is(err, keystore.ErrConfig) {
		return &exitError{Code: exitUsage, Err: err}
	}
	return &exitError{Code: exitFailed, Err: err}
}
