package report

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
)

// Record is one line of the metadata log: the fields aws-encryption-cli
// writes (mode, input, output, header, header_auth, skipped, reason,
// missing_encryption_context_*), then encjob's own. It is the one
// definition of the log's schema: executor.MetadataLog writes it, Merge
// and ReadCompleted read it.
//
// Input and Output are absolute for local files, as the cli writes them
// (s3:// URLs and "-" as they are); Item is the item's identity as planned
// (the path as given), which resuming matches on.
type Record struct {
	Mode   string `json:"mode"` // first: readers find a record's start by it
	Input  string `json:"input"`
	Output string `json:"output,omitempty"`
	// InputB64 and OutputB64 hold the bytes of a name that is not valid
	// UTF-8 (JSON strings would replace them with U+FFFD); set by the
	// writer.
	InputB64   string         `json:"input_b64,omitempty"`
	OutputB64  string         `json:"output_b64,omitempty"`
	Header     *CLIHeader     `json:"header,omitempty"`
	HeaderAuth *CLIHeaderAuth `json:"header_auth,omitempty"`

	Skipped      bool       `json:"skipped,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	MissingKeys  []string   `json:"missing_encryption_context_keys,omitzero"`  // omitzero: nil is left out, [] is written
	MissingPairs [][]string `json:"missing_encryption_context_pairs,omitzero"` // (both are written on a context skip, as the cli)

	Item          string         `json:"item"`
	ItemB64       string         `json:"item_b64,omitempty"`       // Item's bytes when they are not UTF-8; set by the writer
	DecryptedWith string         `json:"decrypted_with,omitempty"` // the key that unwrapped the data key (decrypt, reencrypt)
	Action        planner.Action `json:"action"`
	Status        string         `json:"status"` // done | failed | planned (unchanged, skip, conflict) | not started
	Error         string         `json:"error,omitempty"`
	BytesIn       int64          `json:"bytes_in"`
	BytesOut      int64          `json:"bytes_out"`
	// BytesInStorage: of bytes_out, those the storage copied itself
	// (a rewrap's body: copy_file_range, S3 UploadPartCopy).
	BytesInStorage int64      `json:"bytes_copied_in_storage,omitempty"`
	DurationMS     float64    `json:"duration_ms"`
	Attempts       int        `json:"attempts,omitempty"`
	KeyIDs         []string   `json:"key_ids,omitempty"`
	InputHeader    *CLIHeader `json:"input_header,omitempty"` // reencrypt: the header it replaced
	// HeaderTag is the header authentication tag (base64) of the message
	// an encrypt, reencrypt or rewrap wrote: unique to that write, it
	// finds the record of a message from the message alone.
	HeaderTag string `json:"header_tag,omitempty"`
	// HeaderInPlace: a rewrap that overwrote the header of the file in
	// place (reencrypt.headerInPlace); the body was neither read nor
	// copied.
	HeaderInPlace bool      `json:"header_rewritten_in_place,omitempty"`
	Fingerprint   string    `json:"fingerprint,omitempty"`
	Shard         Shard     `json:"shard,omitempty"`
	Time          time.Time `json:"time"`
	// Truncated says what the writer left out to keep the line within
	// MaxLineBytes (a header with thousands of large EDKs).
	Truncated string `json:"truncated,omitempty"`
}

// Shard is a record's shard: "i/n" as encjob writes it; a number is read
// as its decimal string (logs of other tools).
type Shard string

// UnmarshalJSON reads a string or a number.
func (s *Shard) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = Shard(str)
		return nil
	}
	var num int64
	if err := json.Unmarshal(b, &num); err != nil {
		return fmt.Errorf(`"shard" must be "i/n" or a number, not %s`, b)
	}
	*s = Shard(strconv.FormatInt(num, 10))
	return nil
}

// readerFields are the fields Merge, ReadCompleted and policy.History use. A line whose
// other fields have another shape (aws-encryption-cli's, a future
// version's) is still read.
var readerFields = map[string]bool{"mode": true, "input": true, "input_b64": true, "output": true, "skipped": true,
	"item": true, "item_b64": true, "action": true, "status": true, "error": true, "bytes_in": true, "bytes_out": true,
	"fingerprint": true, "shard": true, "header_tag": true, "time": true} // the last two: policy.History

// DecodeRecord reads one log line. Names that are not UTF-8 are restored
// from their _b64 bytes. A JSON syntax error is returned as it is (the
// caller tells a torn line from garbage by it); a field of another type
// is an error only if readers use it.
func DecodeRecord(b []byte) (*Record, error) {
	var r Record
	err := json.Unmarshal(b, &r)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// Decode again from the fields readers use only, so that one
		// foreign field neither fails the line nor hides a later error.
		var m map[string]json.RawMessage
		if err = json.Unmarshal(b, &m); err == nil {
			for k := range m {
				if !readerFields[k] {
					delete(m, k)
				}
			}
			r = Record{}
			var nb []byte
			if nb, err = json.Marshal(m); err == nil {
				err = json.Unmarshal(nb, &r)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ s, b64 *string }{{&r.Input, &r.InputB64}, {&r.Output, &r.OutputB64}, {&r.Item, &r.ItemB64}} {
		if *f.b64 == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(*f.b64)
		if err != nil {
			return nil, fmt.Errorf("%q: a _b64 name is not base64: %v", *f.s, err)
		}
		*f.s = string(raw)
	}
	return &r, nil
}

// Identity is the item identity resuming matches on: "item" (logs from
// before it existed: "input").
func (r *Record) Identity() string {
	if r.Item != "" {
		return r.Item
	}
	return r.Input
}

// ReadCompleted reads a metadata log and returns, for every input whose
// last record says done, the fingerprint it had then. It reads lines of
// any length the writer produces, and inputs that are not UTF-8 by their
// bytes (input_b64). Lines that are not encjob records
// (aws-encryption-cli's) are ignored; a record cut short by a crash or a
// full disk is skipped and reported to warn (when not nil). A line longer
// than MaxLineBytes (no writer makes one) is an error: the input is not
// a metadata log.
func ReadCompleted(r io.Reader, warn func(string)) (map[string]sources.Fingerprint, error) {
	out := map[string]sources.Fingerprint{}
	if warn == nil {
		warn = func(string) {}
	}
	err := ScanLines(r, func(ln Line) error {
		b := ln.Bytes
		rec, err := DecodeRecord(b)
		if err != nil {
			switch {
			case Torn(b, err):
				warn(fmt.Sprintf("line %d: skipped a record cut short (a crash or a full disk while it was written)", ln.N))
				return nil
			case Salvage(b) != nil:
				if rec, err = DecodeRecord(Salvage(b)); err != nil {
					return nil
				}
				warn(fmt.Sprintf("line %d: a record cut short was glued to the next one; read the next one", ln.N))
			default:
				return nil
			}
		}
		id := rec.Identity()
		if id == "" {
			return nil
		}
		if rec.Status == "done" && rec.Fingerprint != "" {
			out[id] = sources.Fingerprint(rec.Fingerprint)
		} else if rec.Status == "failed" {
			delete(out, id)
		}
		return nil
	})
	return out, err
}
