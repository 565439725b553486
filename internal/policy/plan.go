package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// Reconciliation is what `encjob apply` of a policy does: parts that change
// items, each a job with its own runtime and plan, and the items no part
// touches. See the package documentation for how items are assigned.
type Reconciliation struct {
	Policy *spec.Policy
	// Name names the reconciliation (its part plans are Name/part);
	// BaseDir is where the policy's relative paths were resolved.
	Name, BaseDir string
	// Report is the check the reconciliation was computed from.
	Report *Report
	// Parts change items, in rule order (encrypt before reencrypt parts
	// of the same rule, reencrypt parts by decrypt key group name).
	Parts []*Part
	// Others are the items no part changes: unchanged (compliant), skip
	// (exempt, unmatched, skipped) and error (unreadable, or impossible to
	// make compliant - Reason says why). Rule is set on each.
	Others []planner.Item
}

// Part is one job of a reconciliation.
type Part struct {
	Rule   int
	Action planner.Action // planner.Encrypt or planner.Reencrypt
	// Rewrap: a reencrypt part of a rule with reencrypt.mode rewrap
	// (its items violate only key group or context).
	Rewrap bool
	// DecryptKeyGroup is the group a reencrypt part decrypts with.
	DecryptKeyGroup string
	Job             *spec.Job
	Runtime         *planner.Runtime
	Plan            *planner.Plan
}

// Name identifies the part in messages: "rule-1/encrypt",
// "rule-0/reencrypt-from-old".
func (p *Part) Name() string {
	if p.Action == planner.Reencrypt && p.Rewrap {
		return fmt.Sprintf("rule-%d/rewrap-from-%s", p.Rule, p.DecryptKeyGroup)
	}
	if p.Action == planner.Reencrypt {
		return fmt.Sprintf("rule-%d/reencrypt-from-%s", p.Rule, p.DecryptKeyGroup)
	}
	return fmt.Sprintf("rule-%d/%s", p.Rule, p.Action)
}

// PlanOptions configures Plan.
type PlanOptions struct {
	Options
	// Planner is passed to planner.Prepare for every part (its BaseDir,
	// KMS and S3Client are taken from Options when unset).
	Planner planner.Options
	// Name names the part plans (default "policy").
	Name string
}

// Plan checks every item (headers only, no KMS call except resolving
// aliases of aws-kms groups) and builds the parts that make non-compliant
// items comply. Building a part prepares its runtime (key groups: raw key
// files read, aliases resolved); a policy whose items all comply builds
// none.
func Plan(ctx context.Context, pol *spec.Policy, o PlanOptions) (*Reconciliation, error) {
	c, err := newChecker(ctx, pol, o.Options, true, true)
	if err != nil {
		return nil, err
	}
	rep, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	rec := &Reconciliation{Policy: pol, Report: rep, Name: cmp.Or(o.Name, "policy"), BaseDir: o.BaseDir}
	work := map[partKey][]planner.Listed{}
	var keys []partKey
	for i := range rep.Items {
		ir := &rep.Items[i]
		other := planner.Item{SourceIndex: ir.src, Key: ir.item.Key, Input: ir.Input, Size: ir.item.Size,
			Fingerprint: ir.item.Print, Suite: ir.Suite, KeyIDs: ir.KeyIDs, Rule: ir.Rule}
		if ir.hdr != nil {
			other.Suite = ir.hdr.Suite.Hex()
		}
		var k partKey
		switch ir.Status {
		case Compliant:
			other.Action, other.Reason = planner.Unchanged, fmt.Sprintf("complies with rule %d", ir.Rule)
		case Exempt:
			other.Action, other.Reason = planner.Skip, fmt.Sprintf("exempt by rule %d (%q)", ir.Rule, ir.Pattern)
		case Unmatched:
			other.Action, other.Reason = planner.Skip, "no rule matches (outside the policy)"
		case Skipped:
			other.Action, other.Reason = planner.Skip, ir.Reason
		case Error:
			other.Action, other.Reason = planner.Error, ir.Reason
		case Violation:
			var why string
			k, why = c.route(ir)
			if why != "" {
				other.Action, other.Reason = planner.Error, why
			}
		}
		if other.Action != "" {
			rec.Others = append(rec.Others, other)
			continue
		}
		if _, seen := work[k]; !seen {
			keys = append(keys, k)
		}
		work[k] = append(work[k], planner.Listed{Source: ir.src, Item: ir.item})
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.rule != b.rule {
			return a.rule < b.rule
		}
		if a.op != b.op {
			return a.op == planner.Encrypt
		}
		if a.dec != b.dec {
			return a.dec < b.dec
		}
		return !a.rewrap && b.rewrap
	})
	po := o.Planner
	if po.BaseDir == "" {
		po.BaseDir = o.BaseDir
	}
	if po.KMS.Clients == nil && po.KMS.Endpoint == "" && po.KMS.Credentials == nil {
		po.KMS = o.KMS
	}
	if po.S3Client == nil {
		po.S3Client = o.S3Client
	}
	for _, k := range keys {
		part, err := buildPart(ctx, pol, k, work[k], po, o, rec.Name)
		if err != nil {
			return nil, err
		}
		rec.Parts = append(rec.Parts, part)
	}
	return rec, nil
}

// buildPart prepares the runtime of one part and plans its items.
func buildPart(ctx context.Context, pol *spec.Policy, k partKey, items []planner.Listed, po planner.Options, o PlanOptions, name string) (*Part, error) {
	part := &Part{Rule: k.rule, Action: k.op, DecryptKeyGroup: k.dec, Rewrap: k.rewrap}
	var err error
	if part.Job, err = partJob(pol, k); err != nil {
		return nil, err
	}
	if part.Runtime, err = planner.Prepare(ctx, part.Job, po); err != nil {
		return nil, fmt.Errorf("policy: %s: %w", part.Name(), err)
	}
	if part.Job.Reencrypt.RequiresFull() {
		// Items routed here for their last-change violation show the
		// target state in their header: the planner must not call them
		// unchanged.
		part.Runtime.RenewDataKey = o.History.KeptDataKey
	}
	part.Plan, err = planner.BuildItems(ctx, part.Runtime, items, planner.BuildOptions{Name: name + "/" + part.Name(), Concurrency: o.Concurrency})
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", part.Name(), err)
	}
	for i := range part.Plan.Items {
		part.Plan.Items[i].Rule = k.rule
	}
	return part, nil
}

// route decides how a violating item is made compliant: its part, or why
// it cannot be.
func (c *checker) route(ir *ItemReport) (k partKey, why string) {
	rule := &c.pol.Rules[ir.Rule]
	k.rule = ir.Rule
	var missing []string
	for _, key := range sortedKeys(rule.RequireContext) {
		if rule.RequireContext[key] != nil {
			continue
		}
		if ir.hdr == nil {
			missing = append(missing, key)
		} else if _, ok := ir.hdr.Context[key]; !ok {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return k, fmt.Sprintf("rule %d requires encryption context key(s) %s with any value, which the item lacks: apply cannot invent a value; give the rule a value or add the key by hand (%s)",
			ir.Rule, strings.Join(missing, ", "), strings.Join(ir.Violations, "; "))
	}
	if ir.hdr == nil {
		k.op = planner.Encrypt
		return k, ""
	}
	k.op = planner.Reencrypt
	if why := requiredRewrapBlocked(rule, ir); why != "" {
		return k, why
	}
	k.rewrap = rule.Reencrypt.EffectiveMode() == spec.ReencryptRewrap && !slices.ContainsFunc(ir.Codes, suiteCode)
	for _, name := range decryptGroups(c.pol) {
		if g := c.groups[name]; g != nil && g.HoldsAny(ir.hdr.EncryptedDataKeys) {
			k.dec = name
			return k, ""
		}
	}
	return k, fmt.Sprintf("no data key under any decrypt key group (%s); message keys: %s",
		strings.Join(decryptGroups(c.pol), ", "), crypto.BoundedList(ir.KeyIDs, ", "))
}

// requiredRewrapBlocked says why a message that violates a rule with
// reencrypt.require rewrap cannot be made compliant by a rewrap, or "":
// a suite violation needs a full re-encryption (a rewrap keeps the
// suite), and a message a full re-encryption already wrote cannot get
// its old data key back. Either way apply must not re-encrypt it in full
// silently: the item is an error with this reason.
func requiredRewrapBlocked(rule *spec.Rule, ir *ItemReport) string {
	if !rule.Reencrypt.RequiresRewrap() {
		return ""
	}
	var suite, last []string
	for i, c := range ir.Codes {
		switch {
		case suiteCode(c):
			suite = append(suite, ir.Violations[i])
		case c == CodeLastChange:
			last = append(last, ir.Violations[i])
		}
	}
	switch {
	case len(suite) > 0:
		return fmt.Sprintf("rule %d requires a rewrap (reencrypt.require: rewrap), which keeps the suite, but only a full re-encryption fixes %s; change the rule's require or algorithm",
			ir.Rule, strings.Join(suite, "; "))
	case len(last) > 0:
		return fmt.Sprintf("rule %d: %s; apply cannot bring back the data key a full re-encryption replaced (drop require: rewrap to accept it)", ir.Rule, strings.Join(last, "; "))
	}
	return ""
}

// partKey identifies a part.
type partKey struct {
	rule   int
	op     planner.Action
	dec    string
	rewrap bool
}

// suiteCode: a violation only a new suite fixes (a rewrap keeps it).
func suiteCode(c Code) bool { return c == CodeSuite || c == CodeNotCommitting || c == CodeNotSigned }

// partJob is the job of one part: in place, under the rule's key group and
// suite, with the rule's valued context pairs.
func partJob(pol *spec.Policy, k partKey) (*spec.Job, error) {
	rule, op, dec := k.rule, k.op, k.dec
	if rule < 0 || rule >= len(pol.Rules) || pol.Rules[rule].Exempt {
		return nil, fmt.Errorf("policy: rule %d: no such rule, or an exempt one", rule)
	}
	if op != planner.Encrypt && op != planner.Reencrypt {
		return nil, fmt.Errorf("policy: rule %d: a part encrypts or re-encrypts, not %q", rule, op)
	}
	r := &pol.Rules[rule]
	s, err := crypto.ParseSuite(cmp.Or(r.Algorithm, spec.DefaultAlgorithm))
	if err != nil {
		return nil, fmt.Errorf("policy: spec.rules[%d].algorithm: %w", rule, err)
	}
	suite := s.Name
	ec := map[string]string{}
	for k, v := range r.RequireContext {
		if v != nil {
			ec[k] = *v
		}
	}
	if len(ec) == 0 {
		ec = nil
	}
	job := &spec.Job{
		Operation:            spec.Operation(op),
		Sources:              pol.Sources,
		Output:               spec.Output{InPlace: true},
		KeyGroups:            pol.KeyGroups,
		Encrypt:              spec.EncryptSettings{KeyGroup: r.KeyGroup, Context: ec, Algorithm: suite},
		CommitmentPolicy:     pol.CommitmentPolicy,
		MaxEncryptedDataKeys: pol.MaxEncryptedDataKeys,
		Caching:              pol.Caching,
		Execution:            pol.Execution,
		S3:                   pol.S3,
		KMS:                  pol.KMS,
	}
	job.Encrypt.RequiredContextKeys = r.RequiredContextKeys
	if op == planner.Reencrypt {
		// The message's context is kept; the rule's pairs are added. Its
		// required pairs, which a source may not store, are reproduced.
		job.Decrypt.KeyGroup = dec
		job.Encrypt.Context, job.Reencrypt.Add = nil, ec
		for _, k := range r.RequiredContextKeys {
			if job.Decrypt.ReproducedContext == nil {
				job.Decrypt.ReproducedContext = map[string]string{}
			}
			job.Decrypt.ReproducedContext[k] = ec[k]
		}
	}
	if k.rewrap {
		// The suite already complies: a rewrap keeps it, and so sets none.
		job.Encrypt.Algorithm = ""
		job.Reencrypt.Mode, job.Reencrypt.AllowHeaderNonceReuse = spec.ReencryptRewrap, r.Reencrypt.AllowHeaderNonceReuse
		// No fallback either: the planner makes an item it cannot
		// rewrap (message format v2 without the opt-in) an error.
		job.Reencrypt.Require = r.Reencrypt.Require
		job.Reencrypt.HeaderInPlace = r.Reencrypt.HeaderInPlace // parts are in place
	} else if op == planner.Reencrypt && r.Reencrypt.RequiresFull() {
		job.Reencrypt.Require = spec.ReencryptFull
	}
	if errs := job.Validate(nil); len(errs) > 0 {
		return nil, fmt.Errorf("policy: rule %d: the %s job it implies is invalid: %w", rule, op, errs)
	}
	job.Defaults()
	return job, nil
}

// Items returns every item of the reconciliation - the parts' and the
// others - sorted by input.
func (r *Reconciliation) Items() []planner.Item {
	var out []planner.Item
	for _, p := range r.Parts {
		out = append(out, p.Plan.Items...)
	}
	out = append(out, r.Others...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Input < out[j].Input })
	return out
}

// HasChanges reports whether applying would change anything.
func (r *Reconciliation) HasChanges() bool {
	for _, p := range r.Parts {
		if p.Plan.HasChanges() {
			return true
		}
	}
	return false
}

// Apply runs every part through executor.Apply, one after the other, and
// sums the outcomes; the others are counted as planned (errors among them
// are failures). It stops at the first part that returns an error
// (cancellation, fail-fast) and returns the summary so far with it.
// o.Metadata and o.Progress see the parts' items only.
func (r *Reconciliation) Apply(ctx context.Context, o executor.Options) (*executor.Summary, error) {
	// Every part is checked before any is applied: a stale second part
	// must not leave the first one applied alone.
	if err := r.Verify(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	sum := &executor.Summary{Done: map[planner.Action]int{}}
	for i := range r.Others {
		it := &r.Others[i]
		sum.Items++
		if it.Action == planner.Error {
			sum.Failed = append(sum.Failed, executor.Result{Item: it, Err: errors.New(it.Reason)})
			continue
		}
		sum.Done[it.Action]++
	}
	for _, p := range r.Parts {
		s, err := executor.Apply(ctx, p.Runtime, p.Plan, o)
		if s != nil {
			sum.Items += s.Items
			for a, n := range s.Done {
				sum.Done[a] += n
			}
			sum.Failed = append(sum.Failed, s.Failed...)
			sum.BytesIn += s.BytesIn
			sum.BytesOut += s.BytesOut
		}
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("policy: %s: %w", p.Name(), err)
		}
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}
