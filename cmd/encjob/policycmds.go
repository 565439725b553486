package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/internal/k8s"
	"github.com/encjob/encjob/internal/policy"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// loadPolicy reads the one EncryptionPolicy of a file.
func loadPolicy(e *env, file string) (*spec.Policy, string, error) {
	docs, err := loadSpec(e, file)
	if err != nil {
		return nil, "", &exitError{Code: exitUsage, Err: err}
	}
	for _, d := range docs {
		if d.Policy != nil {
			abs, err := filepath.Abs(file)
			if err != nil {
				return nil, "", err
			}
			return d.Policy, filepath.Dir(abs), nil
		}
	}
	return nil, "", usageErrorf("-f", "%s has no EncryptionPolicy document", file)
}

// fileHasPolicy reports whether a spec file holds a policy and no job.
func fileHasPolicy(e *env, file string) bool {
	docs, err := loadSpec(e, file)
	if err != nil {
		return false
	}
	pol := false
	for _, d := range docs {
		if d.Job != nil {
			return false
		}
		pol = pol || d.Policy != nil
	}
	return pol
}

// cmdPolicyCheck: encjob check -f POLICY [--json] [-v] [--resolve-aliases]
// audits every item against the policy from headers alone.
// checkArgs is a parsed check command line.
type checkArgs struct {
	file           string
	asJSON         bool
	verbose        bool
	resolveAliases bool
	history        []string
}

// parseCheckArgs parses encjob check [-f] POLICY [--json] [-v] [--resolve-aliases].
func parseCheckArgs(e *env, args []string) (*checkArgs, error) {
	fs := newFlagSet("check", e)
	a := &checkArgs{}
	fs.StringVarP(&a.file, "file", "f", "", "policy file (kind: EncryptionPolicy)")
	fs.BoolVar(&a.asJSON, "json", false, "print the report as JSON")
	verbose := fs.CountP("verbose", "v", "list compliant items too")
	fs.BoolVar(&a.resolveAliases, "resolve-aliases", false, "resolve KMS aliases with DescribeKey (otherwise groups must list key ARNs; no KMS call is made)")
	fs.StringArrayVar(&a.history, "history", nil, "metadata log (or directory of shard-*.jsonl logs) that says which action wrote each message, for rules with reencrypt.require (repeatable; the policy's metadata.output is always read)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	switch {
	case a.file == "" && fs.NArg() == 1:
		a.file = fs.Arg(0)
	case fs.NArg() > 0:
		return nil, usageErrorf(fs.Arg(0), "unexpected argument (give one policy file)")
	}
	if a.file == "" {
		return nil, usageErrorf("-f", "no policy file given")
	}
	a.verbose = *verbose > 0
	return a, nil
}

func cmdPolicyCheck(ctx context.Context, e *env, args []string) error {
	a, err := parseCheckArgs(e, args)
	if err != nil {
		return err
	}
	pol, base, err := loadPolicy(e, a.file)
	if err != nil {
		return err
	}
	hist, err := policyHistory(pol, base, a.history)
	if err != nil {
		return err
	}
	rep, err := policy.Check(ctx, pol, policy.Options{BaseDir: base, ResolveAliases: a.resolveAliases, History: hist})
	if err != nil {
		return interrupted(ctx, err)
	}
	if a.asJSON {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(humanWriter{e.stdout}, a.verbose)
	}
	if err != nil {
		return err
	}
	if rep.HasViolations() {
		return &exitError{Code: exitFailed, Err: fmt.Errorf("%d items violate the policy", len(rep.Failing()))}
	}
	return nil
}

// parseExplainArgs parses encjob explain -f POLICY PATH into the policy
// file and the path.
func parseExplainArgs(e *env, args []string) (file, path string, err error) {
	fs := newFlagSet("explain", e)
	fs.StringVarP(&file, "file", "f", "", "policy file (kind: EncryptionPolicy)")
	if err := parseFlags(fs, args); err != nil {
		return "", "", err
	}
	if file == "" || fs.NArg() != 1 {
		return "", "", usageErrorf("-f", "usage: encjob explain -f POLICY PATH")
	}
	return file, fs.Arg(0), nil
}

// cmdExplain: encjob explain -f POLICY PATH
func cmdExplain(e *env, args []string) error {
	file, path, err := parseExplainArgs(e, args)
	if err != nil {
		return err
	}
	pol, _, err := loadPolicy(e, file)
	if err != nil {
		return err
	}
	ex, err := policy.Explain(pol, path)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	return ex.WriteText(humanWriter{e.stdout})
}

// policyPlanOptions are the options a policy is planned and a saved
// policy plan prepared with: base directory, streams, encjob's own files.
func policyPlanOptions(e *env, base, file, planFile, metadataOutput string) planner.Options {
	return planner.Options{BaseDir: base, Stdin: e.stdin, Stdout: e.stdout, SpecFiles: []string{file}, PlanFile: planFile,
		MetadataLog: resolveAgainst(base, metadataOutput), OwnFilesListedOnly: true}
}

// reconcile plans a policy (policy.Plan).
func reconcile(ctx context.Context, e *env, file, planFile, metadataOutput string) (*policy.Reconciliation, error) {
	pol, base, err := loadPolicy(e, file)
	if err != nil {
		return nil, err
	}
	hist, err := policyHistory(pol, base, nil)
	if err != nil {
		return nil, err
	}
	rec, err := policy.Plan(ctx, pol, policy.PlanOptions{Options: policy.Options{BaseDir: base, History: hist},
		Planner: policyPlanOptions(e, base, file, planFile, metadataOutput), Name: filepath.Base(file)})
	if err != nil {
		return nil, refusal(interrupted(ctx, err))
	}
	return rec, nil
}

// policyHistory reads the metadata logs the policy's reencrypt.require
// rules are audited against (policy.History): the policy's own
// metadata.output, which apply appends to, when it exists, and the logs
// given (which must exist; a directory stands for its shard-*.jsonl
// logs). Nil when no rule requires anything: nothing is read.
func policyHistory(pol *spec.Policy, base string, extra []string) (*policy.History, error) {
	need := false
	for _, r := range pol.Rules {
		need = need || r.Reencrypt.Require != ""
	}
	if !need {
		return nil, nil
	}
	h := policy.NewHistory()
	var logs []string
	if m := pol.Metadata.Output; m != "" && m != "-" && !strings.HasPrefix(m, "s3://") {
		if p := resolveAgainst(base, m); fileExists(p) {
			logs = append(logs, p)
		}
	}
	for _, a := range extra {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, usageErrorf("--history", "%v", err)
		}
		if fi.IsDir() {
			m, _ := filepath.Glob(filepath.Join(a, "shard-*.jsonl"))
			logs = append(logs, m...)
			continue
		}
		logs = append(logs, a)
	}
	for _, p := range logs {
		f, err := os.Open(p)
		if err != nil {
			return nil, usageErrorf("--history", "%v", err)
		}
		err = h.Add(p, f)
		f.Close()
		if err != nil {
			return nil, usageErrorf("--history", "%v", err)
		}
	}
	return h, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// printReconciliation writes the counts line and the changing items (all
// items with -v).
func printReconciliation(e *env, c *console, label string, rec *policy.Reconciliation, listChanges bool) {
	counts := planner.Count(rec.Items())
	var parts []string
	for _, a := range planner.Actions {
		if n := counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d %s", a.Symbol(), n, a))
		}
	}
	hprintf(e.stdout, "policy %s: %s\n", label, strings.Join(parts, ", "))
	if c.verbosity > 0 || listChanges {
		for _, it := range rec.Items() {
			if it.Action.Changes() || c.verbosity > 0 {
				hprintf(e.stdout, "  %s %s (rule %d) %s\n", it.Action.Symbol(), it.Input, it.Rule, it.Reason)
			}
		}
	}
}

// planPolicy: encjob plan -f POLICY [--out F] [--json] [--detailed-exitcode],
// as for a job: --out saves the reconciliation (apply it with encjob
// apply F), --json prints it, items that cannot be made compliant exit 1,
// --detailed-exitcode exits 2 when applying would change something.
func planPolicy(ctx context.Context, e *env, c *console, j *jobFlags, asJSON bool, out string, detailed bool) error {
	c.quiet, c.verbosity = j.quiet, j.verbose
	rec, err := reconcile(ctx, e, j.file, out, "")
	if err != nil {
		return err
	}
	if out != "" {
		if err := writeFileWith(out, rec.Write); err != nil {
			return err
		}
	}
	if asJSON {
		if err := rec.Write(e.stdout); err != nil {
			return err
		}
	} else {
		printReconciliation(e, c, j.file, rec, true)
		if out != "" {
			hprintf(e.stdout, "Saved to %s; apply it with: encjob apply %s\n", out, out)
		}
	}
	if n := planner.Count(rec.Items())[planner.Error]; n > 0 {
		for _, it := range rec.Items() {
			if it.Action == planner.Error && !j.quiet {
				c.printf("encjob: error: %s: %s\n", it.Input, it.Reason)
			}
		}
		return &exitError{Code: exitFailed, Err: fmt.Errorf("%d items cannot be made compliant", n)}
	}
	if detailed && rec.HasChanges() {
		return &exitError{Code: exitUsage, Err: errSilent}
	}
	return nil
}

// writeFileWith creates path and writes it with write (--out).
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	werr := write(f)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("--out: writing %s: %w", path, werr)
	}
	return nil
}

// applyPolicy reconciles every item of a policy to its rule
// (encjob apply -f POLICY).
func applyPolicy(ctx context.Context, e *env, c *console, file string, metadataOutput string, overwrite, autoApprove bool) error {
	if metadataOutput == "" {
		// The policy's own log (its history: see policyHistory).
		if pol, _, err := loadPolicy(e, file); err == nil {
			metadataOutput, overwrite = pol.Metadata.Output, pol.Metadata.Overwrite
		}
	}
	rec, err := reconcile(ctx, e, file, "", metadataOutput)
	if err != nil {
		return err
	}
	printReconciliation(e, c, file, rec, false)
	return applyReconciliation(ctx, e, c, rec, file, resolveAgainst(rec.BaseDir, metadataOutput), overwrite, autoApprove)
}

// isSavedPolicyPlan reports whether a plan file holds a reconciliation.
func isSavedPolicyPlan(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && policy.IsSavedPlan(b)
}

// applySavedPolicy applies a reconciliation saved by encjob plan -f
// POLICY --out F (encjob apply F [-f POLICY]). The library refuses what
// apply must not do (policy.ReadPlan, Reconciliation.Verify): an edited
// plan, a stale one, one with errored items.
func applySavedPolicy(ctx context.Context, e *env, c *console, planFile, policyFile, metadataOutput string, overwrite, autoApprove bool) error {
	f, err := os.Open(planFile)
	if err != nil {
		return usageErrorf(planFile, "%v", err)
	}
	rec, err := policy.ReadPlan(f)
	f.Close()
	if err != nil {
		return &exitError{Code: exitStale, Err: fmt.Errorf("%s: %w", planFile, err), Hint: "run encjob plan --out again"}
	}
	if metadataOutput == "" {
		metadataOutput, overwrite = rec.Policy.Metadata.Output, rec.Policy.Metadata.Overwrite
	}
	if policyFile != "" {
		pol, base, err := loadPolicy(e, policyFile)
		if err != nil {
			return err
		}
		if pol.Digest() != rec.Policy.Digest() || base != rec.BaseDir {
			return &exitError{Code: exitStale, Err: fmt.Errorf("plan %s was made from another version of %s (policy digest or base directory differs)", planFile, policyFile),
				Hint: "run encjob plan again"}
		}
	}
	if err := rec.Prepare(ctx, policyPlanOptions(e, rec.BaseDir, policyFile, planFile, metadataOutput)); err != nil {
		return refusal(interrupted(ctx, err))
	}
	if err := rec.Verify(ctx); err != nil {
		return refusal(interrupted(ctx, fmt.Errorf("plan %s: %w", planFile, err)))
	}
	printReconciliation(e, c, planFile, rec, false)
	return applyReconciliation(ctx, e, c, rec, planFile, resolveAgainst(rec.BaseDir, metadataOutput), overwrite, autoApprove)
}

// applyReconciliation confirms the in-place changes and applies them.
func applyReconciliation(ctx context.Context, e *env, c *console, rec *policy.Reconciliation, label, metadataOutput string, overwrite, autoApprove bool) error {
	// Reconciling re-encrypts items in place: confirm first.
	var listing strings.Builder
	changes := 0
	for _, it := range rec.Items() {
		if it.Action.Changes() {
			changes++
			if changes <= maxPlanLines {
				hprintf(&listing, "  %s %s (rule %d) %s\n", it.Action.Symbol(), it.Input, it.Rule, it.Reason)
			}
		}
	}
	if changes > maxPlanLines {
		fmt.Fprintf(&listing, "  … and %d more\n", changes-maxPlanLines)
	}
	if err := confirm(e, c, autoApprove, "re-encrypt or encrypt items in place under "+sanitize(label), changes, listing.String()); err != nil {
		return err
	}
	meta, closeMeta, err := openMetadata(e, metadataOutput, overwrite)
	if err != nil {
		return err
	}
	sum, err := rec.Apply(ctx, executor.Options{Metadata: meta})
	if cerr := closeMeta(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return refusal(interrupted(ctx, err))
	}
	hprintf(e.stderr, "encjob: policy applied: %d items, %d failed, %s in, %s out\n", sum.Items, len(sum.Failed), fmtBytes(sum.BytesIn), fmtBytes(sum.BytesOut))
	for _, f := range sum.Failed {
		hprintf(e.stderr, "  x %s: %v\n", f.Item.Input, f.Err)
	}
	if !sum.OK() {
		return &exitError{Code: exitFailed, Err: fmt.Errorf("%d items failed", len(sum.Failed))}
	}
	return nil
}

// cmdReportMerge: encjob report [--json] LOG|DIR...
func cmdReportMerge(ctx context.Context, e *env, args []string) error {
	if reportHasS3(args) {
		return cmdReportS3(ctx, e, args)
	}
	files, asJSON, err := parseReportArgs(e, args)
	if err != nil {
		return err
	}
	sum, err := readUntilSignal(ctx, func() (*report.Summary, error) { return mergeReportFiles(files) })
	if err != nil {
		return err
	}
	return printReport(e, sum, asJSON)
}

// readUntilSignal runs read apart and returns its result, or an
// interruption as soon as ctx ends (a signal), even while read blocks
// where no context reaches: a named pipe without a writer blocks in
// open(2) (encjob report <(...), a fifo). The blocked goroutine is left
// to the exiting process.
func readUntilSignal(ctx context.Context, read func() (*report.Summary, error)) (*report.Summary, error) {
	type merged struct {
		sum *report.Summary
		err error
	}
	done := make(chan merged, 1)
	go func() {
		sum, err := read()
		done <- merged{sum, err}
	}()
	select {
	case m := <-done:
		return m.sum, m.err
	case <-ctx.Done():
		return nil, interrupted(ctx, ctx.Err())
	}
}

// mergeReportFiles opens and merges local metadata logs.
func mergeReportFiles(files []string) (*report.Summary, error) {
	var readers []io.Reader
	defer func() {
		for _, r := range readers {
			r.(*os.File).Close()
		}
	}()
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, &exitError{Code: exitUsage, Err: err}
		}
		readers = append(readers, f)
	}
	sum, err := report.Merge(readers...)
	if err != nil {
		return nil, &exitError{Code: exitUsage, Err: err}
	}
	return sum, nil
}

// parseReportArgs parses encjob report [--json] LOG|DIR...: the metadata
// logs to merge (a directory stands for its shard-*.jsonl logs).
func parseReportArgs(e *env, args []string) (files []string, asJSON bool, err error) {
	fs := newFlagSet("report", e)
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	if err := parseFlags(fs, args); err != nil {
		return nil, false, err
	}
	if fs.NArg() == 0 {
		return nil, false, usageErrorf("report", "give metadata logs or a directory of shard-*.jsonl logs")
	}
	for _, a := range fs.Args() {
		if fi, err := os.Stat(a); err == nil && fi.IsDir() {
			m, _ := filepath.Glob(filepath.Join(a, "shard-*.jsonl"))
			files = append(files, m...)
			continue
		}
		files = append(files, a)
	}
	return files, asJSON, nil
}

// printReport writes a merged report as text or JSON and fails with
// exitFailed if any item failed or was processed twice.
func printReport(e *env, sum *report.Summary, asJSON bool) error {
	var err error
	if asJSON {
		err = sum.WriteJSON(e.stdout)
	} else {
		err = sum.WriteText(humanWriter{e.stdout})
	}
	if err != nil {
		return err
	}
	if !sum.OK() {
		return &exitError{Code: exitFailed, Err: fmt.Errorf("%d failures, %d duplicates", sum.Failed(), len(sum.Duplicates))}
	}
	return nil
}

// cmdRender: encjob render k8s -f JOB --shards N --image IMAGE [flags]
// renderArgs is a parsed render k8s command line.
type renderArgs struct {
	file string
	opts k8s.Options // all but the spec, which cmdRender reads
}

// parseRenderArgs parses encjob render k8s -f FILE [flags].
func parseRenderArgs(e *env, args []string) (*renderArgs, error) {
	if len(args) == 0 || args[0] != "k8s" {
		return nil, usageErrorf("render", "usage: encjob render k8s -f FILE --shards N --image IMAGE")
	}
	fs := newFlagSet("render k8s", e)
	a := &renderArgs{}
	o := &a.opts
	fs.StringVarP(&a.file, "file", "f", "", "job spec file")
	fs.StringVar(&o.Name, "name", "", "Job name (default: the spec's metadata.name)")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace")
	fs.StringVar(&o.Image, "image", "", "container image whose entrypoint is encjob")
	fs.Int32Var(&o.Shards, "shards", 1, "number of shards (completions)")
	fs.Int32Var(&o.Parallelism, "parallelism", 0, "pods at once (default: shards)")
	fs.StringVar(&o.ServiceAccount, "service-account", "", "service account (IRSA / EKS Pod Identity)")
	fs.StringVar(&o.Requests.CPU, "requests-cpu", "1", "CPU request")
	fs.StringVar(&o.Requests.Memory, "requests-memory", "256Mi", "memory request")
	fs.StringVar(&o.Limits.CPU, "limits-cpu", "2", "CPU limit")
	fs.StringVar(&o.Limits.Memory, "limits-memory", "512Mi", "memory limit")
	fs.Int32Var(&o.BackoffLimitPerIndex, "backoff-limit-per-index", k8s.DefaultBackoffLimitPerIndex, "retries per failed index")
	fs.StringVar(&o.MetadataPrefix, "metadata-prefix", "", "shared results location: s3://bucket/prefix/ or an absolute path")
	fs.StringVar(&o.ItemsPrefix, "items", "", "where 'encjob partition' wrote the items: each shard reads its part (apply --items)")
	envs := fs.StringArray("env", nil, "extra environment K=V (repeatable)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf(fs.Arg(0), "unexpected argument")
	}
	if a.file == "" {
		return nil, usageErrorf("-f", "no job spec given")
	}
	o.Env = map[string]string{}
	for _, kv := range *envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usageErrorf("--env", "%q is not K=V", kv)
		}
		o.Env[k] = v
	}
	return a, nil
}

func cmdRender(e *env, args []string) error {
	a, err := parseRenderArgs(e, args)
	if err != nil {
		return err
	}
	o, file := a.opts, &a.file
	b, err := os.ReadFile(*file)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	// The spec is validated with the environment the pods will have:
	// --env values over this shell's.
	podEnv := func(k string) (string, bool) {
		if v, ok := o.Env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	docs, err := spec.Parse(*file, b, podEnv)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	if o.Name == "" && len(docs) > 0 {
		o.Name = docs[0].Metadata.Name
	}
	o.SpecYAML, o.SpecFileName = b, filepath.Base(*file)
	if err := k8s.Render(e.stdout, o); err != nil {
		var list spec.ErrorList
		if errors.As(err, &list) {
			return &exitError{Code: exitUsage, Err: err}
		}
		return err
	}
	return nil
}
