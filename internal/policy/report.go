package policy

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes the report as indented JSON (the `encjob check --json`
// view): format_version, policy_digest, rules, items, totals, notes.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the human report: notes, then one block per violating
// or errored item with every violation, then (when verbose) one line per
// other item, then the totals. Example:
//
//	✗ secrets/prod/db.env  rule 1 ("prod/**")
//	    - no data key under key group "prod" (message keys: encjob/dev)
//	    - encryption context key "owner" is missing
//	3 items: 1 compliant, 1 violation, 1 exempt, 0 unmatched, 0 skipped, 0 errors
func (r *Report) WriteText(w io.Writer, verbose bool) error {
	ew := &errWriter{w: w}
	for _, n := range r.Notes {
		ew.printf("note: %s\n", n)
	}
	for _, it := range r.Items {
		switch it.Status {
		case Violation:
			ew.printf("✗ %s  %s\n", it.Input, ruleRef(it))
			for _, v := range it.Violations {
				ew.printf("    - %s\n", v)
			}
		case Error:
			ew.printf("! %s  %s\n    - error: %s\n", it.Input, ruleRef(it), it.Reason)
		default:
			if !verbose {
				continue
			}
			switch it.Status {
			case Compliant:
				ew.printf("✓ %s  %s\n", it.Input, ruleRef(it))
			case Exempt:
				ew.printf("- %s  exempt by %s\n", it.Input, ruleRef(it))
			case Unmatched:
				ew.printf("- %s  no rule matches (outside the policy)\n", it.Input)
			case Skipped:
				ew.printf("- %s  skipped: %s\n", it.Input, it.Reason)
			}
		}
	}
	t := r.Totals
	ew.printf("%d items: %d compliant, %d %s, %d exempt, %d unmatched, %d skipped, %d %s\n",
		t.Items, t.Compliant, t.Violations, plural(t.Violations, "violation", "violations"),
		t.Exempt, t.Unmatched, t.Skipped, t.Errors, plural(t.Errors, "error", "errors"))
	return ew.err
}

func ruleRef(it ItemReport) string {
	if it.Rule < 0 {
		return "no rule"
	}
	return fmt.Sprintf("rule %d (%q)", it.Rule, it.Pattern)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
