package policy

import (
	"encoding/base64"
	"fmt"
	"io"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/internal/report"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// History is what metadata logs say about how each message came to be:
// which action wrote it. A header cannot tell a rewrapped message (its
// data key as old as its first encryption) from a re-encrypted one (a
// fresh data key), so a rule's reencrypt.require is audited from the
// log.
//
// Messages are found by their header authentication tag, not by path:
// every write of a message (encrypt, reencrypt and rewrap alike) makes a
// new header and so a new tag, and the record of that write carries it
// (header_tag), so the record whose tag is the item's current one is
// the write that produced the bytes there now, wherever the item was
// moved or copied to since. An older record of the same path (the
// write a later one replaced) can never match.
type History struct {
	byTag map[string]LastChange
	logs  int
}

// LastChange is the recorded write of an item's current message.
type LastChange struct {
	// Action is encrypt, reencrypt (a new data key) or rewrap (the data
	// key kept).
	Action planner.Action `json:"action"`
	// Output is the record's output as logged, Time its time, Log the
	// name of the log it came from.
	Output string `json:"output"`
	Time   string `json:"time,omitempty"`
	Log    string `json:"log"`
}

// NewHistory returns an empty history; Add reads logs into it.
func NewHistory() *History { return &History{byTag: map[string]LastChange{}} }

// Add reads one metadata log (name says where it came from, for
// reports). Only records of completed writes count (status done, an
// action that writes a message, a header_auth tag); other lines are
// ignored, as are lines cut off by a crash. A line that is not a record
// at all is an error naming it: a history silently missing records
// would let a rewrapped message pass a rule that requires full.
func (h *History) Add(name string, r io.Reader) error {
	h.logs++
	return report.ScanLines(r, func(l report.Line) error {
		if len(l.Bytes) == 0 {
			return nil
		}
		rec, err := report.DecodeRecord(l.Bytes)
		if err != nil {
			if report.Torn(l.Bytes, err) && !l.Complete {
				return nil // the last record, cut short by a crash
			}
			return fmt.Errorf("%s:%d: not a metadata record: %w", name, l.N, err)
		}
		if rec.Status != "done" || !rec.Action.Changes() || rec.Action == planner.Decrypt || rec.HeaderTag == "" {
			return nil
		}
		c := LastChange{Action: rec.Action, Output: rec.Output, Log: name}
		if !rec.Time.IsZero() {
			c.Time = rec.Time.UTC().Format("2006-01-02T15:04:05Z")
		}
		// Later lines win: a tag is unique to one header, so a repeat is
		// the same write logged twice (a resumed run).
		h.byTag[rec.HeaderTag] = c
		return nil
	})
}

// Logs is the number of logs read.
func (h *History) Logs() int {
	if h == nil {
		return 0
	}
	return h.logs
}

// Of returns the recorded write of the message whose header is hdr.
func (h *History) Of(hdr *crypto.Header) (LastChange, bool) {
	if h == nil || hdr == nil || len(hdr.AuthTag) == 0 {
		return LastChange{}, false
	}
	c, ok := h.byTag[base64.StdEncoding.EncodeToString(hdr.AuthTag)]
	return c, ok
}

// KeptDataKey reports whether the recorded write of the message whose
// header is hdr was a rewrap: its data key is older than its header (what
// reencrypt.require: full re-encrypts; planner.Runtime.RenewDataKey).
func (h *History) KeptDataKey(hdr *crypto.Header) bool {
	c, ok := h.Of(hdr)
	return ok && c.Action == planner.Rewrap
}

// describeChange names what a recorded action did to the data key.
func describeChange(c LastChange) string {
	what := map[planner.Action]string{
		planner.Rewrap:    "a rewrap (the data key kept)",
		planner.Reencrypt: "a full re-encryption (a new data key)",
		planner.Encrypt:   "an encryption (a new data key)",
	}[c.Action]
	at := ""
	if c.Time != "" {
		at = " at " + c.Time
	}
	return fmt.Sprintf("%s%s (%s)", what, at, c.Log)
}

// lastChangeViolation says how the recorded write of an item's current
// message breaks rule's reencrypt.require, or "" when it does not (or
// nothing is recorded: a message encjob did not log is judged by its
// header alone). require full: a rewrap wrote it, so its data key is
// older than its key group (after a suspected compromise, exactly the
// messages still at risk). require rewrap: a full re-encryption wrote it
// (a new data key and body where the rule demands the body be kept).
func lastChangeViolation(require string, c LastChange, found bool) string {
	switch {
	case !found:
		return ""
	case require == spec.ReencryptFull && c.Action == planner.Rewrap:
		return "last recorded write was " + describeChange(c) + "; the rule requires a full re-encryption (reencrypt.require: full): its data key predates its key group"
	case require == spec.ReencryptRewrap && c.Action == planner.Reencrypt:
		return "last recorded write was " + describeChange(c) + "; the rule requires a rewrap (reencrypt.require: rewrap)"
	}
	return ""
}
