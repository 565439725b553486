package executor

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// Record is one line of the metadata log: the fields aws-encryption-cli
// writes (mode, input, output, header, header_auth, skipped, reason,
// missing_encryption_context_*), then encjob's own.
//
// Input and Output are absolute for local files, as the cli writes them
// (s3:// URLs and "-" as they are); Item is the item's identity as planned
// (the path as given), which resuming matches on.
type Record struct {
	Mode   string `json:"mode"` // first: readers find a record's start by it
	Input  string `json:"input"`
	Output string `json:"output,omitempty"`
	// InputB64 and OutputB64 hold the bytes of a name that is not valid
	// UTF-8 (JSON strings would replace them with U+FFFD); set by Write.
	InputB64   string                `json:"input_b64,omitempty"`
	OutputB64  string                `json:"output_b64,omitempty"`
	Header     *crypto.CLIHeader     `json:"header,omitempty"`
	HeaderAuth *crypto.CLIHeaderAuth `json:"header_auth,omitempty"`

	Skipped      bool       `json:"skipped,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	MissingKeys  []string   `json:"missing_encryption_context_keys,omitzero"`  // omitzero: nil is left out, [] is written
	MissingPairs [][]string `json:"missing_encryption_context_pairs,omitzero"` // (both are written on a context skip, as the cli)

	Item          string         `json:"item"`
	ItemB64       string         `json:"item_b64,omitempty"`       // Item's bytes when they are not UTF-8; set by Write
	DecryptedWith string         `json:"decrypted_with,omitempty"` // the key that unwrapped the data key (decrypt, reencrypt)
	Action        planner.Action `json:"action"`
	Status        string         `json:"status"` // done | failed | planned (unchanged, skip, conflict)
	Error         string         `json:"error,omitempty"`
	BytesIn       int64          `json:"bytes_in"`
	BytesOut      int64          `json:"bytes_out"`
	// BytesInStorage: of bytes_out, those the storage copied itself
	// (a rewrap's body: copy_file_range, S3 UploadPartCopy).
	BytesInStorage int64             `json:"bytes_copied_in_storage,omitempty"`
	DurationMS     float64           `json:"duration_ms"`
	Attempts       int               `json:"attempts,omitempty"`
	KeyIDs         []string          `json:"key_ids,omitempty"`
	InputHeader    *crypto.CLIHeader `json:"input_header,omitempty"` // reencrypt: the header it replaced
	Fingerprint    string            `json:"fingerprint,omitempty"`
	Shard          string            `json:"shard,omitempty"`
	Time           time.Time         `json:"time"`
	// Truncated says what Write left out to keep the line within
	// report.MaxLineBytes (a header with thousands of large EDKs).
	Truncated string `json:"truncated,omitempty"`
}

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
	for _, h := range []**crypto.CLIHeader{&c.Header, &c.InputHeader} {
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

// CompletedFromLog is ReadCompleted without warnings.
func CompletedFromLog(r io.Reader) (map[string]sources.Fingerprint, error) {
	return ReadCompleted(r, nil)
}

// ReadCompleted reads a metadata log and returns, for every input whose
// last record says done, the fingerprint it had then. It reads lines of
// any length the writer produces, and inputs that are not UTF-8 by their
// bytes (input_b64). Lines that are not encjob records
// (aws-encryption-cli's) are ignored; a record cut short by a crash or a
// full disk is skipped and reported to warn (when not nil). A line longer
// than report.MaxLineBytes (no writer makes one) is an error: the input
// is not a metadata log.
func ReadCompleted(r io.Reader, warn func(string)) (map[string]sources.Fingerprint, error) {
	out := map[string]sources.Fingerprint{}
	if warn == nil {
		warn = func(string) {}
	}
	err := report.ScanLines(r, func(ln report.Line) error {
		var rec struct {
			Item        string `json:"item"`
			ItemB64     string `json:"item_b64"`
			Input       string `json:"input"`
			InputB64    string `json:"input_b64"`
			Status      string `json:"status"`
			Fingerprint string `json:"fingerprint"`
		}
		b := ln.Bytes
		if err := json.Unmarshal(b, &rec); err != nil {
			switch {
			case report.Torn(b, err):
				warn(fmt.Sprintf("line %d: skipped a record cut short (a crash or a full disk while it was written)", ln.N))
				return nil
			case report.Salvage(b) != nil && json.Unmarshal(report.Salvage(b), &rec) == nil:
				warn(fmt.Sprintf("line %d: a record cut short was glued to the next one; read the next one", ln.N))
			default:
				return nil
			}
		}
		// The identity resume matches on: "item" (logs before it existed:
		// "input"), from its _b64 bytes when it is not UTF-8.
		id, idB64 := rec.Item, rec.ItemB64
		if id == "" && idB64 == "" {
			id, idB64 = rec.Input, rec.InputB64
		}
		if idB64 != "" {
			raw, err := base64.StdEncoding.DecodeString(idB64)
			if err != nil {
				return nil
			}
			id = string(raw)
		}
		if id == "" {
			return nil
		}
		rec.Input = id
		if rec.Status == "done" && rec.Fingerprint != "" {
			out[rec.Input] = sources.Fingerprint(rec.Fingerprint)
		} else if rec.Status == "failed" {
			delete(out, rec.Input)
		}
		return nil
	})
	return out, err
}
