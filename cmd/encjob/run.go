package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/policy"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/internal/shard"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// env is the process around a command: streams, environment, signals.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// dataOut receives a stdout output (-o -) when it is not stdout: the
	// device or pipe an -o names (cryptoRun.StreamOutput). nil: stdout.
	dataOut    io.Writer
	stderrFile *os.File // for the TTY check; nil in tests
	stdoutFile *os.File // for colours on a terminal; nil in tests
	getenv     func(string) string
	// prompt asks a yes/no question (--interactive); nil when there is no
	// terminal.
	prompt func(question string) (bool, error)
	// confirm asks for "yes" before an apply replaces data; nil: on
	// /dev/tty when stderr is a terminal (tests set it).
	confirm func(question string) (bool, error)
	// onFlagSet, when set, sees every flag set a command creates
	// (flagSetOf: help, completion and docs list the flags from it).
	onFlagSet func(*pflag.FlagSet)
	// specStdin holds the spec read by "-f -", so a command that loads it
	// twice reads standard input once.
	specStdin []byte
	specRead  bool
}

// runSettings say how one job runs.
type runSettings struct {
	name              string
	baseDir           string
	shard             shard.Spec
	metadataOutput    string // "" none, "-" stdout, else a path
	metadataOverwrite bool
	noProgress        bool
	interactive       bool
	plan              *planner.Plan // a saved plan to apply (nil: plan now)
	autoApprove       bool          // --auto-approve: no confirmation of in-place replacement
	asJSON            bool          // apply --json: a machine-readable summary on stdout
	items             string        // apply --items PREFIX: plan this shard's part of a partition
	specFile          string        // the spec file (-f), never an item
	planFile          string        // the saved plan file, never an item
	stdoutName        string        // the device or pipe -o names, for metadata records ("": "<stdout>")
}

// prepare builds the runtime of a job and prints its key-group notes.
// own names encjob's own files (spec, plan, metadata log) the runtime
// keeps out of the items.
func prepare(ctx context.Context, e *env, c *console, job *spec.Job, baseDir string, own planner.Options) (*planner.Runtime, error) {
	out := e.stdout
	if e.dataOut != nil {
		out = e.dataOut
	}
	rt, err := planner.Prepare(ctx, job, planner.Options{BaseDir: baseDir, Stdin: e.stdin, Stdout: out,
		SpecFiles: own.SpecFiles, PlanFile: own.PlanFile, MetadataLog: own.MetadataLog})
	if err != nil {
		var list spec.ErrorList
		var pe *fs.PathError
		var se *planner.SetupError
		if errors.As(err, &list) || errors.As(err, &pe) || errors.As(err, &se) {
			return nil, &exitError{Code: exitUsage, Err: err}
		}
		return nil, err
	}
	for _, n := range rt.Notes {
		c.note("%s", n)
	}
	if err := renewRewrapped(rt, job, baseDir, own.MetadataLog); err != nil {
		return nil, err
	}
	return rt, nil
}

// renewRewrapped makes an in-place job with reencrypt.require full
// re-encrypt, in full, messages whose header already shows the target
// but whose last recorded write (in the job's metadata log, which the
// header cannot replace) was a rewrap: their data key is the old one.
func renewRewrapped(rt *planner.Runtime, job *spec.Job, baseDir, metadataLog string) error {
	if !job.Reencrypt.RequiresFull() || !job.Output.InPlace {
		return nil
	}
	log := metadataLog
	if log == "" {
		log = resolveAgainst(baseDir, job.Metadata.Output)
	}
	if log == "" || log == "-" || strings.HasPrefix(log, "s3://") || !fileExists(log) {
		return nil
	}
	f, err := os.Open(log)
	if err != nil {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("metadata log: %w", err)}
	}
	defer f.Close()
	h := policy.NewHistory()
	if err := h.Add(log, f); err != nil {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("metadata log: %w", err)}
	}
	rt.RenewDataKey = h.KeptDataKey
	return nil
}

// openMetadata opens the metadata log: appended by default, truncated with
// overwrite, "-" for stdout.
func openMetadata(e *env, path string, overwrite bool) (*executor.MetadataLog, func() error, error) {
	switch path {
	case "":
		return nil, func() error { return nil }, nil
	case "-":
		return executor.NewMetadataLog(e.stdout), func() error { return nil }, nil
	}
	if strings.HasPrefix(path, "s3://") {
		return nil, nil, usageErrorf("--metadata-output", "%s: writing the metadata log to S3 is not supported yet", path)
	}
	// A log under a directory that does not exist yet (e.g. out/run.jsonl
	// on a fresh clone) is not an error: the directory is made, as
	// outputs' directories are.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, &exitError{Code: exitUsage, Err: fmt.Errorf("metadata log: %w", err)}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, nil, &exitError{Code: exitUsage, Err: fmt.Errorf("metadata log: %w", err)}
	}
	return executor.NewMetadataLog(f), f.Close, nil
}

// interactiveConfirm asks, for every changing item whose output exists,
// whether to replace it; a "no" turns the item into a skip.
func interactiveConfirm(ctx context.Context, e *env, rt *planner.Runtime, p *planner.Plan) error {
	for i := range p.Items {
		it := &p.Items[i]
		if !it.Action.Changes() || it.OutRoot == "-" || rt.Job.Output.InPlace {
			continue
		}
		dst, err := rt.Destination(ctx, it)
		if err != nil {
			continue
		}
		if _, err := dst.Stat(ctx, it.OutKey); errors.Is(err, sources.ErrNotFound) || err != nil {
			continue
		}
		if e.prompt == nil {
			return usageErrorf("--interactive", "%s exists and there is no terminal to ask on", it.Output).
				withHint("use --no-overwrite to keep existing outputs without asking")
		}
		yes, err := e.prompt(fmt.Sprintf("Overwrite existing output file %q with new contents? [y/N]: ", it.Output))
		if err != nil {
			return fmt.Errorf("--interactive: %w", err)
		}
		if !yes {
			it.Action, it.Reason = planner.Skip, "existing output kept (interactive)"
		}
	}
	return nil
}

// ttyPrompt asks on /dev/tty, so stdin can still carry data.
func ttyPrompt(stderr io.Writer) func(string) (bool, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	r := bufio.NewReader(tty)
	return func(q string) (bool, error) {
		fmt.Fprint(tty, q)
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return false, err
		}
		return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y"), nil
	}
}

// execute plans (unless a saved plan is given) and applies a job, prints
// progress and the summary, and returns the error that sets the exit
// code.
func execute(ctx context.Context, e *env, c *console, job *spec.Job, s runSettings) error {
	if err := oneStream(e, runStreams(job, &s)); err != nil {
		return err
	}
	if err := preflight(ctx, e, job, s.baseDir); err != nil {
		return interrupted(ctx, err)
	}
	rt, err := prepare(ctx, e, c, job, s.baseDir, planner.Options{SpecFiles: []string{s.specFile}, PlanFile: s.planFile, MetadataLog: s.metadataOutput})
	if err != nil {
		return err
	}
	if err := checkS3Log(ctx, rt, s.metadataOutput); err != nil {
		return err
	}
	p, err := planToApply(ctx, e, c, rt, &s)
	if err != nil {
		return err
	}
	if s.interactive {
		if err := interactiveConfirm(ctx, e, rt, p); err != nil {
			return err
		}
	}
	if job.Output.InPlace && p.HasChanges() {
		// Asked before anything is written, key files included.
		if err := confirmApply(e, c, p, s.autoApprove, "replace the sources in place"); err != nil {
			return err
		}
	}
	if p.HasChanges() {
		// Key files the spec asks to generate are made here, by apply
		// and before any item, never by plan (which only says it will).
		notes, err := rt.GenerateKeys()
		if err != nil {
			return &exitError{Code: exitUsage, Err: err}
		}
		for _, n := range notes {
			c.note("%s", n)
		}
	}
	meta, closeMeta, err := openJobMetadata(ctx, e, rt, s.metadataOutput, s.metadataOverwrite)
	if err != nil {
		return err
	}
	var pr *progress
	opts := executor.Options{Metadata: meta, Fatal: fatalItemError(job), StdoutName: s.stdoutName}
	if s.shard.Sharded() {
		opts.Shard = s.shard.String()
	}
	if !s.noProgress && !c.quiet && isTerminal(e.stderrFile) {
		pr = newProgress(c, p)
		pr.run()
		opts.Progress, opts.BytesRead = pr.observe, pr.bytesRead
	}
	if c.verbosity > 0 {
		inner := opts.Progress
		opts.Progress = func(r executor.Result) {
			if inner != nil {
				inner(r)
			}
			if r.Item.Action.Changes() && r.Err == nil {
				c.printf("%s %s -> %s\n", r.Item.Action.Symbol(), r.Item.Input, r.Item.Output)
			}
		}
	}
	sum, applyErr := executor.Apply(ctx, rt, p, opts)
	if pr != nil {
		pr.finish()
	}
	if cerr := closeMeta(); cerr != nil && applyErr == nil {
		applyErr = fmt.Errorf("metadata log: %w", cerr)
	}
	if sum != nil {
		printSummary(c, p, sum, ctx.Err() != nil)
	}
	for _, r := range summaryFailed(sum) {
		var pe *executor.PanicError
		if errors.As(r.Err, &pe) {
			slog.Debug("item panicked", "input", r.Item.Input, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		}
	}
	result := runResult(ctx, job, p, sum, applyErr)
	if s.asJSON && sum != nil {
		if err := writeJSONSummary(e.stdout, s.name, p, sum, result, ctx.Err() != nil); err != nil && result == nil {
			result = err
		}
	}
	return result
}

// runStreams names what a run writes besides its outputs' files, each
// with the flag that chose it: the data on stdout or in the device or
// pipe -o names, the metadata log, the JSON summary.
func runStreams(job *spec.Job, s *runSettings) [][2]string {
	var d [][2]string
	if job.Output.Stdout {
		if s.stdoutName != "" {
			d = append(d, [2]string{"-o/--output", s.stdoutName})
		} else {
			d = append(d, [2]string{"-o/--output", "-"})
		}
	}
	if s.metadataOutput != "" {
		d = append(d, [2]string{"--metadata-output", s.metadataOutput})
	}
	if s.asJSON {
		d = append(d, [2]string{"--json", "-"})
	}
	return d
}

// planToApply plans the job now (resuming from the metadata log, or from
// a partition's items), or checks the saved plan s.plan and keeps this
// shard's items of it.
func planToApply(ctx context.Context, e *env, c *console, rt *planner.Runtime, s *runSettings) (*planner.Plan, error) {
	p := s.plan
	if p != nil {
		if err := checkSaved(ctx, rt, p); err != nil {
			return nil, err
		}
		if s.shard.Sharded() {
			kept := p.Items[:0]
			for _, it := range p.Items {
				if s.shard.Owns(it.Identity()) {
					kept = append(kept, it)
				}
			}
			p.Items = kept
		}
		return p, nil
	}
	// Resume: items an earlier run of this job recorded as done (and
	// that have not changed since) are not redone.
	completed, err := completedFrom(s.metadataOutput, s.metadataOverwrite, func(w string) { c.note("metadata log %s: %s", s.metadataOutput, w) })
	if err != nil {
		return nil, err
	}
	if s.items != "" {
		if p, err = planFromItems(ctx, e, rt, s, completed); err != nil {
			return nil, refusal(err)
		}
		return p, nil
	}
	if p, err = planner.Build(ctx, rt, planner.BuildOptions{Name: s.name, Owns: s.shard.Owns, Completed: completed}); err != nil {
		return nil, refusal(planningError(ctx, err, rt.Job))
	}
	return p, nil
}

// runResult turns an apply's outcome into the error that sets the exit
// code.
func runResult(ctx context.Context, job *spec.Job, p *planner.Plan, sum *executor.Summary, applyErr error) error {
	var fatal *executor.FatalError
	switch {
	case errors.As(applyErr, &fatal) && ctx.Err() == nil:
		return &exitError{Code: exitUsage, Err: fmt.Errorf("stopped: %w", fatal.Err),
			Hint: "every other item would fail the same way; fix the credentials or key and run again"}
	case applyErr != nil:
		return refusal(interrupted(ctx, applyErr))
	}
	return outcome(job, p, sum)
}

// jsonSummary is apply --json's output: one JSON object on stdout.
type jsonSummary struct {
	Name        string         `json:"name"`
	ExitCode    int            `json:"exit_code"`
	Error       string         `json:"error,omitempty"`
	Interrupted bool           `json:"interrupted"`
	Items       int            `json:"items"`
	Done        map[string]int `json:"done"` // completed items by action (unchanged, skip and conflict as planned)
	Failed      []jsonFailure  `json:"failed"`
	NotStarted  int            `json:"not_started"`
	BytesIn     int64          `json:"bytes_in"`
	BytesOut    int64          `json:"bytes_out"`
	ElapsedMS   int64          `json:"elapsed_ms"`
}

type jsonFailure struct {
	Input  string `json:"input"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error"`
}

func writeJSONSummary(w io.Writer, name string, p *planner.Plan, sum *executor.Summary, result error, interrupted bool) error {
	js := jsonSummary{Name: name, ExitCode: codeOf(result), Interrupted: interrupted, Items: sum.Items, Done: map[string]int{},
		Failed: []jsonFailure{}, NotStarted: sum.NotStarted, BytesIn: sum.BytesIn, BytesOut: sum.BytesOut, ElapsedMS: sum.Elapsed.Milliseconds()}
	if result != nil {
		js.Error = result.Error()
	}
	for _, a := range planner.Actions {
		if a != planner.Error {
			js.Done[string(a)] = sum.Done[a]
		}
	}
	for _, r := range sum.Failed {
		js.Failed = append(js.Failed, jsonFailure{Input: r.Item.Input, Output: r.Item.Output, Error: r.Err.Error()})
	}
	b, err := json.MarshalIndent(js, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// outcome turns a finished run into its exit status.
func outcome(job *spec.Job, p *planner.Plan, sum *executor.Summary) error {
	var why []string
	if n := len(sum.Failed); n > 0 {
		why = append(why, fmt.Sprintf("%d failed", n))
	}
	if n := sum.Done[planner.Conflict]; n > 0 {
		why = append(why, fmt.Sprintf("%d conflicts", n))
	}
	if n := sum.MetadataUnwritten; n > 0 {
		why = append(why, fmt.Sprintf("metadata log: %d records not written (those items' outcomes stand; done outputs are committed): %v", n, sum.MetadataErr))
	}
	if !job.Execution.ExpectSkips {
		n := 0
		for i := range p.Items {
			if contextSkip(&p.Items[i]) {
				n++
			}
		}
		if n > 0 {
			why = append(why, fmt.Sprintf("%d skipped for an encryption context mismatch", n))
		}
	}
	if len(why) == 0 {
		return nil
	}
	x := &exitError{Code: exitFailed, Err: errors.New(strings.Join(why, ", "))}
	for _, r := range summaryFailed(sum) {
		var pe *executor.PanicError
		if errors.As(r.Err, &pe) {
			// A bug, not the data: exit 4 so a retry (the Kubernetes
			// Job's) may succeed, never 2.
			x.Code, x.Hint = exitInternal, "an item hit an internal error (a bug); the stack is in the debug log (--log-level debug)"
			break
		}
	}
	if !job.Execution.ExpectSkips && strings.Contains(x.Err.Error(), "skipped") {
		x.Hint = "check the required encryption context; in a spec, execution.expectSkips: true makes such skips expected"
	}
	return x
}

// refusal gives the planner's refusals their exit codes: a job that
// would replace one of encjob's own files is a setup error (2), a plan
// whose items the job would not produce is refused (3).
func refusal(err error) error {
	var se *planner.SetupError
	var pe *planner.PlanError
	switch {
	case errors.As(err, &pe) && pe.Stale:
		return &exitError{Code: exitStale, Err: err, Hint: "run encjob plan again"}
	case errors.As(err, &pe):
		return &exitError{Code: exitStale, Err: err, Hint: "the plan file was edited, holds errors or does not belong to this job; run encjob plan again"}
	case errors.As(err, &se):
		return &exitError{Code: exitUsage, Err: err}
	}
	return err
}

// interrupted maps a cancelled run to exit code 130.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &exitError{Code: exitInterrupted, Err: errors.New("interrupted")}
	}
	return err
}

// checkSaved refuses a saved plan before anything is asked or written
// (a confirmation, generated key files): planner.VerifyPlan, which
// executor.Apply runs again for every caller, cheaply once verified.
func checkSaved(ctx context.Context, rt *planner.Runtime, p *planner.Plan) error {
	if err := planner.VerifyPlan(ctx, rt, p); err != nil {
		return refusal(interrupted(ctx, fmt.Errorf("plan %q: %w", p.Name, err)))
	}
	return nil
}

// resolveShard picks this process's shard: --shard i/n, else the index
// from JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX when the run is
// sharded (--shards N, spec.execution.shards, or ENCJOB_SHARDS).
func resolveShard(e *env, flagShard string, flagShards int, job *spec.Job) (shard.Spec, error) {
	if flagShard != "" {
		s, err := shard.Parse(flagShard)
		if err != nil {
			return shard.Spec{}, &usageError{Flag: "--shard", Msg: err.Error()}
		}
		return s, nil
	}
	count := flagShards
	if count == 0 && job != nil && job.Execution.Shards > 1 {
		count = job.Execution.Shards
	}
	if count <= 1 && e.getenv(shard.EnvCount) == "" {
		return shard.Spec{}, nil
	}
	if count == 1 {
		count = 0
	}
	s, ok, err := shard.FromEnv(e.getenv, count)
	if err != nil {
		return shard.Spec{}, &usageError{Flag: "--shards", Msg: err.Error()}
	}
	if !ok {
		return shard.Spec{}, nil
	}
	return s, nil
}

// resolveAgainst makes a path from a spec relative to its directory.
func resolveAgainst(base, p string) string {
	if p == "" || p == "-" || strings.HasPrefix(p, "s3://") || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}

// completedFrom reads the items an earlier run recorded as done in the
// metadata log this run appends to.
func completedFrom(path string, overwrite bool, warn func(string)) (map[string]sources.Fingerprint, error) {
	if path == "" || path == "-" || overwrite || strings.HasPrefix(path, "s3://") {
		return nil, nil
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &exitError{Code: exitUsage, Err: fmt.Errorf("metadata log: %w", err)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		// A device or FIFO (/dev/full, a pipe to a collector) holds no
		// earlier records; reading it would block or never end.
		return nil, nil
	}
	return report.ReadCompleted(f, warn)
}

func summaryFailed(sum *executor.Summary) []executor.Result {
	if sum == nil {
		return nil
	}
	return sum.Failed
}

// planningError classifies a planning failure: a source that does not
// exist or rejected credentials is a spec/setup error (exit 2, the same
// as -i naming a missing file on the command line); others exit 1.
func planningError(ctx context.Context, err error, job *spec.Job) error {
	if ctx.Err() != nil {
		return interrupted(ctx, err)
	}
	if se := (*planner.SourceError)(nil); errors.As(err, &se) && job != nil {
		// A spec's source is named where the spec file says it.
		field := fmt.Sprintf("spec.sources[%d].path", se.Index)
		if pos := job.Positions.Of(field); pos.IsValid() {
			err = fmt.Errorf("%s: %s: %w", pos, field, se.Err)
		} else {
			err = fmt.Errorf("planning: %w", err)
		}
	} else {
		err = fmt.Errorf("planning: %w", err)
	}
	if nm := (*sources.NoMatchError)(nil); errors.As(err, &nm) {
		return &exitError{Code: exitUsage, Err: err, Hint: "a glob source must match something; for a source that may be empty, make its path the directory and the pattern an include"}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &exitError{Code: exitUsage, Err: err, Hint: "a source does not exist; relative paths in a spec are relative to the spec file's directory"}
	}
	if code, ok := credentialErrorCode(err); ok {
		return &exitError{Code: exitUsage, Err: err, Hint: "the credentials were refused (" + code + "); refresh them and run again"}
	}
	return err
}
