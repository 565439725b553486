package report

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLineBytes is the longest metadata log line readers accept. The
// writer (executor.MetadataLog) never writes a longer one: it drops the
// bulky parts of a record (the header's encrypted data keys) before it
// would, so every line the writer can produce is read here. Lines of the
// usual size (a few KiB; a header with its EDKs up to a few MiB) are far
// below it; memory per reader is bounded by it, not by the input.
const MaxLineBytes = 64 << 20

// Line is one line of a log as ScanLines hands it on.
type Line struct {
	N        int    // 1-based line number
	Bytes    []byte // without the newline; valid only during the callback
	Complete bool   // ended by a newline (false: the log's last bytes, cut off)
}

// ErrLineTooLong is returned by ScanLines for a line over MaxLineBytes:
// no writer of metadata logs produces one, so the input is not a log
// (a device such as /dev/zero, a binary file) and reading stops at once
// instead of running through it.
var ErrLineTooLong = fmt.Errorf("line longer than %d bytes: not a metadata log", MaxLineBytes)

// ScanLines calls fn for every line of r up to MaxLineBytes long. Unlike
// bufio.Scanner's 64 KiB default, every line the writer can produce is
// read; a longer line stops the scan with ErrLineTooLong (naming the
// line), having held at most MaxLineBytes of it. A read error or an
// error from fn ends the scan with that error.
func ScanLines(r io.Reader, fn func(Line) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for n := 1; ; n++ {
		buf = buf[:0]
		complete := false
		for {
			frag, err := br.ReadSlice('\n')
			buf = append(buf, frag...)
			if len(buf) > MaxLineBytes+1 { // +1: the newline
				return fmt.Errorf("line %d: %w", n, ErrLineTooLong)
			}
			if err == nil {
				complete = true
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("line %d: %w", n, err)
		}
		if complete {
			buf = buf[:len(buf)-1]
		} else if len(buf) == 0 {
			return nil // end of input
		}
		if err := fn(Line{N: n, Bytes: bytes.TrimRight(buf, "\r"), Complete: complete}); err != nil {
			return err
		}
		if !complete {
			return nil
		}
	}
}

// Torn reports whether a line that does not parse as JSON is a record cut
// short (by a crash or a full disk while it was written: an object that
// starts but does not end) rather than something that is not a record.
func Torn(b []byte, parseErr error) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && parseErr != nil &&
		bytes.Contains([]byte(parseErr.Error()), []byte("unexpected end of JSON input"))
}

// recordStart is how every encjob record begins (its first field).
var recordStart = []byte(`{"mode":`)

// Salvage returns the last record start inside a line that does not parse
// (a torn record that an older writer glued to the next one), or nil.
func Salvage(b []byte) []byte {
	if i := bytes.LastIndex(b, recordStart); i > 0 {
		return b[i:]
	}
	return nil
}
