package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// FormatVersion is the version of the saved plan format. A plan of another
// version is refused. Version 2: items carry everything apply does (how
// the output is written, the target message, the key groups); version 1
// plans left that to the spec. Version 3: the header is sealed (Seal).
const FormatVersion = 3

// Action is what apply will do with one item.
type Action string

const (
	Encrypt   Action = "encrypt"
	Decrypt   Action = "decrypt"
	Reencrypt Action = "reencrypt"
	Rewrap    Action = "rewrap"    // reencrypt keeping the data key and body (reencrypt.mode: rewrap)
	Unchanged Action = "unchanged" // already in the desired state
	Skip      Action = "skip"      // deliberately not processed (reason given)
	Conflict  Action = "conflict"  // destination exists and the overwrite policy forbids
	Error     Action = "error"     // cannot be processed (reason given)
)

// Changes reports whether the action changes anything.
func (a Action) Changes() bool { return a == Encrypt || a == Decrypt || a == Reencrypt || a == Rewrap }

// Symbol is the one-character plan symbol (Terraform style).
func (a Action) Symbol() string {
	switch a {
	case Encrypt:
		return "+"
	case Decrypt:
		return "-"
	case Reencrypt:
		return "~"
	case Rewrap:
		return "^"
	case Unchanged:
		return "="
	case Conflict:
		return "!"
	case Skip:
		return "s"
	}
	return "x"
}

// Actions lists every action in display order.
var Actions = []Action{Encrypt, Decrypt, Reencrypt, Rewrap, Unchanged, Skip, Conflict, Error}

// Item is one unit of work: one source object and its destination.
type Item struct {
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"`

	SourceIndex int    `json:"source"` // index into Job.Sources
	Key         string `json:"key"`    // key relative to the source root
	Input       string `json:"input"`  // display name / URL of the input
	Output      string `json:"output,omitempty"`
	OutKey      string `json:"out_key,omitempty"`  // key relative to the destination root
	OutRoot     string `json:"out_root,omitempty"` // destination root: directory, s3://bucket/prefix or "-"

	Size        int64               `json:"size"`
	Fingerprint sources.Fingerprint `json:"fingerprint,omitempty"`
	Mode        uint32              `json:"mode,omitempty"`
	ContentType string              `json:"content_type,omitempty"`
	Metadata    map[string]string   `json:"metadata,omitempty"`

	// What the planner saw in the input header (decrypt / reencrypt).
	Suite  string   `json:"suite,omitempty"`
	KeyIDs []string `json:"key_ids,omitempty"`

	MissingContextKeys  []string   `json:"missing_encryption_context_keys,omitempty"`
	MissingContextPairs [][]string `json:"missing_encryption_context_pairs,omitempty"`

	// Rule is the policy rule index for policy plans (-1 for jobs).
	Rule int `json:"rule"`

	// How apply processes a changing item: everything it needs besides
	// the runtime's keys and limits. Decided by the planner from the job
	// (itemSettings); VerifyPlan refuses a plan whose values differ.
	Format         string `json:"format,omitempty"`         // "kms": a KMS ciphertext blob; "": an ESDK message
	InputEncoding  string `json:"input_encoding,omitempty"` // "base64" or "" (binary)
	OutputEncoding string `json:"output_encoding,omitempty"`
	InPlace        bool   `json:"in_place,omitempty"`  // replaces its source (only if it is still Fingerprint)
	Overwrite      bool   `json:"overwrite,omitempty"` // may replace an existing output (overwrite: always or if-newer)
	Verify         bool   `json:"verify,omitempty"`    // the new message is decrypted and compared before it is committed
	// HeaderInPlace: an in-place rewrap may overwrite the header of a
	// local file in place (reencrypt.headerInPlace) when the new header
	// has the old one's length; otherwise it writes a new file.
	HeaderInPlace   bool    `json:"header_in_place,omitempty"`
	DecryptKeyGroup string  `json:"decrypt_key_group,omitempty"`
	Target          *Target `json:"target,omitempty"` // encrypt, reencrypt, rewrap: the message written
}

// Identity is the stable identity of an item: it does not depend on listing
// order, so shards and resumed runs agree on it.
func (it *Item) Identity() string { return it.Input }

// Plan is a value: what apply will do, computed from a job and the state of
// its sources and destinations. Saved as JSON, it can be applied later; a
// saved plan is refused when a source changed since planning.
type Plan struct {
	FormatVersion int       `json:"format_version"`
	Name          string    `json:"name"`
	Created       time.Time `json:"created"`
	SpecDigest    string    `json:"spec_digest"`
	Job           *spec.Job `json:"job"`
	// BaseDir is where relative paths of the job were resolved.
	BaseDir string `json:"base_dir"`
	// Seal is a digest of the header fields that apply trusts without
	// checking them against anything else: base_dir (where key files and
	// relative paths resolve when the plan is applied without -f), name
	// and spec_digest. Write sets it and Read refuses a plan whose header
	// no longer matches it, so a hand-edited base_dir is called an edited
	// plan before anything is opened there. It is no signature: it
	// catches edits, not forgeries (items are checked live anyway).
	Seal  string `json:"seal"`
	Items []Item `json:"items"`

	// builtBy is the runtime whose Build made (or whose VerifyPlan
	// checked) this plan in this process; nil for a plan read from a
	// file, which VerifyPlan checks in full.
	builtBy *Runtime
}

// Counts returns the number of items per action.
func (p *Plan) Counts() map[Action]int { return Count(p.Items) }

// Count returns the number of items per action.
func Count(items []Item) map[Action]int {
	c := map[Action]int{}
	for _, it := range items {
		c[it.Action]++
	}
	return c
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, it := range p.Items {
		if it.Action.Changes() {
			return true
		}
	}
	return false
}

// Write saves the plan as indented JSON, sealed.
func (p *Plan) Write(w io.Writer) error {
	c := *p
	c.Seal = p.sealOf()
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(&c)
}

// sealOf is the Seal of p's header as it is now.
func (p *Plan) sealOf() string {
	return Seal("encjob plan header", strconv.Itoa(p.FormatVersion), p.Name, p.SpecDigest, p.BaseDir)
}

// Seal hashes a saved plan's header fields, length-prefixed so that no
// two headers hash alike (policy plans seal theirs with it too).
func Seal(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(strconv.Itoa(len(f)) + ":" + f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Read loads a saved plan and checks its format version.
func Read(r io.Reader) (*Plan, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("planner: reading plan: %w", err)
	}
	// The version first: a plan of another version is refused as such,
	// not for the fields its shape does not share with this one.
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("planner: reading plan: %w", err)
	}
	switch {
	case v.FormatVersion == nil:
		return nil, fmt.Errorf("planner: reading plan: no format_version (not a saved plan)")
	case *v.FormatVersion != FormatVersion:
		return nil, fmt.Errorf("planner: plan format version %d, this encjob reads only version %d (run encjob plan again with this encjob)", *v.FormatVersion, FormatVersion)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("planner: reading plan: %w", err)
	}
	if p.Job == nil {
		return nil, fmt.Errorf("planner: plan has no job")
	}
	if p.Seal != p.sealOf() {
		return nil, fmt.Errorf("planner: plan: its base_dir, name or spec_digest no longer match its seal (the plan file was edited)")
	}
	return &p, nil
}

// itemFields is Item without its JSON methods.
type itemFields Item

// itemWire is an Item as saved: JSON strings cannot hold bytes that are
// not UTF-8 (encoding/json replaces them with U+FFFD), so a name field
// that is not valid UTF-8 is also saved, byte for byte, under raw_names
// (base64), which wins on reading. Without it a file named "bad\xff" was
// planned but its saved plan was refused: "the source lists no such item".
type itemWire struct {
	itemFields
	RawNames map[string][]byte `json:"raw_names,omitempty"`
}

// names are the Item fields that hold file names, by JSON name.
func (it *Item) names() map[string]*string {
	return map[string]*string{"key": &it.Key, "input": &it.Input, "output": &it.Output, "out_key": &it.OutKey, "out_root": &it.OutRoot}
}

// MarshalJSON saves the item losslessly (see itemWire).
func (it Item) MarshalJSON() ([]byte, error) {
	w := itemWire{itemFields: itemFields(it)}
	for name, p := range it.names() {
		if !utf8.ValidString(*p) {
			if w.RawNames == nil {
				w.RawNames = map[string][]byte{}
			}
			w.RawNames[name] = []byte(*p)
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote, as strictly as Read reads
// the plan (unknown fields are refused).
func (it *Item) UnmarshalJSON(b []byte) error {
	var w itemWire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*it = Item(w.itemFields)
	fields := it.names()
	for name, raw := range w.RawNames {
		p, ok := fields[name]
		if !ok {
			return fmt.Errorf("raw_names: %q is not a name field", name)
		}
		*p = string(raw)
	}
	return nil
}
