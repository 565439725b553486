// Package report merges the metadata logs of a run — typically one per
// shard, PREFIX/shard-i.jsonl — into one summary: how many items ended in
// each action, bytes in and out, every failure with its cause, and every
// item that more than one shard processed.
//
// A log is JSON lines; each line describes one item:
//
//	{"input": "s3://b/k", "output": "s3://b/k", "action": "reencrypt",
//	 "error": "", "bytes_in": 123, "bytes_out": 456, "shard": "3/8", ...}
//
// input and action are required; action is one of encrypt, decrypt,
// reencrypt, unchanged, skip, conflict, error. Other fields (the header,
// key ids, durations, aws-encryption-cli's mode and skipped fields) are
// ignored. A line without an action is read as aws-encryption-cli writes
// it: "skipped": true is skip, otherwise its "mode" (encrypt or decrypt)
// is the action. A line whose error is non-empty is a failure whatever
// its action.
//
// Later lines supersede earlier ones for the same input: logs are read in
// the order given, each from top to bottom, so the lines a re-run of an
// index appends to its log win over those of the run it repeats. Totals
// count each item once, by its last line.
//
// An item logged under two different shards is a duplicate: the shards
// did not partition the plan (different shard counts, a changed spec, a
// bug). A line's shard is its "shard" field ("i/n" or a number) when it
// has one, otherwise the log it came from (the name of an *os.File, or
// "log N"), so logs without the field must be one per shard. A re-run of
// one index, appending to its own log or writing lines with its shard,
// is not a duplicate.
//
// Memory: the merge keeps one entry per distinct input, about 150 bytes
// plus the input's length (10 million items: roughly 2 GB).
package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/encjob/encjob/planner"
)

// Actions lists every action a log line may name, in display order:
// planner.Actions, which owns the names and symbols.
var Actions = actionNames()

func actionNames() []string {
	out := make([]string, len(planner.Actions))
	for i, a := range planner.Actions {
		out[i] = string(a)
	}
	return out
}

// Summary is the merged result of a run's logs. Every list is sorted by
// input.
type Summary struct {
	Logs       int            `json:"logs"`       // logs merged
	Lines      int            `json:"lines"`      // item lines read
	Items      int            `json:"items"`      // distinct inputs
	Superseded int            `json:"superseded"` // lines replaced by a later line for the same input
	Actions    map[string]int `json:"actions"`    // items by their final action; every action present
	BytesIn    int64          `json:"bytes_in"`   // over each item's final line
	BytesOut   int64          `json:"bytes_out"`
	Shards     []string       `json:"shards"` // shards seen, sorted
	Failures   []Failure      `json:"failures"`
	Duplicates []Duplicate    `json:"duplicates"`
	Warnings   []string       `json:"warnings,omitempty"` // e.g. a log cut off mid-line
}

// Failure is an item whose final line is an error.
type Failure struct {
	Input    string `json:"input"`
	InputB64 string `json:"input_b64,omitempty"` // the input's bytes when they are not UTF-8 (JSON would replace them)
	Output   string `json:"output,omitempty"`
	Action   string `json:"action"` // what was attempted; "error" when the log does not say
	Shard    string `json:"shard"`
	Error    string `json:"error"`
}

// Duplicate is an item logged under more than one shard.
type Duplicate struct {
	Input   string   `json:"input"`
	Shards  []string `json:"shards"`  // sorted
	Actions []string `json:"actions"` // the last action each of those shards logged, same order
}

// Failed reports the number of failed items.
func (s *Summary) Failed() int { return len(s.Failures) }

// OK reports whether every item succeeded (or was skipped, unchanged or a
// conflict) and no item was processed twice.
func (s *Summary) OK() bool { return len(s.Failures) == 0 && len(s.Duplicates) == 0 }

type entry struct {
	output, action, err, shard string
	bytesIn, bytesOut          int64
	shards                     map[string]string // shard → last action, only once a second shard appears
}

// LineError is a log line that cannot be read.
type LineError struct {
	Log  string // the log's name
	Line int    // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("report: %s:%d: %v", e.Log, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Merge reads the logs in order and summarises them. A reader with a
// Name() string method (an *os.File) is called by that name in errors and
// as a shard; others are "log 1", "log 2", .... A malformed line is an
// error naming the log and line, except a final line without a newline:
// a shard killed while writing it leaves one, so it is reported in
// Warnings and otherwise ignored.
func Merge(readers ...io.Reader) (*Summary, error) {
	s := &Summary{Logs: len(readers), Actions: map[string]int{}}
	items := map[string]*entry{}
	shards := map[string]bool{}
	for i, r := range readers {
		name := fmt.Sprintf("log %d", i+1)
		if n, ok := r.(interface{ Name() string }); ok && n.Name() != "" {
			name = n.Name()
		}
		err := ScanLines(r, func(ln Line) error {
			t := bytes.TrimSpace(ln.Bytes)
			if len(t) == 0 {
				return nil
			}
			l, err := parseLine(t)
			if err != nil {
				var jerr *json.SyntaxError
				switch {
				case !ln.Complete:
					s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: ignored a final line without a newline (the log was cut off): %v", name, ln.N, err))
					return nil
				case Torn(t, err):
					s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: ignored a record cut short (a crash or a full disk while it was written)", name, ln.N))
					return nil
				case errors.As(err, &jerr) && Salvage(t) != nil:
					if l, err = parseLine(Salvage(t)); err != nil {
						return &LineError{Log: name, Line: ln.N, Err: err}
					}
					s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: a record cut short was glued to the next one; read the next one", name, ln.N))
				default:
					return &LineError{Log: name, Line: ln.N, Err: err}
				}
			}
			shard := name
			if l.shard != "" {
				shard = l.shard
			}
			shards[shard] = true
			s.Lines++
			e := items[l.Input]
			if e == nil {
				e = &entry{}
				items[l.Input] = e
			} else {
				s.Superseded++
				if e.shard != shard {
					if e.shards == nil {
						e.shards = map[string]string{e.shard: e.action}
					}
				}
			}
			*e = entry{output: l.Output, action: l.Action, err: l.Error, shard: shard,
				bytesIn: l.BytesIn, bytesOut: l.BytesOut, shards: e.shards}
			if e.shards != nil {
				e.shards[shard] = l.Action
			}
			return nil
		})
		if err != nil {
			var le *LineError
			if errors.As(err, &le) {
				return nil, err
			}
			return nil, &LineError{Log: name, Err: err}
		}
	}

	for _, a := range Actions {
		s.Actions[a] = 0
	}
	s.Items = len(items)
	for _, in := range slices.Sorted(maps.Keys(items)) {
		e := items[in]
		s.BytesIn += e.bytesIn
		s.BytesOut += e.bytesOut
		if e.err != "" || e.action == string(planner.Error) {
			s.Actions[string(planner.Error)]++
			msg := e.err
			if msg == "" {
				msg = "failed (the log gives no cause)"
			}
			f := Failure{Input: in, Output: e.output, Action: e.action, Shard: e.shard, Error: msg}
			if !utf8.ValidString(in) {
				f.InputB64 = base64.StdEncoding.EncodeToString([]byte(in))
			}
			s.Failures = append(s.Failures, f)
		} else {
			s.Actions[e.action]++
		}
		if len(e.shards) > 1 {
			d := Duplicate{Input: in, Shards: slices.Sorted(maps.Keys(e.shards))}
			for _, sh := range d.Shards {
				d.Actions = append(d.Actions, e.shards[sh])
			}
			s.Duplicates = append(s.Duplicates, d)
		}
	}
	s.Shards = slices.SortedFunc(maps.Keys(shards), compareShards)
	return s, nil
}

// parsed is a line as the merge uses it.
type parsed struct {
	Input, Output, Action, Error string
	BytesIn, BytesOut            int64
	shard                        string
}

func parseLine(b []byte) (parsed, error) {
	r, err := DecodeRecord(b)
	if err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return parsed{}, fmt.Errorf("not a JSON object: %w", err)
		}
		return parsed{}, err
	}
	if r.Input == "" {
		return parsed{}, errors.New(`"input" is missing or empty`)
	}
	l := parsed{Input: r.Input, Output: r.Output, Action: string(r.Action), Error: r.Error, BytesIn: r.BytesIn, BytesOut: r.BytesOut, shard: string(r.Shard)}
	if l.Action == "" {
		switch {
		case r.Skipped:
			l.Action = string(planner.Skip)
		case r.Mode == string(planner.Encrypt) || r.Mode == string(planner.Decrypt):
			l.Action = r.Mode
		default:
			return parsed{}, fmt.Errorf(`%q: "action" is missing`, l.Input)
		}
	}
	if !slices.Contains(Actions, l.Action) {
		return parsed{}, fmt.Errorf("%q: unknown action %q (want one of %s)", l.Input, l.Action, strings.Join(Actions, ", "))
	}
	if l.BytesIn < 0 || l.BytesOut < 0 {
		return parsed{}, fmt.Errorf("%q: negative byte count", l.Input)
	}
	return l, nil
}

// compareShards orders "2/8" before "10/8" and names after numbers.
func compareShards(a, b string) int {
	ai, aok := shardIndex(a)
	bi, bok := shardIndex(b)
	switch {
	case aok && bok && ai != bi:
		if ai < bi {
			return -1
		}
		return 1
	case aok != bok:
		if aok {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func shardIndex(s string) (int, bool) {
	i, _, _ := strings.Cut(s, "/")
	n, err := strconv.Atoi(i)
	return n, err == nil
}

// WriteJSON writes the summary as one indented JSON object.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("report: writing JSON: %w", err)
	}
	return nil
}

// MarshalJSON writes empty lists as [] rather than null.
func (s *Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	c := plain(*s)
	if c.Shards == nil {
		c.Shards = []string{}
	}
	if c.Failures == nil {
		c.Failures = []Failure{}
	}
	if c.Duplicates == nil {
		c.Duplicates = []Duplicate{}
	}
	return json.Marshal(c)
}

// WriteText writes the summary for people: the totals, then every
// failure and duplicate, one per line.
func (s *Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s items from %s in %s (%s lines, %s superseded by later lines)\n",
		count(s.Items), plural(s.Logs, "log"), plural(len(s.Shards), "shard"), count(s.Lines), count(s.Superseded))
	width := len(count(s.Items))
	for _, a := range Actions {
		if n := s.Actions[a]; n > 0 {
			fmt.Fprintf(&b, "  %s %-9s %*s\n", planner.Action(a).Symbol(), a, width, count(n))
		}
	}
	fmt.Fprintf(&b, "bytes: %s in, %s out\n", size(s.BytesIn), size(s.BytesOut))
	if len(s.Failures) > 0 {
		fmt.Fprintf(&b, "failures (%s):\n", count(len(s.Failures)))
		for _, f := range s.Failures {
			fmt.Fprintf(&b, "  %s [%s, shard %s]: %s\n", f.Input, f.Action, f.Shard, oneLine(f.Error))
		}
	}
	if len(s.Duplicates) > 0 {
		fmt.Fprintf(&b, "duplicates (%s) — processed by more than one shard:\n", count(len(s.Duplicates)))
		for _, d := range s.Duplicates {
			parts := make([]string, len(d.Shards))
			for i := range d.Shards {
				parts[i] = d.Shards[i] + " " + d.Actions[i]
			}
			fmt.Fprintf(&b, "  %s: %s\n", d.Input, strings.Join(parts, ", "))
		}
	}
	for _, x := range s.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", x)
	}
	if s.OK() {
		b.WriteString("result: ok\n")
	} else {
		fmt.Fprintf(&b, "result: %s failed, %s duplicated\n", count(len(s.Failures)), count(len(s.Duplicates)))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("report: writing the summary: %w", err)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return count(n) + " " + word + "s"
}

// count formats n with thousands separators: 1234567 → "1,234,567".
func count(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// size formats bytes in binary units: 1536 → "1.5 KiB".
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
