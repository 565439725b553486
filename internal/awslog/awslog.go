// Package awslog routes the AWS SDK's own log lines through log/slog.
//
// The SDK's default logger writes straight to stderr ("SDK 2026/01/02
// WARN Response has no supported checksum…"), bypassing encjob's output:
// such lines interleave with the progress line and cannot be silenced or
// turned into JSON. Every aws.Config encjob loads uses Logger instead, so
// SDK lines become slog records (attribute source=aws-sdk) that the
// process's slog handler filters by level and formats (--log-level,
// --log-format). SDK warnings are logged at Info: they concern the SDK's
// own checks, never an item's outcome (encjob reports those itself).
package awslog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/smithy-go/logging"
)

// Logger returns the logger to pass to config.WithLogger.
func Logger() logging.Logger { return slogLogger{} }

type slogLogger struct{}

func (slogLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelInfo
	}
	l := slog.Default()
	if !l.Enabled(context.Background(), level) {
		return
	}
	l.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
}
