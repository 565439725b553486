package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// fileSystem is what argument parsing may look at: whether inputs and
// outputs exist, and glob expansion (aws-encryption-cli expands -i itself).
type fileSystem interface {
	Stat(name string) (fs.FileInfo, error)
	Glob(pattern string) ([]string, error)
	// RealPath is the absolute path with every symlink resolved.
	RealPath(name string) (string, error)
}

type osFS struct{}

func (osFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
func (osFS) RealPath(name string) (string, error) {
	p, err := filepath.EvalSymlinks(name)
	if err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

// cryptoRun is a parsed encrypt / decrypt / reencrypt command line: the
// job it means and how to run it.
type cryptoRun struct {
	Job               *spec.Job
	MetadataOutput    string // "" when -S
	MetadataOverwrite bool
	Interactive       bool
	Verbosity         int
	Quiet             bool
	NoProgress        bool
	AutoApprove       bool // reencrypt in place: --auto-approve
	// StreamOutput is an -o that names a device or pipe (/dev/null, a
	// fifo): the one output is written into it like stdout.
	StreamOutput string
	// Notes are warnings about the command line (ignored flags, skipped
	// directories), printed unless -q.
	Notes []string
}

// Key group names used by jobs built from the command line.
const (
	groupWrapping = "wrapping"
	groupSource   = "source"
)

// multiFlags take one or more values, like argparse's nargs="+" in
// aws-encryption-cli: "-w key=A key=B region=R" is one group.
var multiFlags = map[string]string{
	"-w": "wrapping-keys", "--wrapping-keys": "wrapping-keys",
	"-c": "encryption-context", "--encryption-context": "encryption-context",
	"--caching": "caching", "--source-wrapping-keys": "source-wrapping-keys",
	"--remove-context":        "remove-context",
	"--required-context-keys": "required-context-keys", "--reproduced-encryption-context": "reproduced-encryption-context",
}

// normalizeMulti folds the values following a multi-value flag into one
// "--name=v1<sep>v2" argument so pflag sees one occurrence per group, and
// turns a bare "--suffix" (an empty suffix in aws-encryption-cli) into
// "--suffix=". Values end at the next argument that looks like a flag.
func normalizeMulti(args []string) []string {
	var out []string
	isValue := func(a string) bool { return a == "-" || !strings.HasPrefix(a, "-") }
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, first, hasFirst := "", "", false
		if n, ok := multiFlags[a]; ok {
			name = n
		} else if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
			if n, ok := multiFlags[k]; ok {
				name, first, hasFirst = n, v, true
			}
		} else if len(a) > 2 && (strings.HasPrefix(a, "-w") || strings.HasPrefix(a, "-c")) && a[1] != '-' {
			name, first, hasFirst = multiFlags[a[:2]], a[2:], true
		}
		if name == "" {
			if a == "--suffix" && (i+1 >= len(args) || !isValue(args[i+1])) {
				a = "--suffix="
			}
			out = append(out, a)
			continue
		}
		var vals []string
		if hasFirst {
			vals = append(vals, first)
		}
		for i+1 < len(args) && isValue(args[i+1]) {
			i++
			vals = append(vals, args[i])
		}
		if len(vals) == 0 {
			out = append(out, a) // let pflag report the missing value
			continue
		}
		out = append(out, "--"+name+"="+strings.Join(vals, groupSep))
	}
	return out
}

func splitGroup(v string) []string { return strings.Split(v, groupSep) }

// cryptoFlags are the aws-encryption-cli-compatible flags.
type cryptoFlags struct {
	encrypt, decrypt, decryptUnsigned         bool
	input, output                             string
	wrapping, sourceWrapping, context, remove []string
	caching                                   []string
	suffix, stripSuffix                       string
	recursive, recursiveR                     bool
	interactive, noOverwrite                  bool
	encode, decode                            bool
	metadataOutput                            string
	suppressMetadata, overwriteMetadata       bool
	commitmentPolicy, algorithm               string
	frameLength, maxLength, maxEDKs           int
	buffer, noProgress, quiet, verify         bool
	rewrap, rewrapNonceReuse, headerInPlace   bool
	require                                   string
	requiredKeys, reproduced                  []string // --required-context-keys, --reproduced-encryption-context
	storeRequired                             bool     // --store-required-context
	autoApprove                               bool
	verbosity                                 int
	concurrency                               int
	kmsTimeout, s3Timeout                     time.Duration
	s3NoConditionalWrites                     bool
	// set holds the names of the flags given: "was it given" is never a
	// value the user could type.
	set map[string]bool
}

func newCryptoFlagSet(mode string, f *cryptoFlags, out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("encjob "+mode, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	fs.Usage = func() {} // help is printed by commandHelp
	fs.BoolVarP(&f.encrypt, "encrypt", "e", false, "encrypt (aws-encryption-cli mode flag)")
	fs.BoolVarP(&f.decrypt, "decrypt", "d", false, "decrypt (aws-encryption-cli mode flag)")
	fs.BoolVar(&f.decryptUnsigned, "decrypt-unsigned", false, "decrypt, accepting only unsigned messages")
	fs.StringVarP(&f.input, "input", "i", "", "input: file, directory (with -r), glob, - for stdin, or s3://bucket/key-or-prefix")
	fs.StringVarP(&f.output, "output", "o", "", "output: file, directory, - for stdout, or s3://bucket/prefix")
	fs.StringArrayVarP(&f.wrapping, "wrapping-keys", "w", nil, "wrapping key group: key=ARN… [region=…] [profile=…] [discovery=true …], or provider=raw-aes|raw-rsa key-file=… namespace=… name=…")
	if mode == "reencrypt" {
		fs.StringArrayVar(&f.sourceWrapping, "source-wrapping-keys", nil, "wrapping key group that decrypts the inputs (same syntax as -w)")
		fs.StringArrayVar(&f.remove, "remove-context", nil, "encryption context keys to drop when re-encrypting")
		fs.BoolVar(&f.verify, "verify", false, "decrypt each new message and compare digests before committing it")
		fs.BoolVar(&f.rewrap, "rewrap", false, "keep each message's data key, suite and body: only rewrap its data key under -w (reencrypt.mode: rewrap)")
		fs.BoolVar(&f.rewrapNonceReuse, "rewrap-allow-header-nonce-reuse", false, "with --rewrap: rewrap message format v2 (0x0478, 0x0578) too instead of re-encrypting it in full (reencrypt.allowHeaderNonceReuse)")
		fs.BoolVar(&f.headerInPlace, "rewrap-header-in-place", false, "with --rewrap and -o equal to -i: overwrite each local file's header in place behind a durable journal when the new header has the old one's length, instead of writing a new file (reencrypt.headerInPlace)")
		fs.StringVar(&f.require, "require", "", "rewrap: every item must be rewrapped (implies --rewrap), one that cannot is an error instead of a full re-encryption; full: every item gets a new data key (reencrypt.require)")
		fs.BoolVar(&f.autoApprove, "auto-approve", false, "with -o equal to -i: replace the inputs in place without asking; required when there is no terminal")
	}
	fs.StringArrayVarP(&f.context, "encryption-context", "c", nil, "encryption context key=value pairs (decrypt: required pairs; a bare key must be present)")
	if mode != "decrypt" {
		fs.StringArrayVar(&f.requiredKeys, "required-context-keys", nil, "context keys whose pairs the new messages authenticate but do not store (required encryption context CMM)")
	}
	if mode != "encrypt" {
		fs.StringArrayVar(&f.reproduced, "reproduced-encryption-context", nil, "key=value pairs the messages must have: supplies the pairs a required encryption context kept out of the header")
	}
	if mode == "reencrypt" {
		fs.BoolVar(&f.storeRequired, "store-required-context", false, "store the reproduced pairs the source kept out of its header in the new message (reencrypt.storeRequiredContext)")
	}
	fs.StringArrayVar(&f.caching, "caching", nil, "caching: capacity=N max_age=SECONDS [max_messages_encrypted=N] [max_bytes_encrypted=N]")
	fs.StringVar(&f.suffix, "suffix", "", "suffix appended to output names (default .encrypted / .decrypted; bare --suffix: none)")
	if mode != "encrypt" {
		fs.StringVar(&f.stripSuffix, "strip-suffix", "", "decrypt: strip this suffix from names that end with it instead of appending --suffix")
		fs.Lookup("strip-suffix").NoOptDefVal = ".encrypted"
	}
	fs.BoolVarP(&f.recursive, "recursive", "r", false, "allow directories (and S3 prefixes) as input")
	fs.BoolVarP(&f.recursiveR, "R", "R", false, "same as -r")
	fs.Lookup("R").Hidden = true
	fs.BoolVar(&f.interactive, "interactive", false, "prompt before overwriting an existing output (needs a terminal)")
	fs.BoolVar(&f.noOverwrite, "no-overwrite", false, "never overwrite existing outputs (each is reported as a conflict)")
	fs.BoolVar(&f.encode, "encode", false, "base64-encode the output")
	fs.BoolVar(&f.decode, "decode", false, "base64-decode the input")
	fs.StringVar(&f.metadataOutput, "metadata-output", "", "append one JSON metadata record per item to this file (- for stdout)")
	fs.BoolVarP(&f.suppressMetadata, "suppress-metadata", "S", false, "write no metadata")
	fs.BoolVar(&f.overwriteMetadata, "overwrite-metadata", false, "truncate the metadata file instead of appending")
	fs.StringVar(&f.commitmentPolicy, "commitment-policy", "", "require-encrypt-require-decrypt (default), require-encrypt-allow-decrypt, forbid-encrypt-allow-decrypt")
	fs.StringVar(&f.algorithm, "algorithm", "", "algorithm suite name (encrypt)")
	fs.IntVar(&f.frameLength, "frame-length", 0, "frame length in bytes (encrypt; 0 = non-framed)")
	fs.IntVar(&f.maxLength, "max-length", 0, "maximum frame or content length to process (decrypt)")
	fs.IntVar(&f.maxEDKs, "max-encrypted-data-keys", 0, "maximum number of encrypted data keys to wrap or unwrap (default 10, or the number of wrapping keys if more)")
	fs.BoolVarP(&f.buffer, "buffer", "b", false, "accepted for compatibility: outputs are always committed atomically")
	fs.IntVar(&f.concurrency, "concurrency", 0, "items processed at once (default 2×CPUs)")
	fs.DurationVar(&f.kmsTimeout, "kms-timeout", 0, "bound on each KMS request attempt (spec kms.timeout; default 30s)")
	fs.DurationVar(&f.s3Timeout, "s3-timeout", 0, "S3 calls fail after this long without progress (spec s3.timeout; default 60s)")
	fs.BoolVar(&f.s3NoConditionalWrites, "s3-no-conditional-writes", false, "the S3 server does not honour If-None-Match/If-Match: check with HEAD right before each write (spec s3.noConditionalWrites)")
	fs.BoolVar(&f.noProgress, "no-progress", false, "no live progress line")
	fs.CountVarP(&f.verbosity, "verbose", "v", "more output (-v, -vv)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "only errors and the summary")
	return fs
}

// parseCryptoArgs turns an encrypt / decrypt / reencrypt command line into
// a validated, defaulted job. mode is the subcommand ("encrypt",
// "decrypt", "reencrypt") or "" when the mode comes from -e / -d /
// --decrypt-unsigned. It reads nothing but fsys (whether inputs and
// outputs exist, globs); every error is a *usageError naming the flag at
// fault.
func parseCryptoArgs(mode string, args []string, fsys fileSystem) (*cryptoRun, error) {
	f, err := parseCryptoFlags(mode, args)
	if err != nil {
		return nil, err
	}
	op, err := cryptoOp(mode, f)
	if err != nil {
		return nil, err
	}
	if f.quiet && f.verbosity > 0 {
		return nil, usageErrorf("-q", "not allowed with -v")
	}
	run := &cryptoRun{Verbosity: f.verbosity, Quiet: f.quiet, NoProgress: f.noProgress, Interactive: f.interactive, AutoApprove: f.autoApprove,
		Job: &spec.Job{Operation: spec.Operation(op), KeyGroups: map[string]*spec.KeyGroup{}}}
	setIO := func(run *cryptoRun, f *cryptoFlags, op string) error { return buildIO(run, f, op, fsys) }
	for _, step := range []func(*cryptoRun, *cryptoFlags, string) error{
		setMetadata, setKeyGroups, setContext, setLimits, setCaching, setIO, setOutputMode,
	} {
		if err := step(run, f, op); err != nil {
			return nil, err
		}
	}
	if err := checkMetadataPath(run.MetadataOutput, f.input, f.output, fsys); err != nil {
		return nil, err
	}
	// Validate as a spec would be, then default; keep the naming the
	// command line asked for (Defaults only fills names when both are
	// empty, which an explicit empty --suffix must not trigger).
	job := run.Job
	out := job.Output
	if errs := job.Validate(nil); len(errs) > 0 {
		return nil, flagErrors(errs)
	}
	job.Defaults()
	job.Output.Suffix, job.Output.StripSuffix = out.Suffix, out.StripSuffix
	return run, nil
}

// parseCryptoFlags parses the flags of a crypto command line and records
// which were given (an unset flag and one set to its zero value differ:
// "--frame-length 0" is non-framed, no --frame-length is the default).
func parseCryptoFlags(mode string, args []string) (*cryptoFlags, error) {
	f := &cryptoFlags{}
	flagMode := mode
	if flagMode == "" {
		flagMode = "decrypt" // the superset of encrypt's flags
	}
	fset := newCryptoFlagSet(flagMode, f, io.Discard)
	// Before normalizeMulti, which would read "-wrapping-keys" as -w.
	if err := checkDashForms(fset, args); err != nil {
		return nil, err
	}
	if err := parseFlagSet(fset, normalizeMulti(args)); err != nil {
		return nil, err
	}
	if fset.NArg() > 0 {
		return nil, usageErrorf(fset.Arg(0), "unexpected argument").withHint("inputs are given with -i; quote globs so the shell does not expand them")
	}
	f.set = map[string]bool{}
	fset.Visit(func(fl *pflag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// cryptoOp is the operation: the subcommand, or aws-encryption-cli's mode
// flags.
func cryptoOp(mode string, f *cryptoFlags) (string, error) {
	modes := 0
	for _, b := range []bool{f.encrypt, f.decrypt, f.decryptUnsigned} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return "", usageErrorf("-e/-d", "give only one of -e/--encrypt, -d/--decrypt, --decrypt-unsigned")
	}
	switch {
	case mode == "" && f.encrypt:
		if f.stripSuffix != "" {
			return "", usageErrorf("--strip-suffix", "only for decrypt")
		}
		return "encrypt", nil
	case mode == "" && (f.decrypt || f.decryptUnsigned):
		return "decrypt", nil
	case mode == "":
		return "", usageErrorf("-e/-d", "no operation").withHint("use 'encjob encrypt …', 'encjob decrypt …', or -e / -d")
	case mode != "decrypt" && (f.decrypt || f.decryptUnsigned):
		return "", usageErrorf("--decrypt", "not allowed with encjob %s", mode)
	case mode != "encrypt" && f.encrypt:
		return "", usageErrorf("--encrypt", "not allowed with encjob %s", mode)
	}
	return mode, nil
}

// setMetadata: exactly one of --metadata-output and -S, as in
// aws-encryption-cli 2.x (optional for reencrypt, encjob's own).
func setMetadata(run *cryptoRun, f *cryptoFlags, op string) error {
	switch {
	case f.set["metadata-output"] && f.suppressMetadata:
		return usageErrorf("--metadata-output", "not allowed with -S/--suppress-metadata")
	case f.set["metadata-output"] && f.metadataOutput == "":
		return usageErrorf("--metadata-output", "metadata output file name cannot be empty")
	case !f.set["metadata-output"] && !f.suppressMetadata && op != "reencrypt":
		return usageErrorf("--metadata-output", "one of --metadata-output and -S/--suppress-metadata is required").
			withHint("pass -S to write no metadata, or --metadata-output FILE (- for stdout)")
	}
	run.MetadataOutput, run.MetadataOverwrite = f.metadataOutput, f.overwriteMetadata
	return nil
}

// setKeyGroups builds the wrapping key group (-w) and, for reencrypt, the
// source group (--source-wrapping-keys).
func setKeyGroups(run *cryptoRun, f *cryptoFlags, op string) error {
	job := run.Job
	wg, notes, err := parseWrappingKeys("-w/--wrapping-keys", groups(f.wrapping), op != "decrypt")
	if err != nil {
		return err
	}
	run.Notes = append(run.Notes, notes...)
	job.KeyGroups[groupWrapping] = wg
	if op == "decrypt" {
		job.Decrypt.KeyGroup = groupWrapping
		return nil
	}
	job.Encrypt.KeyGroup = groupWrapping
	if op == "reencrypt" {
		sg, notes, err := parseWrappingKeys("--source-wrapping-keys", groups(f.sourceWrapping), false)
		if err != nil {
			return err
		}
		run.Notes = append(run.Notes, notes...)
		job.KeyGroups[groupSource] = sg
		job.Decrypt.KeyGroup = groupSource
	}
	return nil
}

// setContext reads -c: the context to encrypt under (the first value of a
// repeated key, as aws-encryption-cli keeps it), or on decrypt the pairs
// and bare keys a message must carry; and --remove-context.
func setContext(run *cryptoRun, f *cryptoFlags, op string) error {
	job := run.Job
	var words []string
	for _, g := range f.context {
		words = append(words, splitGroup(g)...)
	}
	for _, g := range f.remove {
		job.Reencrypt.Remove = append(job.Reencrypt.Remove, splitGroup(g)...)
	}
	if err := parseRequiredContext(f, job); err != nil {
		return err
	}
	if len(words) == 0 {
		return nil
	}
	if op != "decrypt" {
		m, _, err := parsePairs("-c/--encryption-context", words)
		if err != nil {
			return err
		}
		ctx := map[string]string{}
		for k, v := range m {
			ctx[k] = v[0]
		}
		if op == "encrypt" {
			job.Encrypt.Context = ctx
		} else {
			job.Reencrypt.Add = ctx
		}
		return nil
	}
	job.Decrypt.RequireContext = map[string]*string{}
	for _, w := range words {
		k, v, hasValue := strings.Cut(w, "=")
		if k == "" || hasValue && v == "" {
			return usageErrorf("-c/--encryption-context", "%q: want key=value or a bare key", w)
		}
		if _, dup := job.Decrypt.RequireContext[k]; dup {
			continue
		}
		if hasValue {
			job.Decrypt.RequireContext[k] = &v
		} else {
			job.Decrypt.RequireContext[k] = nil
		}
	}
	return nil
}

// setLimits reads the numeric crypto parameters. A value is checked
// whenever the flag is given (f.set), on every operation, so no value a
// user can type means "not given"; a flag the operation does not use is
// then ignored with a note, as aws-encryption-cli ignores it.
func setLimits(run *cryptoRun, f *cryptoFlags, op string) error {
	job := run.Job
	job.CommitmentPolicy = f.commitmentPolicy
	job.KMS.Timeout.Duration, job.S3.Timeout.Duration = f.kmsTimeout, f.s3Timeout
	job.S3.NoConditionalWrites = f.s3NoConditionalWrites
	if f.set["max-encrypted-data-keys"] {
		// The ESDKs' range (aws-encryption-cli accepts 65536 and more:
		// a message cannot hold more than 65535, so such a limit is none).
		if f.maxEDKs < 1 {
			return usageErrorf("--max-encrypted-data-keys", "%d: must be 1 or more", f.maxEDKs)
		}
		job.MaxEncryptedDataKeys = f.maxEDKs
	}
	if f.set["frame-length"] && f.frameLength < 0 {
		return usageErrorf("--frame-length", "%d: must be 0 (non-framed) or more", f.frameLength)
	}
	if f.set["max-length"] && f.maxLength < 1 {
		return usageErrorf("--max-length", "%d: must be 1 or more", f.maxLength)
	}
	if f.concurrency < 0 {
		return usageErrorf("--concurrency", "must be 1 or more")
	}
	job.Execution.Concurrency = f.concurrency
	if op == "decrypt" {
		job.Decrypt.UnsignedOnly = f.decryptUnsigned
		for _, n := range []string{"algorithm", "frame-length"} {
			if f.set[n] {
				run.Notes = append(run.Notes, "--"+n+" is ignored on decrypt (encryption only)")
			}
		}
	} else {
		job.Encrypt.Algorithm = f.algorithm
		if f.set["frame-length"] {
			fl := f.frameLength
			job.Encrypt.FrameLength = &fl
		}
	}
	switch {
	case !f.set["max-length"]:
	case op == "encrypt":
		run.Notes = append(run.Notes, "--max-length is ignored on encrypt (decryption only)")
	default:
		job.Decrypt.MaxBodyLength = spec.ByteSize(f.maxLength)
	}
	return nil
}

// setCaching reads --caching. On decrypt too, as aws-encryption-cli:
// messages made under one cached data key share their EDKs, so the
// decryption materials are cached (bounded by capacity and max_age; the
// max_*_encrypted limits apply to encryption only, as in the ESDKs'
// caching CMM).
func setCaching(run *cryptoRun, f *cryptoFlags, _ string) error {
	switch len(f.caching) {
	case 0:
		return nil
	case 1:
		var err error
		run.Job.Caching, err = parseCaching(splitGroup(f.caching[0]))
		return err
	}
	return usageErrorf("--caching", "may not be specified more than once")
}

// setOutputMode reads how outputs are written: encodings, verification,
// rewrap, and what happens to existing outputs.
func setOutputMode(run *cryptoRun, f *cryptoFlags, _ string) error {
	job := run.Job
	if f.encode {
		job.Output.Encoding = "base64" // on decrypt too: the plaintext, as aws-encryption-cli does
	}
	if f.decode {
		for i := range job.Sources {
			job.Sources[i].Encoding = "base64"
		}
	}
	job.Output.Verify = f.verify
	if f.rewrap {
		job.Reencrypt.Mode = spec.ReencryptRewrap
	}
	if f.rewrapNonceReuse {
		job.Reencrypt.AllowHeaderNonceReuse = true
	}
	job.Reencrypt.Require = f.require // spec validation names it (spec.reencrypt.require)
	job.Reencrypt.HeaderInPlace = f.headerInPlace
	switch {
	case f.interactive && f.noOverwrite:
		return usageErrorf("--interactive", "not allowed with --no-overwrite")
	case f.noOverwrite:
		job.Output.Overwrite = spec.OverwriteNever
	default:
		// aws-encryption-cli replaces existing outputs unless told not
		// to; with --interactive each existing output is asked about
		// after planning.
		job.Output.Overwrite = spec.OverwriteAlways
	}
	if run.MetadataOutput == "-" && job.Output.Stdout && run.StreamOutput == "" {
		return usageErrorf("--metadata-output", "metadata output cannot be stdout when output is stdout")
	}
	return nil
}

func groups(vals []string) [][]string {
	var out [][]string
	for _, v := range vals {
		out = append(out, splitGroup(v))
	}
	return out
}

// parseCaching reads aws-encryption-cli's --caching pairs.
func parseCaching(words []string) (*spec.Caching, error) {
	const flag = "--caching"
	m, _, err := parsePairs(flag, words)
	if err != nil {
		return nil, err
	}
	if m["capacity"] == nil || m["max_age"] == nil {
		return nil, usageErrorf(flag, `if enabling caching, both "capacity" and "max_age" are required`)
	}
	c := &spec.Caching{}
	for k, vs := range m {
		v := vs[0]
		switch k {
		case "capacity":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, usageErrorf(flag, "capacity=%q: want a positive integer", v)
			}
			c.Capacity = n
		case "max_age":
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil || secs <= 0 {
				return nil, usageErrorf(flag, "max_age=%q: want a positive number of seconds", v)
			}
			c.MaxAge = spec.Duration{Duration: time.Duration(secs * float64(time.Second))}
		case "max_messages_encrypted":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return nil, usageErrorf(flag, "max_messages_encrypted=%q: want a positive integer", v)
			}
			c.MaxMessagesEncrypted = n
		case "max_bytes_encrypted":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return nil, usageErrorf(flag, "max_bytes_encrypted=%q: want a positive integer", v)
			}
			c.MaxBytesEncrypted = spec.ByteSize(n)
		default:
			return nil, usageErrorf(flag, "invalid caching configuration key %q (known: capacity, max_age, max_messages_encrypted, max_bytes_encrypted)", k)
		}
	}
	return c, nil
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// buildIO fills the job's sources and output from -i / -o with
// aws-encryption-cli's rules: a glob is expanded here; a directory needs
// -r; several inputs or a directory need an existing output directory; a
// file output needs an existing parent directory; an output that resolves
// to the input is refused (reencrypt: -o equal to -i is in place).
func buildIO(run *cryptoRun, f *cryptoFlags, op string, fsys fileSystem) error {
	job := run.Job
	in, out := f.input, f.output
	switch {
	case in == "":
		return usageErrorf("-i/--input", "required")
	case out == "":
		return usageErrorf("-o/--output", "required")
	}
	multi, err := buildSources(run, in, f.recursive || f.recursiveR, fsys)
	if err != nil {
		return err
	}
	s3Out := strings.HasPrefix(out, "s3://")
	switch {
	case in == "-":
		if out != "-" && !s3Out && isDir(fsys, out) {
			return usageErrorf("-o/--output", "%s: may not be a directory when the input is stdin", out)
		}
	case out == in && op == "reencrypt":
		job.Output.InPlace = true
		return nil
	case out == in || sameLocalPath(fsys, in, out):
		what := "file"
		if isDir(fsys, in) {
			what = "directory"
		}
		err := usageErrorf("-o/--output", "destination and source cannot be the same: %s and %s are the same %s", out, in, what)
		if op == "reencrypt" {
			err = err.withHint("reencrypt replaces files in place only with -o spelled exactly as -i")
		}
		return err
	}
	if out == "-" {
		if multi {
			return usageErrorf("-o/--output", "stdout can take one input only")
		}
		job.Output.Stdout = true
		return nil
	}
	if !s3Out && !multi {
		if fi, err := fsys.Stat(out); err == nil && !fi.IsDir() && (isStreamTarget(fi.Mode()) || viaSpecialFS(out)) {
			// -o /dev/null, /dev/stdout, a named pipe: aws-encryption-cli
			// writes into it. An output committed by rename would replace
			// the device or pipe itself, so it is written like stdout:
			// staged, and copied into it once the item succeeded.
			job.Output.Stdout = true
			run.StreamOutput = out
			return nil
		}
		if real, ok := symlinkTarget(fsys, out); ok {
			// An existing symlink is written through, as
			// aws-encryption-cli does: the file it names is replaced,
			// never the link (or, for /dev/stdout, the system's).
			out = real
		}
	}
	if !s3Out {
		switch {
		case multi && !isDir(fsys, out):
			return usageErrorf("-o/--output", "%s: with several inputs or a directory, the output must be an existing directory", out)
		case !isDir(fsys, out) && !isDir(fsys, filepath.Dir(out)):
			return usageErrorf("-o/--output", "%s: if the output is a file, its directory must already exist", out)
		}
	}
	job.Output.Path = out
	switch op {
	case "encrypt":
		job.Output.Suffix = ".encrypted"
	case "decrypt":
		job.Output.Suffix = ".decrypted"
		job.Output.StripSuffix = f.stripSuffix
	case "reencrypt":
		job.Output.StripSuffix = f.stripSuffix
	}
	if f.set["suffix"] {
		job.Output.Suffix = f.suffix
	}
	return nil
}

// symlinkTarget returns the file an existing output p names when p itself
// (its last component) is a symlink to something other than a directory.
func symlinkTarget(fsys fileSystem, p string) (string, bool) {
	if isDir(fsys, p) {
		return "", false
	}
	real, err := fsys.RealPath(p)
	if err != nil {
		return "", false
	}
	dir, err := fsys.RealPath(filepath.Dir(p))
	if err != nil || filepath.Join(dir, filepath.Base(p)) == real {
		return "", false
	}
	return real, true
}

// viaSpecialFS reports whether p, or a symlink on the way from p to what
// it names, lies in /dev or /proc: /dev/stdout -> /proc/self/fd/1 names
// the caller's stream even when that is a regular file (a shell's "> out"),
// and a file there must be written into, never replaced by rename (which
// would cut the shell's output off from the name).
func viaSpecialFS(p string) bool { return sources.ThroughSpecialFS(p) }

// isStreamTarget: an existing output that is written into rather than
// replaced (a character device, a named pipe, a socket).
func isStreamTarget(m fs.FileMode) bool {
	return m&(fs.ModeCharDevice|fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0
}

func isDir(fsys fileSystem, p string) bool {
	fi, err := fsys.Stat(p)
	return err == nil && fi.IsDir()
}

// sameLocalPath: two local paths that resolve to one (aws-encryption-cli
// compares os.path.realpath). A file reached through another name (a hard
// link) is not caught here: its item is skipped by the planner, which
// compares device and inode.
func sameLocalPath(fsys fileSystem, a, b string) bool {
	if a == "-" || b == "-" || strings.HasPrefix(a, "s3://") || strings.HasPrefix(b, "s3://") {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := fsys.RealPath(a)
	rb, err2 := fsys.RealPath(b)
	return err1 == nil && err2 == nil && ra == rb
}

// buildSources fills job.Sources from -i and reports whether it names
// several items (a directory, a prefix, a glob matching several).
func buildSources(run *cryptoRun, in string, recursive bool, fsys fileSystem) (multi bool, err error) {
	job := run.Job
	switch {
	case in == "-":
		job.Sources = []spec.Source{{Path: "-"}}
		return false, nil
	case strings.HasPrefix(in, "s3://"):
		if strings.HasSuffix(in, "/") && !recursive {
			return false, usageErrorf("-i/--input", "%s is a prefix; add -r to process every object under it", in).withHint("add -r")
		}
		job.Sources = []spec.Source{{Path: in}}
		return recursive || strings.HasSuffix(in, "/") || hasGlob(in), nil
	}
	paths := []string{in}
	if hasGlob(in) {
		m, err := fsys.Glob(in)
		if err != nil || len(m) == 0 {
			return false, usageErrorf("-i/--input", "%s: no such file, directory or matching path", in)
		}
		paths = m
		multi = len(m) > 1
	} else if _, err := fsys.Stat(in); err != nil {
		return false, usageErrorf("-i/--input", "%v", err)
	}
	for _, p := range paths {
		if isDir(fsys, p) {
			if !recursive {
				if len(paths) == 1 {
					return false, usageErrorf("-i/--input", "%s is a directory", p).withHint("add -r to process every file under it")
				}
				run.Notes = append(run.Notes, fmt.Sprintf("skipping %s: it is a directory and -r is not set", p))
				continue
			}
			multi = true
		}
		job.Sources = append(job.Sources, spec.Source{Path: p})
	}
	if len(job.Sources) == 0 {
		return false, usageErrorf("-i/--input", "%s: only directories matched and -r is not set", in).withHint("add -r")
	}
	return multi, nil
}

// checkMetadataPath applies aws-encryption-cli's metadata-file rules.
func checkMetadataPath(meta, in, out string, fsys fileSystem) error {
	if meta == "" || meta == "-" {
		return nil
	}
	// Compared with every symlink of the existing part resolved, so a
	// symlinked directory or "dir/.." spelling of the input tree counts;
	// the planner refuses a log that is the very file of an input, the
	// output or a key by identity (hard links too).
	abs := func(p string) string {
		if r, err := fsys.RealPath(p); err == nil {
			return r
		}
		a, _ := filepath.Abs(p)
		if r, err := fsys.RealPath(filepath.Dir(a)); err == nil {
			return filepath.Join(r, filepath.Base(a))
		}
		return a
	}
	m := abs(meta)
	if fi, err := fsys.Stat(meta); err == nil && fi.IsDir() {
		return usageErrorf("--metadata-output", "%s is a directory", meta)
	}
	for _, p := range []string{in, out} {
		if p == "-" || strings.HasPrefix(p, "s3://") {
			continue
		}
		a := abs(p)
		if a == m {
			return usageErrorf("--metadata-output", "the metadata file cannot be the input or the output")
		}
		if fi, err := fsys.Stat(p); err == nil && fi.IsDir() && strings.HasPrefix(m, a+string(filepath.Separator)) {
			return usageErrorf("--metadata-output", "the metadata file cannot be inside the input or output directory")
		}
	}
	return nil
}

// parseRequiredContext maps the required-encryption-context flags onto
// the job: --required-context-keys (encrypt.requiredContextKeys),
// --reproduced-encryption-context (decrypt.reproducedContext; a key given
// twice with different values is an error, not a first-wins choice: the
// value is checked cryptographically), --store-required-context.
func parseRequiredContext(f *cryptoFlags, job *spec.Job) error {
	for _, g := range f.requiredKeys {
		for _, k := range splitGroup(g) {
			for _, k := range strings.Split(k, ",") {
				if k == "" {
					return usageErrorf("--required-context-keys", "empty key in %q", g)
				}
				job.Encrypt.RequiredContextKeys = append(job.Encrypt.RequiredContextKeys, k)
			}
		}
	}
	var words []string
	for _, g := range f.reproduced {
		words = append(words, splitGroup(g)...)
	}
	if len(words) > 0 {
		m, _, err := parsePairs("--reproduced-encryption-context", words)
		if err != nil {
			return err
		}
		job.Decrypt.ReproducedContext = map[string]string{}
		for k, vs := range m {
			for _, v := range vs[1:] {
				if v != vs[0] {
					return usageErrorf("--reproduced-encryption-context", "key %q given with two values (%q, %q)", k, vs[0], v)
				}
			}
			job.Decrypt.ReproducedContext[k] = vs[0]
		}
	}
	job.Reencrypt.StoreRequiredContext = f.storeRequired
	return nil
}

// flagNames maps spec field paths back to the flags that set them.
var flagNames = []struct{ prefix, flag string }{
	{"spec.keyGroups.source", "--source-wrapping-keys"},
	{"spec.keyGroups", "-w/--wrapping-keys"},
	{"spec.encrypt.algorithm", "--algorithm"},
	{"spec.encrypt.frameLength", "--frame-length"},
	{"spec.encrypt.context", "-c/--encryption-context"},
	{"spec.encrypt.keyGroup", "-w/--wrapping-keys"},
	{"spec.decrypt.keyGroup", "-w/--wrapping-keys"},
	{"spec.decrypt.requireContext", "-c/--encryption-context"},
	{"spec.decrypt.reproducedContext", "--reproduced-encryption-context"},
	{"spec.encrypt.requiredContextKeys", "--required-context-keys"},
	{"spec.reencrypt.storeRequiredContext", "--store-required-context"},
	{"spec.reencrypt.add", "-c/--encryption-context"},
	{"spec.reencrypt.remove", "--remove-context"},
	{"spec.reencrypt.mode", "--rewrap"},
	{"spec.reencrypt.allowHeaderNonceReuse", "--rewrap-allow-header-nonce-reuse"},
	{"spec.reencrypt.require", "--require"},
	{"spec.reencrypt.headerInPlace", "--rewrap-header-in-place"},
	{"spec.commitmentPolicy", "--commitment-policy"},
	{"spec.caching", "--caching"},
	{"spec.sources", "-i/--input"},
	{"spec.output.suffix", "--suffix"},
	{"spec.output", "-o/--output"},
	{"spec.maxEncryptedDataKeys", "--max-encrypted-data-keys"},
	{"spec.execution", "--concurrency"},
	{"spec.kms.timeout", "--kms-timeout"},
	{"spec.s3.timeout", "--s3-timeout"},
}

func flagErrors(errs spec.ErrorList) error {
	e := errs[0]
	flag := ""
	for _, fn := range flagNames {
		if strings.HasPrefix(e.Field, fn.prefix) {
			flag = fn.flag
			break
		}
	}
	msg := e.Type.String()
	if e.BadValue != nil {
		msg += fmt.Sprintf(" %v", e.BadValue)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	u := &usageError{Flag: flag, Msg: msg}
	if flag == "" {
		u.Msg = e.Error()
	}
	if len(errs) > 1 {
		var more []string
		for _, x := range errs[1:] {
			more = append(more, x.Error())
		}
		u.Hint = "also: " + strings.Join(slices.Compact(more), "; ")
	}
	return u
}
