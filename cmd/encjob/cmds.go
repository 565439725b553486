package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// buildVersion returns the module version and the VCS revision (with
// "-dirty" when the tree had local changes) from the -ldflags values or,
// failing those, from the build info the go command embeds.
func buildVersion() (ver, rev string) {
	ver, rev = version, revision
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, rev
	}
	if ver == "dev" && bi.Main.Version != "" {
		ver = bi.Main.Version // "(devel)" for a build from a work tree
	}
	if rev == "" {
		var r, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				r = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if r != "" {
			rev = r + dirty
		}
	}
	return ver, rev
}

func versionString() string {
	ver, rev := buildVersion()
	if rev == "" {
		rev = "unknown revision"
	}
	return fmt.Sprintf("encjob %s (%s, %s %s/%s)", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// parseVersionArgs parses encjob version's flags: whether --json.
func parseVersionArgs(e *env, args []string) (asJSON bool, err error) {
	fs := newFlagSet("version", e)
	fs.BoolVar(&asJSON, "json", false, "print version, revision, Go version and platform as JSON")
	if err := parseFlags(fs, args); err != nil {
		return false, err
	}
	if fs.NArg() > 0 {
		return false, usageErrorf(fs.Arg(0), "unexpected argument")
	}
	return asJSON, nil
}

// cmdVersion: encjob version [--json]
func cmdVersion(e *env, args []string) error {
	asJSON, err := parseVersionArgs(e, args)
	if err != nil {
		return err
	}
	if !asJSON {
		fmt.Fprintln(e.stdout, versionString())
		return nil
	}
	ver, rev := buildVersion()
	b, err := json.Marshal(map[string]string{"version": ver, "revision": rev, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

func newFlagSet(name string, e *env) *pflag.FlagSet {
	fs := pflag.NewFlagSet("encjob "+name, pflag.ContinueOnError)
	fs.SetOutput(e.stdout)
	fs.SortFlags = false
	fs.Usage = func() {} // help is printed by commandHelp, from the command table
	if e.onFlagSet != nil {
		e.onFlagSet(fs)
	}
	return fs
}

// parseFlags parses a command's flags (see parseFlagSet).
func parseFlags(fs *pflag.FlagSet, args []string) error {
	return parseFlagSet(fs, args)
}

// parseValidateArgs parses encjob validate's arguments: the spec files
// (-f, repeatable, and positional).
func parseValidateArgs(e *env, args []string) ([]string, error) {
	fs := newFlagSet("validate", e)
	files := fs.StringArrayP("file", "f", nil, "spec file (repeatable; files may also be given as arguments)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	all := append(*files, fs.Args()...)
	if len(all) == 0 {
		return nil, usageErrorf("-f", "no spec file given")
	}
	return all, nil
}

// cmdValidate loads every file and prints every problem at once.
func cmdValidate(e *env, args []string) error {
	all, err := parseValidateArgs(e, args)
	if err != nil {
		return err
	}
	bad := 0
	for _, f := range all {
		docs, err := loadSpec(e, f)
		if err != nil {
			bad++
			var list spec.ErrorList
			if errors.As(err, &list) {
				for _, x := range list {
					hprintf(e.stderr, "%s\n", x.Error())
				}
			} else {
				hprintf(e.stderr, "%s: %v\n", f, err)
			}
			continue
		}
		var names []string
		for _, d := range docs {
			names = append(names, d.Kind+"/"+d.Metadata.Name)
		}
		hprintf(e.stdout, "%s: ok (%s)\n", f, strings.Join(names, ", "))
	}
	if bad > 0 {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("%d of %d files have errors", bad, len(all))}
	}
	return nil
}

// loadJob reads the one job a command works on: the file's only
// EncryptionJob, or the one named by --name.
func loadJob(e *env, file, name string) (*spec.Job, string, string, error) {
	docs, err := loadSpec(e, file)
	if err != nil {
		return nil, "", "", &exitError{Code: exitUsage, Err: err}
	}
	var jobs []spec.Document
	for _, d := range docs {
		if d.Job != nil && (name == "" || d.Metadata.Name == name) {
			jobs = append(jobs, d)
		}
	}
	switch {
	case len(jobs) == 0 && name != "":
		return nil, "", "", usageErrorf("--name", "%s has no EncryptionJob named %q", file, name)
	case len(jobs) == 0:
		return nil, "", "", usageErrorf("-f", "%s has no EncryptionJob document", file).withHint("a job file holds kind: EncryptionJob; an EncryptionPolicy file is planned and applied whole (without --name)")
	case len(jobs) > 1:
		var names []string
		for _, d := range jobs {
			names = append(names, d.Metadata.Name)
		}
		return nil, "", "", usageErrorf("-f", "%s has %d jobs (%s)", file, len(jobs), strings.Join(names, ", ")).withHint("pick one with --name")
	}
	if file == "-" {
		for i, src := range jobs[0].Job.Sources {
			if src.Path == "-" {
				return nil, "", "", usageErrorf("-f", "the spec is read from standard input, so spec.sources[%d] cannot be - too", i)
			}
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, "", "", err
	}
	return jobs[0].Job, jobs[0].Metadata.Name, filepath.Dir(abs), nil
}

type jobFlags struct {
	file, name, shard string
	shards            int
	verbose           int
	quiet, noProgress bool
	metadataOutput    string
	overwriteMetadata bool
}

func (j *jobFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&j.file, "file", "f", "", "job spec file")
	fs.StringVar(&j.name, "name", "", "the job to use when the file holds several")
	fs.StringVar(&j.shard, "shard", "", "process only shard INDEX/COUNT of the items (0-based)")
	fs.IntVar(&j.shards, "shards", 0, "shard count; the index comes from JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX")
	fs.CountVarP(&j.verbose, "verbose", "v", "more output")
	fs.BoolVarP(&j.quiet, "quiet", "q", false, "only errors and the summary")
}

// planArgs is a parsed plan command line.
type planArgs struct {
	jobFlags
	asJSON, detailed bool
	out              string
}

// parsePlanArgs parses encjob plan's flags; -f is required.
func parsePlanArgs(e *env, args []string) (*planArgs, error) {
	a := &planArgs{}
	fs := newFlagSet("plan", e)
	a.register(fs)
	fs.BoolVar(&a.asJSON, "json", false, "print the plan as JSON")
	fs.StringVar(&a.out, "out", "", "save the plan to this file (apply it with 'encjob apply PLANFILE')")
	fs.BoolVar(&a.detailed, "detailed-exitcode", false, "exit 0 when nothing would change, 2 when something would, 1 on error")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	// Past the flags, a is returned with its error: --detailed-exitcode
	// turns every error but a flag error into exit 1.
	switch {
	case fs.NArg() > 0:
		return a, usageErrorf(fs.Arg(0), "unexpected argument").withHint("give the spec with -f")
	case a.file == "":
		return a, usageErrorf("-f", "required")
	}
	return a, nil
}

func cmdPlan(ctx context.Context, e *env, c *console, args []string) error {
	a, err := parsePlanArgs(e, args)
	switch {
	case err == nil && fileHasPolicy(e, a.file):
		err = planPolicy(ctx, e, c, &a.jobFlags, a.asJSON, a.out, a.detailed)
	case err == nil:
		err = planCommand(ctx, e, c, a)
	}
	if a != nil && a.detailed && err != nil {
		var x *exitError
		if errors.As(err, &x) && x.Code == exitUsage && x.Err == errSilent {
			return err // "changes": already the detailed code 2
		}
		if codeOf(err) != exitInterrupted {
			c.errorf(err)
			return &exitError{Code: exitFailed, Err: errSilent}
		}
	}
	return err
}

func planCommand(ctx context.Context, e *env, c *console, a *planArgs) error {
	j, asJSON, out, detailed := &a.jobFlags, a.asJSON, a.out, a.detailed
	c.quiet, c.verbosity = j.quiet, j.verbose
	job, name, base, err := loadJob(e, j.file, j.name)
	if err != nil {
		return err
	}
	sh, err := resolveShard(e, j.shard, j.shards, job)
	if err != nil {
		return err
	}
	rt, err := prepare(ctx, e, c, job, base, planner.Options{SpecFiles: []string{j.file}, PlanFile: out})
	if err != nil {
		return err
	}
	p, err := planner.Build(ctx, rt, planner.BuildOptions{Name: name, Owns: sh.Owns})
	if err != nil {
		return refusal(planningError(ctx, err, job))
	}
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		werr := p.Write(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("--out: writing %s: %w", out, werr)
		}
	}
	if asJSON {
		if err := p.Write(e.stdout); err != nil {
			return err
		}
	} else {
		// The items that change (all of them with -v), symbols coloured
		// on a terminal.
		writePlanItems(e.stdout, newPalette(e, e.stdoutFile), p, j.verbose > 0)
		hprintf(e.stdout, "Plan %s: %s\n", name, planCounts(p))
		if out != "" {
			hprintf(e.stdout, "Saved to %s; apply it with: encjob apply %s\n", out, out)
		}
	}
	if n := p.Counts()[planner.Error]; n > 0 {
		for i := range p.Items {
			if it := &p.Items[i]; it.Action == planner.Error && !j.quiet {
				c.printf("encjob: error: %s: %s\n", it.Input, it.Reason)
			}
		}
		return &exitError{Code: exitFailed, Err: fmt.Errorf("%d items cannot be processed", n)}
	}
	if detailed && p.HasChanges() {
		return &exitError{Code: exitUsage, Err: errSilent}
	}
	return nil
}

// applyArgs is a parsed apply command line.
type applyArgs struct {
	jobFlags
	planFile                  string // a saved plan, or ""
	items                     string
	autoApprove, asJSON       bool
	metadataSet, overwriteSet bool // --metadata-output / --overwrite-metadata given
}

// parseApplyArgs parses encjob apply's flags and its optional plan file.
func parseApplyArgs(e *env, args []string) (*applyArgs, error) {
	a := &applyArgs{}
	fs := newFlagSet("apply", e)
	a.register(fs)
	fs.StringVar(&a.metadataOutput, "metadata-output", "", "append one JSON metadata record per item to this file (- for stdout); overrides spec.metadata.output")
	fs.BoolVar(&a.overwriteMetadata, "overwrite-metadata", false, "truncate the metadata file instead of appending")
	fs.BoolVar(&a.noProgress, "no-progress", false, "no live progress line")
	fs.StringVar(&a.items, "items", "", "plan only this shard's part of the items 'encjob partition' wrote to this s3://bucket/prefix/ or directory")
	fs.BoolVar(&a.autoApprove, "auto-approve", false, "replace sources in place (inPlace jobs, policies) without asking; required when there is no terminal")
	fs.BoolVar(&a.asJSON, "json", false, "print a machine-readable summary (JSON) on stdout")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	a.metadataSet, a.overwriteSet = fs.Changed("metadata-output"), fs.Changed("overwrite-metadata")
	switch {
	case a.items != "" && fs.NArg() > 0:
		return nil, usageErrorf("--items", "not allowed with a saved plan file")
	case a.quiet && a.verbose > 0:
		return nil, usageErrorf("-q", "not allowed with -v")
	case fs.NArg() > 1:
		return nil, usageErrorf(fs.Arg(1), "unexpected argument").withHint("apply takes one plan file")
	case fs.NArg() == 0 && a.file == "":
		return nil, usageErrorf("-f", "give a spec with -f FILE or a saved plan file")
	}
	a.planFile = fs.Arg(0)
	return a, nil
}

func cmdApply(ctx context.Context, e *env, c *console, args []string) error {
	a, err := parseApplyArgs(e, args)
	if err != nil {
		return err
	}
	j := &a.jobFlags
	c.quiet, c.verbosity = j.quiet, j.verbose
	if j.file != "" && a.planFile == "" && fileHasPolicy(e, j.file) {
		return applyPolicy(ctx, e, c, j.file, j.metadataOutput, j.overwriteMetadata, a.autoApprove)
	}
	if a.planFile != "" && isSavedPolicyPlan(a.planFile) {
		return applySavedPolicy(ctx, e, c, a.planFile, j.file, j.metadataOutput, j.overwriteMetadata, a.autoApprove)
	}
	job, name, base, saved, err := applyJob(e, a)
	if err != nil {
		return err
	}
	sh, err := resolveShard(e, j.shard, j.shards, job)
	if err != nil {
		return err
	}
	if a.asJSON && (job.Output.Stdout || j.metadataOutput == "-" || !a.metadataSet && job.Metadata.Output == "-") {
		return usageErrorf("--json", "stdout already carries the output or the metadata log")
	}
	s := runSettings{name: name, baseDir: base, shard: sh, noProgress: j.noProgress, plan: saved, items: a.items, specFile: j.file, planFile: a.planFile, autoApprove: a.autoApprove, asJSON: a.asJSON,
		metadataOutput: resolveAgainst(base, job.Metadata.Output), metadataOverwrite: job.Metadata.Overwrite}
	if a.metadataSet {
		s.metadataOutput = j.metadataOutput
	}
	if a.overwriteSet {
		s.metadataOverwrite = j.overwriteMetadata
	}
	if s.metadataOutput == "-" && job.Output.Stdout {
		return usageErrorf("--metadata-output", "output already goes to stdout; write the metadata log to a file")
	}
	return execute(ctx, e, c, job, s)
}

// applyJob is the job apply runs: the saved plan's (checked against -f
// when both are given), or the spec's.
func applyJob(e *env, a *applyArgs) (job *spec.Job, name, base string, saved *planner.Plan, err error) {
	j := &a.jobFlags
	if a.planFile == "" {
		job, name, base, err = loadJob(e, j.file, j.name)
		return job, name, base, nil, err
	}
	if saved, err = readPlan(a.planFile); err != nil {
		return nil, "", "", nil, err
	}
	if j.file != "" {
		fileJob, _, fileBase, err := loadJob(e, j.file, j.name)
		if err != nil {
			return nil, "", "", nil, err
		}
		if fileJob.Digest() != saved.SpecDigest {
			return nil, "", "", nil, &exitError{Code: exitStale, Err: fmt.Errorf("plan %s was made from another version of %s (spec digest differs)", a.planFile, j.file),
				Hint: "run encjob plan again"}
		}
		if fileBase != saved.BaseDir {
			// Relative paths of the job resolve against base_dir: a plan
			// pointing it elsewhere would write where the spec does not.
			return nil, "", "", nil, &exitError{Code: exitStale, Err: fmt.Errorf("plan %s: base_dir %s is not the directory of %s (%s)", a.planFile, saved.BaseDir, j.file, fileBase),
				Hint: "run encjob plan again"}
		}
	}
	return saved.Job, saved.Name, saved.BaseDir, saved, nil
}

func readPlan(path string) (*planner.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf(path, "%v", err)
	}
	defer f.Close()
	p, err := planner.Read(f)
	if err != nil {
		return nil, &exitError{Code: exitStale, Err: fmt.Errorf("%s: %w", path, err), Hint: "run encjob plan --out again"}
	}
	return p, nil
}

// inspectArgs is a parsed inspect command line.
type inspectArgs struct {
	name      string // a file, - or s3://bucket/key
	decode    bool
	pathStyle bool
	region    string
}

// parseInspectArgs parses encjob inspect's flags and its one argument.
func parseInspectArgs(e *env, args []string) (*inspectArgs, error) {
	a := &inspectArgs{}
	fs := newFlagSet("inspect", e)
	fs.BoolVar(&a.decode, "decode", false, "the input is base64 text")
	fs.BoolVar(&a.pathStyle, "s3-path-style", false, "address S3 buckets in the path (S3-compatible servers); the endpoint comes from AWS_ENDPOINT_URL_S3")
	fs.StringVar(&a.region, "s3-region", "", "S3 region (default: from the environment)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		return nil, usageErrorf("FILE", "inspect takes one file, s3://bucket/key or - for stdin")
	}
	a.name = fs.Arg(0)
	if strings.HasPrefix(strings.ToLower(a.name), "s3://") {
		loc, err := sources.Parse(a.name)
		if err != nil || loc.Glob != "" || loc.Key == "" || strings.HasSuffix(loc.Key, "/") {
			return nil, usageErrorf(a.name, "want s3://bucket/key (one object)")
		}
	}
	return a, nil
}

// cmdInspect prints a message header as aws-encryption-cli's metadata
// shows it: a local file, - for stdin, or an S3 object.
func cmdInspect(ctx context.Context, e *env, args []string) error {
	a, err := parseInspectArgs(e, args)
	if err != nil {
		return err
	}
	name := a.name
	var r io.Reader
	switch {
	case name == "-":
		r = e.stdin
	case strings.HasPrefix(strings.ToLower(name), "s3://"):
		loc, _ := sources.Parse(name) // checked by parseInspectArgs
		cl, err := sources.NewS3Client(ctx, sources.S3Config{Region: a.region, UsePathStyle: a.pathStyle})
		if err != nil {
			return &exitError{Code: exitUsage, Err: err}
		}
		src, err := sources.NewS3Source(loc, sources.S3Options{Client: cl})
		if err != nil {
			return usageErrorf(name, "%v", err)
		}
		// The header is at the start: ranged reads, not the whole object.
		body, err := src.OpenHeader(ctx, path.Base(loc.Key))
		if err != nil {
			return interrupted(ctx, &exitError{Code: exitUsage, Err: fmt.Errorf("%s: %w", name, err)})
		}
		defer body.Close()
		r = body
	default:
		f, err := os.Open(name)
		if err != nil {
			return usageErrorf(name, "%v", err)
		}
		defer f.Close()
		r = f
	}
	enc := ""
	if a.decode {
		enc = "base64"
	}
	h, err := crypto.ParseHeader(bufio.NewReader(planner.InputReader(r, enc)))
	if err != nil {
		return fmt.Errorf("%s: not an ESDK message: %w", name, err)
	}
	// key_ids adds what the cli's header does not spell out, e.g. the
	// branch key id and version of hierarchical keyring EDKs.
	view := struct {
		report.CLIHeader
		KeyIDs []string `json:"key_ids"`
	}{CLIHeader: report.CLIHeaderOf(h), KeyIDs: []string{}}
	for _, edk := range h.EncryptedDataKeys {
		view.KeyIDs = append(view.KeyIDs, keygroup.EDKLabel(edk))
	}
	out, err := json.MarshalIndent(view, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", out)
	return err
}
