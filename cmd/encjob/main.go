// Command encjob encrypts, decrypts and re-encrypts files and S3 objects
// in the AWS Encryption SDK message format, from declarative job specs
// (validate, plan, apply) or from aws-encryption-cli-compatible command
// lines (encrypt, decrypt, reencrypt). docs/cli.md is the reference.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// usageText is `encjob help`: the commands (from the command table) and
// the exit codes.
func usageText() string {
	var b strings.Builder
	b.WriteString("encjob encrypts, decrypts and re-encrypts files and S3 objects (AWS Encryption SDK format).\n\nUsage:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(&b, "  encjob %-*s  %s\n", width, c.name, c.short)
		}
	}
	b.WriteString(`  encjob -e|-d ...     aws-encryption-cli style: same as encrypt / decrypt

Arguments may be read from files: @FILE (one or more per line, # comments).
'-f -' reads a spec from standard input.
Run 'encjob help COMMAND' or 'encjob COMMAND --help' for a command's flags;
docs/cli.md is the reference.

Exit codes:
  0    success, or nothing to change
  1    one or more items failed or conflicted, or were skipped for an
       encryption context mismatch (unless spec.execution.expectSkips)
  2    usage, spec or setup error (credentials, keys, endpoints): nothing
       was done; permanent
  3    saved plan refused: a source changed since planning, the spec
       digest differs, or the plan has errored items
  4    internal error (a bug); retrying may succeed
  130  interrupted (SIGINT / SIGTERM)
  plan --detailed-exitcode: 0 no changes, 2 changes, 1 error
`)
	return b.String()
}

// version and revision are set at build time with
// -ldflags "-X main.version=… -X main.revision=…" (deploy/Dockerfile);
// otherwise they come from the module's build info.
var (
	version  = "dev"
	revision = ""
)

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
	e := &env{stdin: newCancelReader(ctx, os.Stdin), stdout: os.Stdout, stderr: os.Stderr, stdoutFile: os.Stdout, stderrFile: os.Stderr, getenv: os.Getenv}
	code := run(ctx, e, os.Args[1:])
	cancel()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, e *env, args []string) (code int) {
	c := &console{w: e.stderr}
	defer func() {
		// A bug must not look like a usage error (exit 2 is permanent for
		// the Kubernetes Job): report it as an internal error, exit 4.
		if v := recover(); v != nil {
			c.printf("encjob: internal error: %s (a bug; please report it with the stack below)\n", fmt.Sprint(v))
			c.mu.Lock()
			e.stderr.Write(debug.Stack()) // encjob's own frames: not sanitized, so it stays readable
			c.mu.Unlock()
			code = exitInternal
		}
	}()
	args, ls, err := extractGlobalFlags(e, args)
	if err == nil {
		err = setupLogging(c, ls)
	}
	if err == nil {
		err = dispatch(ctx, e, c, args)
	}
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	code = codeOf(err)
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
		fmt.Fprint(e.stderr, usageText())
		return &exitError{Code: exitUsage, Err: errSilent}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "--help":
		fmt.Fprint(e.stdout, usageText())
		return nil
	case "--version":
		return cmdVersion(e, nil)
	}
	if name == "-version" {
		return usageErrorf(name, "unknown flag (a long flag takes two dashes)").withHint("did you mean --version?")
	}
	if strings.HasPrefix(name, "-") || strings.HasPrefix(name, "@") {
		// aws-encryption-cli style: the mode is a flag (-e / -d).
		return cmdCrypto(ctx, e, c, "", args)
	}
	cmd := lookupCommand(name)
	if cmd == nil {
		return unknownCommand(name)
	}
	if name != "help" && helpRequested(rest) {
		commandHelp(e.stdout, cmd)
		return nil
	}
	return cmd.run(ctx, e, c, rest)
}

// cmdCrypto runs encrypt / decrypt / reencrypt (mode "" = from -e/-d).
func cmdCrypto(ctx context.Context, e *env, c *console, mode string, args []string) error {
	args, err := expandArgfiles(args, readArgfile, os.LookupEnv)
	if err != nil {
		return err
	}
	if helpRequested(args) {
		m := mode
		if m == "" {
			m = helpMode(args)
		}
		if m == "" {
			fmt.Fprint(e.stdout, usageText())
			return nil
		}
		commandHelp(e.stdout, lookupCommand(m))
		return nil
	}
	r, err := parseCryptoArgs(mode, args, osFS{})
	if err != nil {
		return err
	}
	c.quiet, c.verbosity = r.Quiet, r.Verbosity
	if r.StreamOutput != "" {
		// O_APPEND: a regular file behind /dev/stdout is the shell's
		// redirect, and continues where the shell's output stands.
		f, err := os.OpenFile(r.StreamOutput, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return usageErrorf("-o/--output", "%s: %v", r.StreamOutput, err)
		}
		defer f.Close()
		streamed := *e
		streamed.dataOut = f
		e = &streamed
	}
	for _, n := range r.Notes {
		c.note("%s", n)
	}
	s := runSettings{name: string(r.Job.Operation), metadataOutput: r.MetadataOutput, metadataOverwrite: r.MetadataOverwrite,
		noProgress: r.NoProgress, interactive: r.Interactive, autoApprove: r.AutoApprove, stdoutName: r.StreamOutput}
	if r.Interactive {
		e.prompt = ttyPrompt(e.stderr)
	}
	return execute(ctx, e, c, r.Job, s)
}

// helpMode is the command whose help "encjob -e … --help" asks for: the
// mode flag's (-e: encrypt; -d, --decrypt-unsigned: decrypt), or "" when
// the line has none.
func helpMode(args []string) string {
	var f cryptoFlags
	fs := newCryptoFlagSet("decrypt", &f, io.Discard)
	fs.ParseErrorsWhitelist.UnknownFlags = true
	var rest []string
	for _, a := range args {
		if a != "-h" && a != "--help" {
			rest = append(rest, a)
		}
	}
	_ = fs.Parse(normalizeMulti(rest)) // only the mode flags matter here
	switch {
	case f.encrypt:
		return "encrypt"
	case f.decrypt, f.decryptUnsigned:
		return "decrypt"
	}
	return ""
}
