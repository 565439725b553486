// Command encjob encrypts, decrypts and re-encrypts files and S3 objects
// in the AWS Encryption SDK message format, from declarative job specs
// (validate, plan, apply) or from aws-encryption-cli-compatible command
// lines (encrypt, decrypt, reencrypt). docs/cli.md is the reference.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

const usage = `encjob encrypts, decrypts and re-encrypts files and S3 objects (AWS Encryption SDK format).

Usage:
  encjob validate -f FILE...            check spec files; every error with file:line:col
  encjob plan -f FILE [flags]           show what apply would do (-v items, --json, --out PLANFILE)
  encjob apply (-f FILE | PLANFILE)     run a job or a saved plan; a policy file reconciles every item
  encjob check -f POLICY [--json]       audit every item against a policy (headers only, no KMS call)
  encjob explain -f POLICY PATH         which policy rule applies to PATH, and why
  encjob render k8s -f FILE --shards N --image IMAGE   a Kubernetes Indexed Job manifest
  encjob partition -f FILE --shards N --out PREFIX     list once, one part of the items per shard
  encjob inspect [--decode] FILE        print a message header as JSON (no keys needed)
  encjob report LOG|DIR|S3PREFIX...     merge (shard) metadata logs into one summary
  encjob encrypt   -i IN -o OUT -w KEYS (-S | --metadata-output FILE) [flags]
  encjob decrypt   -i IN -o OUT -w KEYS (-S | --metadata-output FILE) [flags]
  encjob reencrypt -i IN -o OUT --source-wrapping-keys KEYS -w KEYS [flags]
  encjob -e|-d ...                      aws-encryption-cli style: same as encrypt / decrypt
  encjob version

Arguments may be read from files: @FILE (one or more per line, # comments).
Run 'encjob COMMAND --help' for a command's flags; docs/cli.md is the reference.

Exit codes:
  0    success, or nothing to change
  1    one or more items failed or conflicted, or were skipped for an
       encryption context mismatch (unless spec.execution.expectSkips)
  2    usage or spec error
  3    saved plan refused: a source changed since planning, the spec
       digest differs, or the plan has errored items
  130  interrupted (SIGINT / SIGTERM)
  plan --detailed-exitcode: 0 no changes, 2 changes, 1 error
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nencjob: interrupted: stopping; in-flight items are discarded (signal again to exit at once)")
		cancel()
		<-sigs
		os.Exit(exitInterrupted)
	}()
	e := &env{stdin: newCancelReader(ctx, os.Stdin), stdout: os.Stdout, stderr: os.Stderr, stderrFile: os.Stderr, getenv: os.Getenv}
	code := run(ctx, e, os.Args[1:])
	cancel()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, e *env, args []string) int {
	c := &console{w: e.stderr}
	err := dispatch(ctx, e, c, args)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	code := codeOf(err)
	if err != nil {
		var x *exitError
		silent := errors.As(err, &x) && x.Err == errSilent
		if !silent {
			c.errorf(err)
		}
	}
	return code
}

// errSilent marks an exit code whose cause was already printed.
var errSilent = errors.New("")

func dispatch(ctx context.Context, e *env, c *console, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return &exitError{Code: exitUsage, Err: errSilent}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(e.stdout, versionString())
		return nil
	case "validate":
		return cmdValidate(e, rest)
	case "plan":
		return cmdPlan(ctx, e, c, rest)
	case "apply":
		return cmdApply(ctx, e, c, rest)
	case "check":
		return cmdPolicyCheck(ctx, e, rest)
	case "inspect":
		return cmdInspect(e, rest)
	case "explain":
		return cmdExplain(e, rest)
	case "render":
		return cmdRender(e, rest)
	case "partition":
		return cmdPartition(ctx, e, c, rest)
	case "report":
		return cmdReportMerge(ctx, e, rest)
	case "encrypt", "decrypt", "reencrypt":
		return cmdCrypto(ctx, e, c, cmd, rest)
	}
	if strings.HasPrefix(cmd, "-") || strings.HasPrefix(cmd, "@") {
		// aws-encryption-cli style: the mode is a flag (-e / -d).
		return cmdCrypto(ctx, e, c, "", args)
	}
	return usageErrorf(cmd, "unknown command").withHint("run 'encjob --help' for the commands")
}

// cmdCrypto runs encrypt / decrypt / reencrypt (mode "" = from -e/-d).
func cmdCrypto(ctx context.Context, e *env, c *console, mode string, args []string) error {
	args, err := expandArgfiles(args, readArgfile, os.LookupEnv)
	if err != nil {
		return err
	}
	for _, a := range args {
		if a == "-h" || a == "--help" {
			m := mode
			if m == "" {
				m = "decrypt"
			}
			var f cryptoFlags
			fs := newCryptoFlagSet(m, &f, e.stdout)
			fmt.Fprintf(e.stdout, "Usage: encjob %s -i IN -o OUT -w KEYS [flags]\n\nFlags:\n%s", m, fs.FlagUsages())
			return nil
		}
		if a == "--" {
			break
		}
	}
	r, err := parseCryptoArgs(mode, args, osFS{})
	if err != nil {
		return err
	}
	c.quiet, c.verbosity = r.Quiet, r.Verbosity
	for _, n := range r.Notes {
		c.note("%s", n)
	}
	s := runSettings{name: string(r.Job.Operation), metadataOutput: r.MetadataOutput, metadataOverwrite: r.MetadataOverwrite,
		noProgress: r.NoProgress, interactive: r.Interactive}
	if r.Interactive {
		e.prompt = ttyPrompt(e.stderr)
	}
	return execute(ctx, e, c, r.Job, s)
}
