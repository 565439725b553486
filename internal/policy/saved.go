package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// PlanKind marks a saved reconciliation ("kind" of the file; a saved job
// plan has none).
const PlanKind = "EncryptionPolicyPlan"

// savedPlan is a reconciliation as saved by Write: the policy, its parts'
// job plans (in the job plan format, each checked as one on reading) and
// the items no part changes.
type savedPlan struct {
	FormatVersion int            `json:"format_version"`
	Kind          string         `json:"kind"`
	Name          string         `json:"name"`
	Created       time.Time      `json:"created"`
	PolicyDigest  string         `json:"policy_digest"`
	Policy        *spec.Policy   `json:"policy"`
	BaseDir       string         `json:"base_dir"`
	Seal          string         `json:"seal"` // planner.Plan's Seal, of name, policy_digest and base_dir
	Parts         []savedPart    `json:"parts"`
	Others        []planner.Item `json:"others"`
}

type savedPart struct {
	Rule            int             `json:"rule"`
	Action          planner.Action  `json:"action"`
	DecryptKeyGroup string          `json:"decrypt_key_group,omitempty"`
	Rewrap          bool            `json:"rewrap,omitempty"`
	Plan            json.RawMessage `json:"plan"`
}

// Write saves the reconciliation as indented JSON; ReadPlan reads it back
// and Apply applies it (as `encjob apply PLANFILE`).
func (r *Reconciliation) Write(w io.Writer) error {
	sp := savedPlan{FormatVersion: planner.FormatVersion, Kind: PlanKind, Name: r.Name, Created: time.Now().UTC().Truncate(time.Second),
		PolicyDigest: r.Policy.Digest(), Policy: r.Policy, BaseDir: r.BaseDir, Others: r.Others, Parts: []savedPart{}}
	sp.Seal = sp.sealOf()
	if sp.Others == nil {
		sp.Others = []planner.Item{}
	}
	for _, p := range r.Parts {
		var b bytes.Buffer
		if err := p.Plan.Write(&b); err != nil {
			return err
		}
		sp.Parts = append(sp.Parts, savedPart{Rule: p.Rule, Action: p.Action, DecryptKeyGroup: p.DecryptKeyGroup, Rewrap: p.Rewrap, Plan: b.Bytes()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(sp)
}

// IsSavedPlan reports whether b is a saved reconciliation (by its kind).
func IsSavedPlan(b []byte) bool {
	var k struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(b, &k) == nil && k.Kind == PlanKind
}

// ReadPlan loads a saved reconciliation. It is refused unless it is of
// this format version, its policy matches its recorded digest, and every
// part's job is exactly the one the policy implies for the part's rule,
// operation and decrypt key group (a part is an in-place job: an edited
// part must not choose its own output, keys or context). The parts have
// no runtime until Prepare.
func ReadPlan(rd io.Reader) (*Reconciliation, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("policy: reading plan: %w", err)
	}
	var v struct {
		FormatVersion int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("policy: reading plan: %w", err)
	}
	if v.FormatVersion != planner.FormatVersion {
		return nil, fmt.Errorf("policy: plan format version %d, this encjob reads only version %d (run encjob plan again with this encjob)", v.FormatVersion, planner.FormatVersion)
	}
	var sp savedPlan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("policy: reading plan: %w", err)
	}
	switch {
	case sp.Kind != PlanKind:
		return nil, fmt.Errorf("policy: reading plan: kind %q, not %s", sp.Kind, PlanKind)
	case sp.Policy == nil:
		return nil, errors.New("policy: reading plan: no policy")
	case sp.Policy.Digest() != sp.PolicyDigest:
		return nil, errors.New("policy: plan: its policy does not match the recorded policy digest (the plan file was edited)")
	case sp.Seal != sp.sealOf():
		return nil, errors.New("policy: plan: its base_dir, name or policy_digest no longer match its seal (the plan file was edited)")
	}
	r := &Reconciliation{Policy: sp.Policy, Name: sp.Name, BaseDir: sp.BaseDir, Others: sp.Others}
	for i, s := range sp.Parts {
		p, err := planner.Read(bytes.NewReader(s.Plan))
		if err != nil {
			return nil, fmt.Errorf("policy: plan: parts[%d]: %w", i, err)
		}
		part := &Part{Rule: s.Rule, Action: s.Action, DecryptKeyGroup: s.DecryptKeyGroup, Rewrap: s.Rewrap, Plan: p}
		want, err := partJob(sp.Policy, partKey{rule: s.Rule, op: s.Action, dec: s.DecryptKeyGroup, rewrap: s.Rewrap})
		if err != nil {
			return nil, fmt.Errorf("policy: plan: parts[%d]: %w", i, err)
		}
		if want.Digest() != p.SpecDigest || p.BaseDir != sp.BaseDir {
			return nil, fmt.Errorf("policy: plan: parts[%d] (%s): its job is not the one the policy implies for it (the plan file was edited)", i, part.Name())
		}
		part.Job = p.Job
		r.Parts = append(r.Parts, part)
	}
	return r, nil
}

// Prepare builds the runtime of every part of a reconciliation read by
// ReadPlan (planner.Prepare with o, BaseDir the plan's).
func (r *Reconciliation) Prepare(ctx context.Context, o planner.Options) error {
	o.BaseDir = r.BaseDir
	for _, p := range r.Parts {
		rt, err := planner.Prepare(ctx, p.Job, o)
		if err != nil {
			return fmt.Errorf("policy: %s: %w", p.Name(), err)
		}
		p.Runtime = rt
	}
	return nil
}

// Verify refuses a reconciliation apply must not run: one with errored
// items (an item no part can make compliant is fixed by hand, then the
// policy planned again), one part whose plan planner.VerifyPlan refuses
// (stale, edited), or other items whose sources changed since planning.
// For a reconciliation Plan made in this process it costs nothing.
func (r *Reconciliation) Verify(ctx context.Context) error {
	var errored []string
	var others []planner.Item
	for _, it := range r.Others {
		if it.Action == planner.Error {
			errored = append(errored, it.Input+": "+it.Reason)
		} else {
			others = append(others, it)
		}
	}
	if len(errored) > 0 && r.Report == nil {
		return &planner.PlanError{Index: -1, Field: "others", Cause: fmt.Sprintf("%d errored items (fix them and plan again); first: %s", len(errored), errored[0])}
	}
	for _, p := range r.Parts {
		if p.Runtime == nil {
			return fmt.Errorf("policy: %s: no runtime (Prepare the plan first)", p.Name())
		}
		if err := planner.VerifyPlan(ctx, p.Runtime, p.Plan); err != nil {
			return fmt.Errorf("policy: %s: %w", p.Name(), err)
		}
	}
	if r.Report == nil && len(r.Parts) > 0 && len(others) > 0 {
		// The other items were listed from the same sources as every
		// part's: the first part's runtime stats them.
		first := r.Parts[0]
		rest := &planner.Plan{FormatVersion: planner.FormatVersion, Name: r.Name, Job: first.Plan.Job, SpecDigest: first.Plan.SpecDigest,
			BaseDir: first.Plan.BaseDir, Items: others}
		if err := planner.VerifyPlan(ctx, first.Runtime, rest); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
	}
	return nil
}

// sealOf is the seal of the header as it is now (see planner.Plan.Seal):
// base_dir is where the parts' key files and relative paths resolve.
func (sp *savedPlan) sealOf() string {
	return planner.Seal("encjob policy plan header", strconv.Itoa(sp.FormatVersion), sp.Name, sp.PolicyDigest, sp.BaseDir)
}
