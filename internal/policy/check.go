package policy

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/encjob/encjob/crypto"
	"github.com/encjob/encjob/crypto/awskms"
	"github.com/encjob/encjob/internal/job"
	"github.com/encjob/encjob/internal/keygroup"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/sources"
	"github.com/encjob/encjob/spec"
)

// Options configures Check and Plan.
type Options struct {
	// BaseDir resolves relative source paths and key files (the spec
	// file's directory; "" = the working directory). Rules are matched
	// against the paths as written in the policy, not the resolved ones.
	BaseDir string
	// KMS settings for aws-kms key groups (tests inject Clients or
	// Endpoint and Credentials; the policy's kms section fills the rest).
	// Check uses them only with ResolveAliases.
	KMS awskms.Config
	// S3Client overrides the client built from the policy's s3 section.
	S3Client *sources.S3Client
	// ResolveAliases lets Check resolve aliases and bare key ids of aws-kms
	// key groups with DescribeKey (one KMS call each). Without it such a
	// group cannot be checked offline and its items are violations that
	// say so. Plan always resolves them.
	ResolveAliases bool
	// Concurrency of header reads (default 16).
	Concurrency int
	// History holds the metadata logs that say which action wrote each
	// message (see History): rules with reencrypt.require are audited
	// against it. Nil: only headers are judged.
	History *History
}

// Status is the verdict on one item.
type Status string

// Statuses. Only Violation and Error make a report fail.
const (
	Compliant Status = "compliant" // satisfies its rule
	Violation Status = "violation" // does not satisfy its rule (Violations say why)
	Exempt    Status = "exempt"    // an exempt rule matches: not checked
	Unmatched Status = "unmatched" // no rule matches: outside the policy
	Skipped   Status = "skipped"   // not a regular item (symlink, fifo...) or a format the check cannot read
	Error     Status = "error"     // could not be listed or read (Reason says why)
)

// Code classifies a violation, for callers that branch on it.
type Code string

// Violation codes.
const (
	CodeNotEncrypted    Code = "not-encrypted"     // not an ESDK message
	CodeKeyGroup        Code = "key-group"         // no data key under the rule's key group
	CodeKeyGroupUnknown Code = "key-group-unknown" // the group cannot be checked offline (aliases)
	CodeContextMissing  Code = "context-missing"   // a required context key is absent
	CodeContextValue    Code = "context-value"     // a required context pair has another value
	CodeContextStored   Code = "context-stored"    // a requiredContextKeys pair is stored in the header
	CodeSuite           Code = "suite"             // not the rule's suite
	CodeNotCommitting   Code = "not-committing"    // requireCommitting and a non-committing suite
	CodeNotSigned       Code = "not-signed"        // requireSigned and an unsigned suite
	CodeLastChange      Code = "last-change"       // reencrypt.require and the logged write of the message was the other kind
)

// ItemReport is the verdict on one item.
type ItemReport struct {
	// Input is the item as opened: a local path (resolved against
	// Options.BaseDir) or an s3:// URL.
	Input string `json:"input"`
	// Location is what the rules were matched against: the source path as
	// written in the policy joined with the item's key.
	Location string `json:"location"`
	// Rule is the index of the rule that applies, -1 when none; Pattern the
	// pattern of that rule that matched.
	Rule    int    `json:"rule"`
	Pattern string `json:"pattern,omitempty"`
	Status  Status `json:"status"`
	// Compliant is false exactly for violations and errors.
	Compliant  bool     `json:"compliant"`
	Violations []string `json:"violations,omitempty"`
	// Codes classify Violations, one per entry (see the Code constants).
	Codes  []Code `json:"codes,omitempty"`
	Reason string `json:"reason,omitempty"` // for skipped and error items
	// What the header showed (empty when not read or not a message).
	Encrypted bool     `json:"encrypted"`
	Suite     string   `json:"suite,omitempty"`
	KeyIDs    []string `json:"key_ids,omitempty"`
	// LastChange is the logged write of the current message (rules with
	// reencrypt.require, when Options.History has it).
	LastChange *LastChange `json:"last_change,omitempty"`

	src  int
	item sources.Item
	hdr  *crypto.Header
}

// Totals counts items per status.
type Totals struct {
	Items      int `json:"items"`
	Compliant  int `json:"compliant"`
	Violations int `json:"violations"`
	Exempt     int `json:"exempt"`
	Unmatched  int `json:"unmatched"`
	Skipped    int `json:"skipped"`
	Errors     int `json:"errors"`
}

// ReportVersion is the version of the JSON report format.
const ReportVersion = 1

// Report is the outcome of Check.
type Report struct {
	FormatVersion int    `json:"format_version"`
	PolicyDigest  string `json:"policy_digest"`
	// Rules describes each rule, by index, for the report's reader.
	Rules  []RuleSummary `json:"rules"`
	Items  []ItemReport  `json:"items"`
	Totals Totals        `json:"totals"`
	// Notes are things worth telling the user once (a key group that
	// cannot be checked offline, aliases resolved).
	Notes []string `json:"notes,omitempty"`
}

// RuleSummary is one rule as the report shows it.
type RuleSummary struct {
	Index    int      `json:"index"`
	Match    []string `json:"match"`
	Exempt   bool     `json:"exempt,omitempty"`
	Requires string   `json:"requires,omitempty"`
}

// HasViolations reports whether any item violates its rule or could not be
// read: the CLI exits non-zero.
func (r *Report) HasViolations() bool { return r.Totals.Violations+r.Totals.Errors > 0 }

// Failing returns the violating and errored items, in report order.
func (r *Report) Failing() []ItemReport {
	var out []ItemReport
	for _, it := range r.Items {
		if !it.Compliant {
			out = append(out, it)
		}
	}
	return out
}

// checker holds what Check needs for every item.
type checker struct {
	pol     *spec.Policy
	opts    Options
	m       *spec.PolicyMatcher
	suites  []*crypto.Suite            // per rule; nil for exempt rules
	groups  map[string]*keygroup.Group // groups that can be matched offline
	offline map[string]string          // group name -> why it cannot be checked
	notes   []string

	srcs []sources.Source
	locs []sources.Location // as opened (resolved)
	raw  []sources.Location // as written (for rule locations)
}

// Check audits every item of the policy's sources against its rule, from
// headers only: no decryption and no KMS call (see Options.ResolveAliases).
// pol must be valid (spec.Parse validates and applies defaults); an empty
// rule algorithm means the default suite. The error is for what stops the
// whole check (a source that cannot be listed, a bad pattern); problems of
// single items are in the report.
func Check(ctx context.Context, pol *spec.Policy, o Options) (*Report, error) {
	c, err := newChecker(ctx, pol, o, o.ResolveAliases, false)
	if err != nil {
		return nil, err
	}
	return c.run(ctx)
}

func newChecker(ctx context.Context, pol *spec.Policy, o Options, resolve, withDecrypt bool) (*checker, error) {
	m, err := pol.Matcher()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	c := &checker{pol: pol, opts: o, m: m, groups: map[string]*keygroup.Group{}, offline: map[string]string{}}
	need := []string{}
	for i, r := range pol.Rules {
		if r.Exempt {
			c.suites = append(c.suites, nil)
			continue
		}
		s, err := crypto.ParseSuite(cmp.Or(r.Algorithm, spec.DefaultAlgorithm))
		if err != nil {
			return nil, fmt.Errorf("policy: spec.rules[%d].algorithm: %w", i, err)
		}
		c.suites = append(c.suites, s)
		need = append(need, r.KeyGroup)
	}
	if withDecrypt {
		need = append(need, decryptGroups(pol)...)
	}
	for _, name := range need {
		if _, done := c.groups[name]; done {
			continue
		}
		if _, done := c.offline[name]; done {
			continue
		}
		g, why, err := offlineGroup(ctx, name, pol, o, resolve)
		switch {
		case err != nil:
			return nil, fmt.Errorf("policy: %w", err)
		case g == nil:
			c.offline[name] = why
			c.notes = append(c.notes, why)
		default:
			c.groups[name] = g
			c.notes = append(c.notes, g.Notes...)
		}
	}
	for i, r := range pol.Rules {
		if r.Reencrypt.Require != "" && o.History.Logs() == 0 {
			c.notes = append(c.notes, fmt.Sprintf("rule %d has reencrypt.require %s but no metadata log was read: items are judged by their headers alone, which cannot tell a rewrap from a full re-encryption (give the policy's metadata.output or check --history LOG)", i, r.Reencrypt.Require))
		}
	}
	for i, s := range pol.Sources {
		if s.Path == "-" {
			return nil, fmt.Errorf("policy: spec.sources[%d]: stdin cannot be a policy source", i)
		}
		raw, err := sources.Parse(s.Path)
		if err != nil {
			return nil, fmt.Errorf("policy: spec.sources[%d]: %w", i, err)
		}
		c.raw = append(c.raw, raw)
	}
	storage := job.NewStorage(o.BaseDir, pol.S3, job.StorageOptions{S3Client: o.S3Client})
	if c.srcs, c.locs, err = storage.OpenSources(ctx, pol.Sources); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return c, nil
}

// decryptGroups is the policy's decryptKeyGroups, defaulting to every key
// group by name.
func decryptGroups(pol *spec.Policy) []string {
	if len(pol.DecryptKeyGroups) > 0 {
		return pol.DecryptKeyGroups
	}
	names := make([]string, 0, len(pol.KeyGroups))
	for n := range pol.KeyGroups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// offlineGroup builds a key group that can tell from an EDK alone whether
// it is under the group, without reading key material and without calling
// KMS. It returns nil and the reason when that is impossible (an aws-kms
// group naming keys by alias or bare id, unless resolve).
func offlineGroup(ctx context.Context, name string, pol *spec.Policy, o Options, resolve bool) (*keygroup.Group, string, error) {
	g, ok := pol.KeyGroups[name]
	if !ok || g == nil {
		return nil, "", fmt.Errorf("key group %q is not defined", name)
	}
	if len(g.Members) == 0 {
		return offlineSingle(ctx, name, g, pol, o, resolve)
	}
	members := make([]*keygroup.Group, len(g.Members))
	for i := range g.Members {
		m, reason, err := offlineSingle(ctx, keygroup.MemberName(name, i), &g.Members[i], pol, o, resolve)
		if m == nil {
			return nil, reason, err
		}
		members[i] = m
	}
	built, err := keygroup.Combine(name, g, members)
	if err != nil {
		return nil, "", err
	}
	return built, "", nil
}

// offlineSingle is offlineGroup for one single-provider group (or member).
func offlineSingle(ctx context.Context, name string, g *spec.KeyGroup, pol *spec.Policy, o Options, resolve bool) (*keygroup.Group, string, error) {
	if og, ok := keygroup.Offline(name, g); ok {
		// Raw keys are matched by namespace and name, discovery groups by
		// their filter, KMS key ARNs as they are: the spec is all Holds
		// needs (no key file is read).
		return og, "", nil
	}
	var names []string
	for _, k := range g.Keys {
		if !awskms.IsKeyARN(k) {
			names = append(names, k)
		}
	}
	if len(names) > 0 && !resolve {
		return nil, fmt.Sprintf("key group %q names keys by alias or key id (%s): it cannot be checked offline; list key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID) or allow resolving aliases (one DescribeKey call each)",
			name, strings.Join(names, ", ")), nil
	}
	// With key ARNs only, keygroup.Build makes no KMS call.
	built, err := keygroup.Build(ctx, name, g, keygroup.Options{KMS: job.KMSConfig(o.KMS, pol.KMS), BaseDir: o.BaseDir})
	if err != nil {
		return nil, "", err
	}
	return built, "", nil
}

// itemPath joins a source location and an item key the way the planner
// names inputs: the directory (or prefix) the key is relative to, "/", key.
func itemPath(loc sources.Location, it sources.Item) string {
	switch loc.Kind {
	case sources.S3:
		k := loc.Key
		if it.IsSingle {
			return "s3://" + loc.Bucket + "/" + k
		}
		if loc.Glob == "" && k != "" && !strings.HasSuffix(k, "/") {
			k += "/"
		}
		return "s3://" + loc.Bucket + "/" + k + it.Key
	default:
		if it.IsSingle {
			return filepath.ToSlash(loc.Path)
		}
		return path.Join(filepath.ToSlash(loc.Path), it.Key)
	}
}

func (c *checker) run(ctx context.Context) (*Report, error) {
	rep := &Report{FormatVersion: ReportVersion, PolicyDigest: c.pol.Digest(), Notes: c.notes}
	for i, r := range c.pol.Rules {
		rep.Rules = append(rep.Rules, RuleSummary{Index: i, Match: r.Match, Exempt: r.Exempt, Requires: c.requires(i)})
	}
	for i, src := range c.srcs {
		err := src.List(ctx, func(it sources.Item) error {
			rep.Items = append(rep.Items, ItemReport{src: i, item: it})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policy: listing %s: %w", src, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	if c.opts.Concurrency > 0 {
		g.SetLimit(c.opts.Concurrency)
	}
	for i := range rep.Items {
		g.Go(func() error {
			c.check(gctx, &rep.Items[i])
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, it := range rep.Items {
		rep.Totals.Items++
		switch it.Status {
		case Compliant:
			rep.Totals.Compliant++
		case Violation:
			rep.Totals.Violations++
		case Exempt:
			rep.Totals.Exempt++
		case Unmatched:
			rep.Totals.Unmatched++
		case Skipped:
			rep.Totals.Skipped++
		default:
			rep.Totals.Errors++
		}
	}
	return rep, nil
}

// check fills in the verdict on one listed item.
func (c *checker) check(ctx context.Context, ir *ItemReport) {
	it := ir.item
	ir.Input = itemPath(c.locs[ir.src], it)
	ir.Location = itemPath(c.raw[ir.src], it)
	ir.Rule = -1
	ir.Compliant = true
	switch {
	case it.Err != nil:
		ir.Status, ir.Compliant, ir.Reason = Error, false, it.Err.Error()
		return
	case it.Skipped != "":
		ir.Status, ir.Reason = Skipped, it.Skipped
		return
	}
	idx, rule, pat := c.m.Match(ir.Location)
	ir.Rule, ir.Pattern = idx, pat
	switch {
	case rule == nil:
		ir.Status = Unmatched
		return
	case rule.Exempt:
		ir.Status = Exempt
		return
	}
	srcSpec := c.pol.Sources[ir.src]
	if srcSpec.Format == "kms" {
		ir.Status, ir.Reason = Skipped, "format kms: a KMS ciphertext blob has no readable header; not checked"
		return
	}
	h, readErr, err := readHeader(ctx, c.srcs[ir.src], it.Key, srcSpec.Encoding, c.pol.MaxEncryptedDataKeys)
	switch {
	case readErr != nil:
		ir.Status, ir.Compliant, ir.Reason = Error, false, "reading header: "+readErr.Error()
		return
	case err != nil:
		ir.Status, ir.Compliant = Violation, false
		ir.Violations = []string{"not encrypted: not an ESDK message (" + err.Error() + ")"}
		ir.Codes = []Code{CodeNotEncrypted}
		return
	}
	ir.hdr, ir.Encrypted, ir.Suite = h, true, h.Suite.Name
	for _, e := range h.EncryptedDataKeys {
		ir.KeyIDs = append(ir.KeyIDs, keygroup.EDKLabel(e))
	}
	ir.Violations, ir.Codes = c.violations(idx, h, ir.KeyIDs)
	if req := rule.Reencrypt.Require; req != "" {
		lc, found := c.opts.History.Of(h)
		if found {
			ir.LastChange = &lc
		}
		if v := lastChangeViolation(req, lc, found); v != "" {
			ir.Violations, ir.Codes = append(ir.Violations, v), append(ir.Codes, CodeLastChange)
		}
	}
	if len(ir.Violations) > 0 {
		ir.Status, ir.Compliant = Violation, false
	} else {
		ir.Status = Compliant
	}
}

// violations lists how a header fails rule i, in a fixed order.
func (c *checker) violations(i int, h *crypto.Header, keyIDs []string) (msgs []string, codes []Code) {
	add := func(code Code, format string, args ...any) {
		msgs = append(msgs, fmt.Sprintf(format, args...))
		codes = append(codes, code)
	}
	rule := &c.pol.Rules[i]
	if why, ok := c.offline[rule.KeyGroup]; ok {
		add(CodeKeyGroupUnknown, "key group unchecked: %s", why)
	} else if g := c.groups[rule.KeyGroup]; !g.HoldsAny(h.EncryptedDataKeys) {
		add(CodeKeyGroup, "no data key under key group %q (message keys: %s)", rule.KeyGroup, crypto.BoundedList(keyIDs, ", "))
	}
	for _, k := range sortedKeys(rule.RequireContext) {
		want := rule.RequireContext[k]
		got, ok := h.Context[k]
		required := slices.Contains(rule.RequiredContextKeys, k)
		switch {
		case required && ok:
			add(CodeContextStored, "encryption context key %q is stored in the header; the rule wants it authenticated only (requiredContextKeys)", k)
		case required:
			// Authenticated, not stored: only decryption proves its value.
		case !ok && want == nil:
			add(CodeContextMissing, "encryption context key %q is missing", k)
		case !ok:
			add(CodeContextMissing, "encryption context key %q is missing (want %q)", k, *want)
		case want != nil && got != *want:
			add(CodeContextValue, "encryption context %q is %q, want %q", k, got, *want)
		}
	}
	if s := c.suites[i]; h.Suite != s {
		add(CodeSuite, "suite %s, want %s", h.Suite, s)
	}
	if rule.RequireCommitting && !h.Suite.Committing {
		add(CodeNotCommitting, "suite %s is not committing", h.Suite.Name)
	}
	if rule.RequireSigned && !h.Suite.Signed() {
		add(CodeNotSigned, "suite %s is not signed", h.Suite.Name)
	}
	return msgs, codes
}

// requires describes what rule i demands, for humans.
func (c *checker) requires(i int) string {
	if r := &c.pol.Rules[i]; !r.Exempt {
		return describeRule(r)
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// recordingReader remembers the first read error other than io.EOF, so a
// storage failure is not mistaken for a malformed message.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

// readHeader parses the header at key. readErr is a storage failure; err a
// parse failure (not an ESDK message).
func readHeader(ctx context.Context, src sources.Source, key, encoding string, maxEDKs int) (h *crypto.Header, readErr, err error) {
	rc, err := src.OpenHeader(ctx, key)
	if err != nil {
		return nil, err, nil
	}
	defer rc.Close()
	rr := &recordingReader{r: rc}
	h, err = crypto.ParseHeaderLimits(bufio.NewReaderSize(planner.InputReader(rr, encoding), 4096), crypto.HeaderLimits{MaxEncryptedDataKeys: maxEDKs})
	if rr.err != nil {
		return nil, rr.err, nil
	}
	return h, nil, err
}
