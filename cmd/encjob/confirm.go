package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/encjob/encjob/planner"
)

// maxPlanLines caps the items a plan lists without -v.
const maxPlanLines = 20

// writePlanItems lists the items that change (and conflicts and errors),
// or every item with all; at most maxPlanLines unless all, then "… and N
// more". Symbols are coloured when pal is on.
func writePlanItems(w io.Writer, pal palette, p *planner.Plan, all bool) {
	shown, more := 0, 0
	for i := range p.Items {
		it := &p.Items[i]
		if !all && !it.Action.Changes() && it.Action != planner.Conflict && it.Action != planner.Error {
			continue
		}
		if !all && shown == maxPlanLines {
			more++
			continue
		}
		shown++
		line := planLine(it)
		sym := it.Action.Symbol()
		fmt.Fprintln(w, pal.symbol(sym)+strings.TrimPrefix(line, sym))
	}
	if more > 0 {
		fmt.Fprintf(w, "… and %d more (plan -v lists every item)\n", more)
	}
}

// errNoTerminal says a confirmation was needed and nobody can give it.
var errNoTerminal = errors.New("no terminal to confirm on")

// confirmApply shows what an apply that replaces data will change and asks
// for "yes" on the terminal, as terraform apply does. --auto-approve skips
// the question and is required when there is no terminal (a pipeline, a
// Kubernetes Job), so such a run never replaces data without an explicit
// flag.
func confirmApply(e *env, c *console, p *planner.Plan, autoApprove bool, what string) error {
	n := 0
	for i := range p.Items {
		if p.Items[i].Action.Changes() {
			n++
		}
	}
	var b strings.Builder
	writePlanItems(&b, newPalette(e, e.stderrFile), p, false)
	return confirm(e, c, autoApprove, what, n, b.String()+"\nPlan "+sanitize(p.Name)+": "+planCounts(p)+"\n")
}

// confirm asks whether to do what (n items; listing shows them), unless
// autoApprove.
func confirm(e *env, c *console, autoApprove bool, what string, n int, listing string) error {
	if autoApprove || n == 0 {
		return nil
	}
	ask := e.confirm
	if ask == nil && isTerminal(e.stderrFile) {
		ask = ttyConfirm
	}
	if ask == nil {
		return usageErrorf("--auto-approve", "this apply would %s (%d items) and there is no terminal to confirm on", what, n).
			withHint("review it with encjob plan, then pass --auto-approve")
	}
	c.mu.Lock()
	c.clearLine()
	fmt.Fprintf(c.w, "encjob will %s:\n%s", what, listing)
	c.mu.Unlock()
	yes, err := ask(fmt.Sprintf("Do you want to %s (%d items)? Only 'yes' will be accepted: ", what, n))
	if err != nil {
		return usageErrorf("--auto-approve", "asking for confirmation: %v", err)
	}
	if !yes {
		return &exitError{Code: exitFailed, Err: errors.New("apply cancelled; nothing was changed")}
	}
	return nil
}

// ttyConfirm asks on /dev/tty and accepts only "yes".
func ttyConfirm(q string) (bool, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false, errNoTerminal
	}
	defer tty.Close()
	fmt.Fprint(tty, q)
	var line [64]byte
	n, err := tty.Read(line[:])
	if err != nil && n == 0 {
		return false, err
	}
	return strings.TrimSpace(string(line[:n])) == "yes", nil
}
