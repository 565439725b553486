package planner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

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
	// Clients; the job's kms section fills the rest).
	KMS awskms.Config
	// S3Client overrides the client built from the job's s3 section.
	S3Client *awss3.Client
	Stdin    io.Reader
	Stdout   io.Writer
	// LocalSync chooses the durability of local outputs (default group
	// commit).
	LocalSync sources.SyncMode
	// WrapDestination, when set, wraps every destination (fault injection
	// in tests, accounting).
	WrapDestination func(sources.Destination) sources.Destination

	// SpecFiles, PlanFile and MetadataLog name encjob's own files besides
	// the job's key files and spec.metadata.output (which Prepare finds
	// itself): the spec or policy files the job came from, a saved plan
	// being written or applied, the metadata log the caller writes.
	// Relative paths are relative to the working directory. They are
	// never items: a job that does not replace its sources plans them as
	// Skip, an in-place job whose sources would list one is refused
	// (SetupError). They need not exist yet.
	SpecFiles   []string
	PlanFile    string
	MetadataLog string
	// OwnFilesListedOnly: an in-place job is refused only when one of
	// encjob's own files is actually planned as an item, not already by
	// Prepare when it merely lies in a tree and passes the filters. For
	// policies, whose rules (exempt ones included) decide which listed
	// files become items of which job.
	OwnFilesListedOnly bool
}

// Runtime is a job made ready to run: key groups built, materials managers
// made, storage opened. Planner and executor share it.
type Runtime struct {
	Job     *spec.Job
	BaseDir string
	Groups  map[string]*keygroup.Group
	// EncryptCMM / DecryptCMM are nil when the operation does not need
	// them.
	EncryptCMM crypto.MaterialsManager
	DecryptCMM crypto.MaterialsManager
	Suite      *crypto.Suite // desired suite (encrypt / reencrypt)
	Policy     crypto.CommitmentPolicy
	Notes      []string // resolved aliases, generated keys, warnings

	Sources []sources.Source
	locs    []sources.Location
	opts    Options

	kms awskms.Config // shared KMS settings, for KMS ciphertext blobs

	mu    sync.Mutex
	s3c   *awss3.Client
	dests map[string]sources.Destination

	guard    *guard               // encjob's own files and directories (guard.go)
	matchers map[int]*listMatcher // per source, under mu (overlap.go)
}

// Prepare builds the runtime of a validated job.
func Prepare(ctx context.Context, job *spec.Job, o Options) (*Runtime, error) {
	rt := &Runtime{Job: job, BaseDir: o.BaseDir, Groups: map[string]*keygroup.Group{}, opts: o,
		dests: map[string]sources.Destination{}, s3c: o.S3Client}
	var err error
	if rt.Policy, err = crypto.ParseCommitmentPolicy(orDefault(job.CommitmentPolicy, "require-encrypt-require-decrypt")); err != nil {
		return nil, err
	}
	kms := o.KMS
	if kms.RateLimit == 0 {
		kms.RateLimit = job.KMS.RateLimit
	}
	if kms.RetryMode == "" {
		kms.RetryMode = job.KMS.RetryMode
	}
	if kms.MaxAttempts == 0 {
		kms.MaxAttempts = job.KMS.MaxAttempts
	}
	if kms.Endpoint == "" {
		kms.Endpoint = job.KMS.Endpoint
	}
	if kms.Timeout == 0 {
		kms.Timeout = job.KMS.Timeout.Duration
	}
	rt.kms = kms
	// Overlaps and encjob's own files are checked before a key is
	// generated or anything is opened.
	locs := make([]sources.Location, len(job.Sources))
	for i, s := range job.Sources {
		if locs[i], err = sources.Parse(rt.resolve(s.Path)); err != nil {
			return nil, fmt.Errorf("spec.sources[%d]: %w", i, err)
		}
	}
	rt.buildGuard(locs)
	if err := rt.checkOverlap(ctx, locs); err != nil {
		return nil, err
	}
	need := map[string]bool{}
	if job.Operation != spec.OpEncrypt {
		need[job.Decrypt.KeyGroup] = true
	}
	if job.Operation != spec.OpDecrypt {
		need[job.Encrypt.KeyGroup] = true
	}
	for name := range need {
		g, ok := job.KeyGroups[name]
		if !ok {
			return nil, fmt.Errorf("key group %q is not defined", name)
		}
		built, err := keygroup.Build(ctx, name, g, keygroup.Options{KMS: kms, BaseDir: o.BaseDir})
		if err != nil {
			var r interface{ Retryable() bool }
			if errors.As(err, &r) && r.Retryable() {
				return nil, err // throttled or unavailable: worth a retry
			}
			return nil, &SetupError{Err: err}
		}
		rt.Groups[name] = built
		rt.Notes = append(rt.Notes, built.Notes...)
	}
	if job.Operation != spec.OpEncrypt {
		rt.DecryptCMM = crypto.NewDefaultCMM(rt.Groups[job.Decrypt.KeyGroup].Keyring)
		if c := job.Caching; c != nil {
			// Messages made under one cached data key share their EDKs:
			// decrypting them costs one KMS call, not one per message.
			cc, err := caching.New(rt.DecryptCMM, caching.Options{Capacity: c.Capacity, MaxAge: c.MaxAge.Duration,
				PartitionID: "encjob-decrypt/" + job.Decrypt.KeyGroup})
			if err != nil {
				return nil, err
			}
			rt.DecryptCMM = cc
		}
	}
	if job.Operation != spec.OpDecrypt {
		cmm := crypto.NewDefaultCMM(rt.Groups[job.Encrypt.KeyGroup].Keyring)
		if c := job.Caching; c != nil {
			cc, err := caching.New(cmm, caching.Options{Capacity: c.Capacity, MaxAge: c.MaxAge.Duration,
				MaxMessagesEncrypted: uint64(c.MaxMessagesEncrypted), MaxBytesEncrypted: uint64(c.MaxBytesEncrypted),
				PartitionID: "encjob/" + job.Encrypt.KeyGroup})
			if err != nil {
				return nil, err
			}
			cmm = cc
		}
		rt.EncryptCMM = cmm
		if rt.Suite, err = crypto.ParseSuite(orDefault(job.Encrypt.Algorithm, crypto.DefaultSuiteFor(rt.Policy).Name)); err != nil {
			return nil, err
		}
	}
	for i, s := range job.Sources {
		src, loc, err := rt.openSource(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("spec.sources[%d]: %w", i, err)
		}
		rt.Sources = append(rt.Sources, src)
		rt.locs = append(rt.locs, loc)
	}
	return rt, nil
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

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// resolve makes a local path relative to the base dir.
func (rt *Runtime) resolve(p string) string {
	if p == "-" || strings.HasPrefix(p, "s3://") || filepath.IsAbs(p) || rt.BaseDir == "" {
		return p
	}
	return filepath.Join(rt.BaseDir, p)
}

func (rt *Runtime) s3Client(ctx context.Context) (*awss3.Client, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.s3c != nil {
		return rt.s3c, nil
	}
	c := rt.Job.S3
	cl, err := sources.NewS3Client(ctx, sources.S3Config{Region: c.Region, Profile: c.Profile, Endpoint: c.Endpoint, UsePathStyle: c.PathStyle, Timeout: c.Timeout.Duration})
	if err != nil {
		return nil, err
	}
	rt.s3c = cl
	return cl, nil
}

func (rt *Runtime) s3Options(ctx context.Context) (sources.S3Options, error) {
	cl, err := rt.s3Client(ctx)
	if err != nil {
		return sources.S3Options{}, err
	}
	return sources.S3Options{Client: cl, PartSize: int64(rt.Job.S3.PartSize)}, nil
}

func (rt *Runtime) openSource(ctx context.Context, s spec.Source) (sources.Source, sources.Location, error) {
	loc, err := sources.Parse(rt.resolve(s.Path))
	if err != nil {
		return nil, loc, err
	}
	f, err := sources.NewFilter(s.Include, s.Exclude)
	if err != nil {
		return nil, loc, err
	}
	if loc.Kind == sources.Stdio {
		in := rt.opts.Stdin
		if in == nil {
			in = os.Stdin
		}
		return sources.NewStdinSource(in), loc, nil
	}
	so := sources.SourceOptions{Filter: f, FollowSymlinks: s.FollowSymlinks}
	src, err := sources.NewSource(loc, so, func() (sources.S3Options, error) { return rt.s3Options(ctx) })
	return src, loc, err
}

// Destination returns the destination and key an item is written to, and
// a display name for it.
func (rt *Runtime) Destination(ctx context.Context, it *Item) (sources.Destination, error) {
	root := it.OutRoot
	rt.mu.Lock()
	d, ok := rt.dests[root]
	rt.mu.Unlock()
	if ok {
		return d, nil
	}
	loc, err := sources.Parse(root)
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case sources.Stdio:
		out := rt.opts.Stdout
		if out == nil {
			out = os.Stdout
		}
		d = sources.NewStdoutDestination(out)
	case sources.S3:
		o, err := rt.s3Options(ctx)
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(loc.Key, "/") && loc.Key != "" {
			loc.Key += "/"
		}
		if d, err = sources.NewS3Destination(loc, o); err != nil {
			return nil, err
		}
	default:
		d = sources.NewLocalDestination(loc.Path, sources.LocalDestOptions{Sync: rt.opts.LocalSync})
	}
	if rt.opts.WrapDestination != nil {
		d = rt.opts.WrapDestination(d)
	}
	rt.mu.Lock()
	rt.dests[root] = d
	rt.mu.Unlock()
	return d, nil
}

// Destinations returns every destination opened so far.
func (rt *Runtime) Destinations() []sources.Destination {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]sources.Destination, 0, len(rt.dests))
	for _, d := range rt.dests {
		out = append(out, d)
	}
	return out
}

// outputFor computes where an item goes: the output display string (root
// joined with key) and the key under that root.
func (rt *Runtime) outputFor(srcIndex int, it sources.Item) (output, root, key string) {
	job := rt.Job
	loc := rt.locs[srcIndex]
	out := job.Output
	join := func(root, key string) string {
		if strings.HasPrefix(root, "s3://") {
			return strings.TrimSuffix(root, "/") + "/" + key
		}
		return path.Join(filepath.ToSlash(root), key)
	}
	switch {
	case out.Stdout:
		return "<stdout>", "-", it.Key
	case out.InPlace:
		root := sourceRoot(loc, it)
		return join(root, it.Key), root, it.Key
	}
	dst := rt.resolve(out.Path)
	if dst == "-" {
		return "<stdout>", "-", it.Key
	}
	if it.IsSingle && !isDirLike(dst) {
		// One input, one named output file: the name is used as it is.
		dir, base := splitLast(dst)
		return join(dir, base), dir, base
	}
	name := out.Name(it.Key)
	return join(dst, name), dst, name
}

// sourceRoot is the directory (or prefix) the item's key is relative to.
func sourceRoot(loc sources.Location, it sources.Item) string {
	switch loc.Kind {
	case sources.S3:
		k := loc.Key
		if it.IsSingle {
			k, _ = splitLast(k)
			if k == "." {
				k = ""
			}
		}
		return "s3://" + loc.Bucket + "/" + strings.TrimSuffix(k, "/")
	default:
		if it.IsSingle {
			return filepath.Dir(loc.Path)
		}
		return loc.Path
	}
}

func isDirLike(p string) bool {
	if strings.HasSuffix(p, "/") {
		return true
	}
	if strings.HasPrefix(p, "s3://") {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func splitLast(p string) (dir, base string) {
	if strings.HasPrefix(p, "s3://") {
		i := strings.LastIndex(p, "/")
		return p[:i], p[i+1:]
	}
	return filepath.Dir(p), filepath.Base(p)
}

// readBackHeader reads the header of an item's existing output.
func (rt *Runtime) readBackHeader(ctx context.Context, it *Item) (*crypto.Header, error) {
	loc, err := sources.Parse(it.OutRoot)
	if err != nil {
		return nil, err
	}
	if loc.Kind == sources.S3 && loc.Key != "" && !strings.HasSuffix(loc.Key, "/") {
		loc.Key += "/" // the output root is a prefix
	}
	src, err := sources.NewSource(loc, sources.SourceOptions{}, func() (sources.S3Options, error) { return rt.s3Options(ctx) })
	if err != nil {
		return nil, err
	}
	return readHeader(ctx, src, it.OutKey, rt.Job.Output.Encoding, rt.Job.MaxEncryptedDataKeys)
}

// SetupError is a job that cannot start for a reason a retry will not
// fix: a key file that is missing or malformed, a key that does not
// exist. The CLI reports it with the usage/spec exit code.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Target is the suite and frame length a message is written with.
type Target struct {
	Suite       *crypto.Suite
	FrameLength *int   // nil: the default frame length
	Note        string // set when the source's suite could not be kept
}

// TargetFor returns what a message is encrypted with. For a re-encryption
// of src, what the job does not set is kept from src, because the user
// asked to change keys or context, not the format: its suite, unless the
// commitment policy forbids encrypting with it (then the policy's default,
// with a Note for the plan), and its frame length (a non-framed source is
// written framed with the default frame length: encrypting non-framed
// needs the plaintext length before the first byte, and a re-encryption
// learns it only while decrypting). Plain encryptions (src nil) use the
// job's settings.
func (rt *Runtime) TargetFor(src *crypto.Header) Target {
	job := rt.Job
	t := Target{Suite: rt.Suite, FrameLength: job.Encrypt.FrameLength}
	if src == nil || src.Suite == nil || job.Operation != spec.OpReencrypt {
		return t
	}
	if job.Encrypt.Algorithm == "" {
		if rt.Policy.AllowsEncrypt(src.Suite) {
			t.Suite = src.Suite
		} else {
			t.Note = fmt.Sprintf("suite %s of the source is not allowed for encryption under commitment policy %s: re-encrypted with %s",
				src.Suite.Hex(), rt.Policy, rt.Suite.Hex())
		}
	}
	if t.FrameLength == nil && src.ContentType == crypto.ContentFramed && src.FrameLength > 0 {
		fl := int(src.FrameLength)
		t.FrameLength = &fl
	}
	return t
}
