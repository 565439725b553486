package executor

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/encjob/encjob/crypto"
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
	Mode       string                `json:"mode"`
	Input      string                `json:"input"`
	Output     string                `json:"output,omitempty"`
	Header     *crypto.CLIHeader     `json:"header,omitempty"`
	HeaderAuth *crypto.CLIHeaderAuth `json:"header_auth,omitempty"`

	Skipped      bool       `json:"skipped,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	MissingKeys  []string   `json:"missing_encryption_context_keys,omitzero"`  // omitzero: nil is left out, [] is written
	MissingPairs [][]string `json:"missing_encryption_context_pairs,omitzero"` // (both are written on a context skip, as the cli)

	Item          string            `json:"item"`
	DecryptedWith string            `json:"decrypted_with,omitempty"` // the key that unwrapped the data key (decrypt, reencrypt)
	Action        planner.Action    `json:"action"`
	Status        string            `json:"status"` // done | failed | planned (unchanged, skip, conflict)
	Error         string            `json:"error,omitempty"`
	BytesIn       int64             `json:"bytes_in"`
	BytesOut      int64             `json:"bytes_out"`
	DurationMS    float64           `json:"duration_ms"`
	Attempts      int               `json:"attempts,omitempty"`
	KeyIDs        []string          `json:"key_ids,omitempty"`
	InputHeader   *crypto.CLIHeader `json:"input_header,omitempty"` // reencrypt: the header it replaced
	Fingerprint   string            `json:"fingerprint,omitempty"`
	Shard         string            `json:"shard,omitempty"`
	Time          time.Time         `json:"time"`
}

// MetadataLog writes records as JSON lines, one Write per line, safe for
// concurrent use.
type MetadataLog struct {
	mu sync.Mutex
	w  io.Writer
}

// NewMetadataLog returns a log over w (nil: records are dropped).
func NewMetadataLog(w io.Writer) *MetadataLog { return &MetadataLog{w: w} }

// Write appends one record.
func (l *MetadataLog) Write(r *Record) error {
	if l == nil || l.w == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(b)
	return err
}

// CompletedFromLog reads a metadata log and returns, for every input whose
// last record says done, the fingerprint it had then. Lines that are not
// encjob records (aws-encryption-cli's, or a line cut short by a crash) are
// ignored.
func CompletedFromLog(r io.Reader) (map[string]sources.Fingerprint, error) {
	out := map[string]sources.Fingerprint{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec struct {
			Item        string `json:"item"`
			Input       string `json:"input"`
			Status      string `json:"status"`
			Fingerprint string `json:"fingerprint"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Input == "" {
			continue
		}
		if rec.Item != "" { // logs before "item" existed: input was the identity
			rec.Input = rec.Item
		}
		if rec.Status == "done" && rec.Fingerprint != "" {
			out[rec.Input] = sources.Fingerprint(rec.Fingerprint)
		} else if rec.Status == "failed" {
			delete(out, rec.Input)
		}
	}
	return out, sc.Err()
}
