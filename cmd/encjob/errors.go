package main

import (
	"errors"
	"fmt"
)

// Exit codes (documented in docs/cli.md and `encjob --help`).
const (
	exitOK          = 0
	exitFailed      = 1   // items failed, conflicted or were skipped for a context mismatch
	exitUsage       = 2   // usage or spec error; plan --detailed-exitcode: changes
	exitStale       = 3   // saved plan refused (stale, errored, other spec)
	exitInternal    = 4   // internal error or panic: a bug; retryable (the Kubernetes Job retries it)
	exitInterrupted = 130 // SIGINT / SIGTERM
)

// usageError is a command-line problem; Flag names the flag or argument at
// fault and Hint, when set, says how to fix it.
type usageError struct {
	Flag string
	Msg  string
	Hint string
}

func (e *usageError) Error() string {
	if e.Flag == "" {
		return e.Msg
	}
	return e.Flag + ": " + e.Msg
}

func usageErrorf(flag, format string, args ...any) *usageError {
	return &usageError{Flag: flag, Msg: fmt.Sprintf(format, args...)}
}

func (e *usageError) withHint(format string, args ...any) *usageError {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}

// exitError carries an exit code with its message.
type exitError struct {
	Code int
	Err  error
	Hint string
}

func (e *exitError) Error() string { return e.Err.Error() }
func (e *exitError) Unwrap() error { return e.Err }

// codeOf maps an error to its exit code.
func codeOf(err error) int {
	var u *usageError
	var x *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &x):
		return x.Code
	case errors.As(err, &u):
		return exitUsage
	}
	return exitFailed
}

// hintOf returns the hint carried by err, if any.
func hintOf(err error) string {
	var u *usageError
	var x *exitError
	switch {
	case errors.As(err, &x):
		return x.Hint
	case errors.As(err, &u):
		return u.Hint
	}
	return ""
}
