package executor

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/report"
)

// Record is one line of the metadata log (report.Record owns the
// schema and its reader).
type Record = report.Record

// MetadataLog writes records as JSON lines, one Write per line, safe for
// concurrent use. A line never exceeds report.MaxLineBytes, so readers
// (report, resume) read every line it writes; and a line is never glued
// to a torn one: when the log it appends to ends without a newline (a
// crash or a full disk cut the last record short) or one of its own
// writes was cut short, the next record starts on a new line.
type MetadataLog struct {
	mu   sync.Mutex
	w    io.Writer
	torn bool // the stream may end inside a line: start the next with '\n'
}

// NewMetadataLog returns a log over w (nil: records are dropped). When w
// is a regular file (opened for appending), its last byte is checked.
func NewMetadataLog(w io.Writer) *MetadataLog {
	l := &MetadataLog{w: w}
	if f, ok := w.(*os.File); ok {
		l.torn = tornTail(f)
	}
	return l
}

// tornTail reports whether a regular file is non-empty and does not end
// with a newline. The file may be write-only, so its last byte is read
// through a second, read-only descriptor.
func tornTail(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return false
	}
	r, err := os.Open(f.Name())
	if err != nil {
		return false
	}
	defer r.Close()
	var b [1]byte
	if _, err := r.ReadAt(b[:], fi.Size()-1); err != nil {
		return false
	}
	return b[0] != '\n'
}

// enabled reports whether records written are kept (nil: dropped).
func (l *MetadataLog) enabled() bool { return l != nil && l.w != nil }

// Write appends one record.
func (l *MetadataLog) Write(r *Record) error {
	if l == nil || l.w == nil {
		return nil
	}
	b, err := marshalRecord(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.torn {
		b = append([]byte{'\n'}, b...)
	}
	n, err := l.w.Write(b)
	switch {
	case err == nil && n == len(b):
		l.torn = false
	case n > 0:
		l.torn = true // part of a line is out: the next one starts afresh
	}
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// marshalRecord encodes r as one line of at most report.MaxLineBytes
// (less the newline): names that are not UTF-8 are kept losslessly in
// input_b64/output_b64; a record too long (a header with thousands of
// large EDKs) loses, in this order, its EDK lists and key ids, then its
// headers, and says so in "truncated".
func marshalRecord(r *Record) ([]byte, error) {
	c := *r
	if !utf8.ValidString(c.Input) {
		c.InputB64 = base64.StdEncoding.EncodeToString([]byte(c.Input))
	}
	if !utf8.ValidString(c.Output) {
		c.OutputB64 = base64.StdEncoding.EncodeToString([]byte(c.Output))
	}
	if !utf8.ValidString(c.Item) {
		c.ItemB64 = base64.StdEncoding.EncodeToString([]byte(c.Item))
	}
	const max = report.MaxLineBytes - 1
	b, err := json.Marshal(&c)
	if err != nil || len(b) <= max {
		return b, err
	}
	edks := 0
	for _, h := range []**report.CLIHeader{&c.Header, &c.InputHeader} {
		if *h != nil {
			cp := **h
			edks += len(cp.EncryptedDataKeys)
			cp.EncryptedDataKeys = nil
			*h = &cp
		}
	}
	c.Truncated = fmt.Sprintf("%d encrypted data keys and %d key ids left out: the record would be longer than %d bytes", edks, len(c.KeyIDs), max)
	c.KeyIDs = nil
	if b, err = json.Marshal(&c); err != nil || len(b) <= max {
		return b, err
	}
	c.Header, c.InputHeader, c.HeaderAuth = nil, nil, nil
	c.Error, c.Reason = crypto.Shorten(c.Error, 64<<10), crypto.Shorten(c.Reason, 64<<10)
	c.MissingKeys, c.MissingPairs = nil, nil
	c.Truncated = fmt.Sprintf("headers, key ids and context lists left out: the record would be longer than %d bytes", max)
	return json.Marshal(&c)
}
