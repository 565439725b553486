// Package job builds what a job needs to run - its runtime - once, from a
// validated spec: key groups, materials managers (caching ones when the
// spec asks), storage (sources opened, one S3 client, one destination per
// output root) and the KMS clients that process KMS ciphertext blobs. The
// planner, the executor and the policy reconciler all consume a Runtime;
// none of them builds key groups, opens sources or makes clients itself.
//
// A Runtime holds no spec: what the executor needs is derived here, so
// applying a plan cannot depend on reading the spec again.
package job

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/crypto/caching"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// Options configures Prepare.
type Options struct {
	// BaseDir resolves relative paths of the job (the spec file's
	// directory; "" = the working directory).
	BaseDir string
	// KMS settings shared by every aws-kms key group (tests inject
	// Clients; the job's kms section fills the rest, see KMSConfig).
	KMS awskms.Config
	// S3Client overrides the client built from the job's s3 section.
	S3Client *sources.S3Client
	Stdin    io.Reader
	Stdout   io.Writer
	// LocalSync chooses the durability of local outputs (default group
	// commit).
	LocalSync sources.SyncMode
	// WrapDestination, when set, wraps every destination (fault injection
	// in tests, accounting).
	WrapDestination func(sources.Destination) sources.Destination

	// SpecFiles, PlanFile and MetadataLog name encjob's own files besides
	// the job's key files and spec.metadata.output: the spec or policy
	// files the job came from, a saved plan being written or applied, the
	// metadata log the caller writes. Relative paths are relative to the
	// working directory. The planner keeps them out of the items (a job
	// that does not replace its sources plans them as Skip, an in-place
	// job whose sources would list one is refused). They need not exist.
	SpecFiles   []string
	PlanFile    string
	MetadataLog string
	// OwnFilesListedOnly: an in-place job is refused only when one of
	// encjob's own files is actually planned as an item, not already when
	// it merely lies in a tree and passes the filters. For policies,
	// whose rules (exempt ones included) decide which listed files become
	// items of which job.
	OwnFilesListedOnly bool

	// BeforeOpen, when set, runs after the sources' locations are parsed
	// and before any key group is built (a key read, an alias resolved)
	// or source opened: the planner refuses overlapping sources and
	// outputs there. Its error is Prepare's.
	BeforeOpen func(ctx context.Context, rt *Runtime) error
}

// Runtime is a job made ready to run. Build it with Prepare (or
// OpenSources for listing only); it is safe for concurrent use.
type Runtime struct {
	BaseDir string
	Groups  map[string]*keygroup.Group
	// EncryptCMM / DecryptCMM are nil when the operation does not need
	// them.
	EncryptCMM crypto.MaterialsManager
	DecryptCMM crypto.MaterialsManager
	Suite      *crypto.Suite // desired suite (encrypt / reencrypt)
	Policy     crypto.CommitmentPolicy
	Notes      []string // resolved aliases, generated keys, warnings

	// Sources are the job's sources, opened; Locations their parsed
	// (resolved) paths, by the same index.
	Sources   []sources.Source
	Locations []sources.Location
	Storage   *Storage
	// Options is what the runtime was prepared with.
	Options Options
	// Settings are the job-wide settings apply needs, derived from the
	// spec once (the executor reads no spec).
	Settings Settings

	kms awskms.Config // shared KMS settings (KMSConfig), for KMS ciphertext blobs
}

// Settings are the job-wide settings of a run: what the executor needs
// besides the plan's items.
type Settings struct {
	// Mode is the metadata log's "mode" field: the operation, or
	// "decrypt-unsigned" for a decryption that accepts only unsigned
	// suites (as aws-encryption-cli writes it).
	Mode string
	// EncryptKeyGroup / DecryptKeyGroup are the groups the runtime's
	// CMMs are built from ("" when the operation has none).
	EncryptKeyGroup, DecryptKeyGroup string
	// Decryption limits and checks, applied to every message read.
	MaxEncryptedDataKeys int
	MaxBodyLength        int64
	UnsignedOnly         bool
	// AllowHeaderNonceReuse lets a rewrap keep the data key of a message
	// format v2 message (reencrypt.allowHeaderNonceReuse).
	AllowHeaderNonceReuse bool
	// RequireContext: every message decrypted must carry these context
	// pairs (a nil value: the key with any value).
	RequireContext map[string]*string
	// ReproducedContext is the context messages are expected to have
	// (decrypt.reproducedContext): it supplies the pairs a required
	// encryption context kept out of a header.
	ReproducedContext map[string]string
	// Execution: items at once, stop at the first failure, attempts
	// after the first for retryable errors.
	Concurrency int
	FailFast    bool
	Retries     int
}

func settingsOf(j *spec.Job) Settings {
	s := Settings{Mode: string(j.Operation), MaxEncryptedDataKeys: j.MaxEncryptedDataKeys, MaxBodyLength: int64(j.Decrypt.MaxBodyLength),
		UnsignedOnly: j.Decrypt.UnsignedOnly, RequireContext: j.Decrypt.RequireContext, AllowHeaderNonceReuse: j.Reencrypt.AllowHeaderNonceReuse,
		ReproducedContext: j.Decrypt.ReproducedContext,
		Concurrency:       max(1, j.Execution.Concurrency), FailFast: j.Execution.OnError == spec.OnErrorFailFast, Retries: 3}
	if j.Execution.Retries != nil {
		s.Retries = *j.Execution.Retries
	}
	if j.Operation != spec.OpEncrypt {
		s.DecryptKeyGroup = j.Decrypt.KeyGroup
	}
	if j.Operation != spec.OpDecrypt {
		s.EncryptKeyGroup = j.Encrypt.KeyGroup
	}
	if j.Decrypt.UnsignedOnly && j.Operation == spec.OpDecrypt {
		s.Mode = "decrypt-unsigned"
	}
	return s
}

// Prepare builds the runtime of a validated job: the key groups its
// operation needs (raw key files read, KMS aliases resolved), the
// materials managers, the sources. It writes nothing: key files a group
// asks to generate are made by GenerateKeys.
func Prepare(ctx context.Context, j *spec.Job, o Options) (*Runtime, error) {
	rt := newRuntime(j, o)
	var err error
	if rt.Policy, err = crypto.ParseCommitmentPolicy(cmp.Or(j.CommitmentPolicy, "require-encrypt-require-decrypt")); err != nil {
		return nil, err
	}
	rt.Locations = make([]sources.Location, len(j.Sources))
	for i, s := range j.Sources {
		if rt.Locations[i], err = sources.Parse(rt.Storage.Resolve(s.Path)); err != nil {
			return nil, fmt.Errorf("spec.sources[%d]: %w", i, err)
		}
	}
	if o.BeforeOpen != nil {
		if err := o.BeforeOpen(ctx, rt); err != nil {
			return nil, err
		}
	}
	if err := rt.buildGroups(ctx, j); err != nil {
		return nil, err
	}
	if err := rt.buildCMMs(j); err != nil {
		return nil, err
	}
	if rt.Sources, rt.Locations, err = rt.Storage.OpenSources(ctx, j.Sources); err != nil {
		return nil, err
	}
	return rt, nil
}

// OpenSources makes a runtime that only lists: the job's sources are
// opened, no key group is built and no KMS call is made (encjob
// partition).
func OpenSources(ctx context.Context, j *spec.Job, o Options) (*Runtime, error) {
	rt := newRuntime(j, o)
	var err error
	if rt.Sources, rt.Locations, err = rt.Storage.OpenSources(ctx, j.Sources); err != nil {
		return nil, err
	}
	return rt, nil
}

func newRuntime(j *spec.Job, o Options) *Runtime {
	return &Runtime{BaseDir: o.BaseDir, Groups: map[string]*keygroup.Group{}, Options: o, Settings: settingsOf(j), kms: KMSConfig(o.KMS, j.KMS),
		Storage: NewStorage(o.BaseDir, j.S3, StorageOptions{S3Client: o.S3Client, Stdin: o.Stdin, Stdout: o.Stdout,
			LocalSync: o.LocalSync, WrapDestination: o.WrapDestination})}
}

// KMSConfig is the KMS configuration of a job or policy: what the caller
// set (tests inject clients, the CLI an endpoint), the spec's kms section
// for the rest.
func KMSConfig(set awskms.Config, k spec.KMSConfig) awskms.Config {
	set.RateLimit = cmp.Or(set.RateLimit, k.RateLimit)
	set.RetryMode = cmp.Or(set.RetryMode, k.RetryMode)
	set.MaxAttempts = cmp.Or(set.MaxAttempts, k.MaxAttempts)
	set.Endpoint = cmp.Or(set.Endpoint, k.Endpoint)
	set.Timeout = cmp.Or(set.Timeout, k.Timeout.Duration)
	return set
}

// buildGroups builds the key groups the operation uses: the decrypt group
// unless it encrypts, the encrypt group unless it decrypts.
func (rt *Runtime) buildGroups(ctx context.Context, j *spec.Job) error {
	need := map[string]bool{}
	if j.Operation != spec.OpEncrypt {
		need[j.Decrypt.KeyGroup] = true
	}
	if j.Operation != spec.OpDecrypt {
		need[j.Encrypt.KeyGroup] = true
	}
	names := make([]string, 0, len(need))
	for name := range need {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		built, err := BuildGroup(ctx, name, j.KeyGroups[name], rt.kms, rt.BaseDir)
		if err != nil {
			return err
		}
		rt.Groups[name] = built
		rt.Notes = append(rt.Notes, built.Notes...)
	}
	return nil
}

// BuildGroup builds one key group of a spec. A group that is not defined,
// or cannot be built for a reason a retry will not fix (a missing key
// file, a key that does not exist), is a *SetupError; a throttled or
// unavailable KMS is returned as it is (worth a retry).
func BuildGroup(ctx context.Context, name string, g *spec.KeyGroup, kms awskms.Config, baseDir string) (*keygroup.Group, error) {
	if g == nil {
		return nil, &SetupError{Err: fmt.Errorf("key group %q is not defined", name)}
	}
	built, err := keygroup.Build(ctx, name, g, keygroup.Options{KMS: kms, BaseDir: baseDir})
	if err != nil {
		var r interface{ Retryable() bool }
		if errors.As(err, &r) && r.Retryable() {
			return nil, err
		}
		return nil, &SetupError{Err: err}
	}
	return built, nil
}

// buildCMMs makes the materials managers of the built groups, caching
// ones when the job has a caching section, and parses the desired suite.
func (rt *Runtime) buildCMMs(j *spec.Job) error {
	c := j.Caching
	if j.Operation != spec.OpEncrypt {
		rt.DecryptCMM = crypto.NewDefaultCMM(rt.Groups[j.Decrypt.KeyGroup].Keyring)
		if c != nil {
			// Messages made under one cached data key share their EDKs:
			// decrypting them costs one KMS call, not one per message.
			cc, err := caching.New(rt.DecryptCMM, caching.Options{Capacity: c.Capacity, MaxAge: c.MaxAge.Duration,
				PartitionID: "encjob-decrypt/" + j.Decrypt.KeyGroup})
			if err != nil {
				return err
			}
			rt.DecryptCMM = cc
		}
	}
	if j.Operation == spec.OpDecrypt {
		return nil
	}
	rt.EncryptCMM = crypto.NewDefaultCMM(rt.Groups[j.Encrypt.KeyGroup].Keyring)
	if c != nil {
		cc, err := caching.New(rt.EncryptCMM, caching.Options{Capacity: c.Capacity, MaxAge: c.MaxAge.Duration,
			MaxMessagesEncrypted: uint64(c.MaxMessagesEncrypted), MaxBytesEncrypted: uint64(c.MaxBytesEncrypted),
			PartitionID: "encjob/" + j.Encrypt.KeyGroup})
		if err != nil {
			return err
		}
		rt.EncryptCMM = cc
	}
	var err error
	rt.Suite, err = crypto.ParseSuite(cmp.Or(j.Encrypt.Algorithm, crypto.DefaultSuiteFor(rt.Policy).Name))
	return err
}

// GenerateKeys creates the key files of key groups with generate: true
// that do not exist yet (see keygroup.Group.GenerateKeys) and returns a
// note per key made. Prepare never writes, so a plan leaves the tree as
// it found it; apply calls this before its first item. It is idempotent.
func (rt *Runtime) GenerateKeys() ([]string, error) {
	names := make([]string, 0, len(rt.Groups))
	for name := range rt.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	var notes []string
	for _, name := range names {
		n, err := rt.Groups[name].GenerateKeys()
		if err != nil {
			return notes, &SetupError{Err: err}
		}
		notes = append(notes, n...)
	}
	return notes, nil
}

// Destination returns the destination of an output root (see
// Storage.Destination).
func (rt *Runtime) Destination(ctx context.Context, root string) (sources.Destination, error) {
	return rt.Storage.Destination(ctx, root)
}

// Destinations returns every destination opened so far.
func (rt *Runtime) Destinations() []sources.Destination { return rt.Storage.Destinations() }

// SetupError is a job that cannot start for a reason a retry will not
// fix: a key file that is missing or malformed, a key that does not
// exist. The CLI reports it with the usage/spec exit code.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// S3Client returns the job's S3 client (Storage.S3Client).
func (rt *Runtime) S3Client(ctx context.Context) (*sources.S3Client, error) {
	return rt.Storage.S3Client(ctx)
}

// CMM returns the materials manager the runtime built for a key group:
// the encrypting one (encrypt true) or the decrypting one. A plan item
// names its key groups; one this runtime was not built for is an error,
// not a fallback to another group.
func (rt *Runtime) CMM(group string, encrypt bool) (crypto.MaterialsManager, error) {
	want, cmm := rt.Settings.DecryptKeyGroup, rt.DecryptCMM
	if encrypt {
		want, cmm = rt.Settings.EncryptKeyGroup, rt.EncryptCMM
	}
	if cmm == nil || group != want {
		return nil, fmt.Errorf("key group %q: the runtime has no materials manager for it (built for %q)", group, want)
	}
	return cmm, nil
}

// Keyring returns the keyring of a built key group.
func (rt *Runtime) Keyring(group string) (crypto.Keyring, error) {
	g := rt.Groups[group]
	if g == nil {
		return nil, fmt.Errorf("key group %q is not built in this runtime", group)
	}
	return g.Keyring, nil
}
