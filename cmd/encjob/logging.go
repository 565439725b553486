package main

import (
	"log/slog"
	"strings"

	"github.com/spf13/pflag"
)

// Global flags: accepted by every command, anywhere before "--".
//
//	--log-level debug|info|warn|error   (default warn; ENCJOB_LOG_LEVEL)
//	--log-format text|json              (default text; ENCJOB_LOG_FORMAT)
//
// Log records (the AWS SDK's own lines, routed by internal/awslog, and
// encjob's debug details such as the stack of an item that panicked) go
// to stderr through the console, so they never tear the progress line.
// The human lines (notes, errors, summary) are not log records and are
// printed whatever the level.
type logSettings struct {
	level, format string
}

// globalFlagSet defines the global flags (for help, completion and docs).
func globalFlagSet(ls *logSettings) *pflag.FlagSet {
	fs := pflag.NewFlagSet("encjob", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&ls.level, "log-level", "warn", "log records shown on stderr: debug, info, warn or error (env ENCJOB_LOG_LEVEL)")
	fs.StringVar(&ls.format, "log-format", "text", "log record format: text or json (env ENCJOB_LOG_FORMAT)")
	return fs
}

// extractGlobalFlags removes the global flags from args, so each command
// sees only its own. A global flag given twice is refused, like any other
// single-valued flag.
func extractGlobalFlags(e *env, args []string) ([]string, logSettings, error) {
	ls := logSettings{level: e.getenv("ENCJOB_LOG_LEVEL"), format: e.getenv("ENCJOB_LOG_FORMAT")}
	var rest []string
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		if name != "--log-level" && name != "--log-format" {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, ls, usageErrorf(name, "needs a value")
			}
			i++
			val = args[i]
		}
		if seen[name] {
			return nil, ls, usageErrorf(name, "given more than once; give it once")
		}
		seen[name] = true
		if name == "--log-level" {
			ls.level = val
		} else {
			ls.format = val
		}
	}
	return rest, ls, nil
}

// setupLogging makes the process's slog default write to the console at
// the chosen level and format.
func setupLogging(c *console, ls logSettings) error {
	var level slog.Level
	switch strings.ToLower(ls.level) {
	case "", "warn", "warning":
		level = slog.LevelWarn
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "error":
		level = slog.LevelError
	default:
		return usageErrorf("--log-level", "%q: want debug, info, warn or error", sanitize(ls.level))
	}
	opts := &slog.HandlerOptions{Level: level}
	w := consoleWriter{c}
	var h slog.Handler
	switch strings.ToLower(ls.format) {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return usageErrorf("--log-format", "%q: want text or json", sanitize(ls.format))
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// consoleWriter writes log records through the console (clearing the
// progress line first). slog's handlers quote and escape attribute values,
// so names in records cannot drive the terminal either.
type consoleWriter struct{ c *console }

func (w consoleWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.c.clearLine()
	return w.c.w.Write(p)
}
