package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/encjob/encjob/executor"
	"github.com/encjob/encjob/planner"
	"github.com/encjob/encjob/spec"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	return isTerminalFd(f.Fd())
}

func isTerminalFd(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	return err == nil
}

// console writes the human view on stderr: notes, errors, hints, the
// progress line and the summary.
type console struct {
	mu        sync.Mutex
	w         io.Writer
	quiet     bool
	verbosity int
	lineShown bool // a progress line is on screen
}

// printf writes one human line; its arguments are sanitized (names and
// errors from outside never reach the terminal raw).
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLine()
	fmt.Fprintf(c.w, format, safeArgs(args)...)
}

func (c *console) clearLine() {
	if c.lineShown {
		fmt.Fprint(c.w, "\r\x1b[K")
		c.lineShown = false
	}
}

func (c *console) note(format string, args ...any) {
	if !c.quiet {
		c.printf("encjob: "+format+"\n", args...)
	}
}

// errorf prints an error (one line per entry of a spec error list) and
// its hint.
func (c *console) errorf(err error) {
	var list spec.ErrorList
	if errors.As(err, &list) && len(list) > 1 {
		// A spec error list is one line per problem.
		for _, line := range strings.Split(err.Error(), "\n") {
			c.printf("encjob: error: %s\n", line)
		}
	} else {
		c.printf("encjob: error: %s\n", err.Error())
	}
	if h := hintOf(err); h != "" {
		c.printf("encjob: hint: %s\n", h)
	}
}

// progress is the live line: items done/total, bytes read of the total
// (counting items still running, so one big file moves the line), the
// percentage, throughput and an ETA rounded to seconds.
type progress struct {
	c          *console
	start      time.Time
	total      int   // changing items
	totalBytes int64 // their listed sizes (unknown sizes count 0)
	read       atomic.Int64
	mu         sync.Mutex
	done       int
	failed     int
	stop       chan struct{}
	stopped    sync.WaitGroup
}

func newProgress(c *console, p *planner.Plan) *progress {
	pr := &progress{c: c, start: time.Now(), stop: make(chan struct{})}
	for _, it := range p.Items {
		if it.Action.Changes() {
			pr.total++
			if it.Size > 0 {
				pr.totalBytes += it.Size
			}
		}
	}
	return pr
}

// bytesRead is executor.Options.BytesRead.
func (p *progress) bytesRead(n int) { p.read.Add(int64(n)) }

func (p *progress) observe(r executor.Result) {
	if !r.Item.Action.Changes() || r.NotStarted {
		return
	}
	p.mu.Lock()
	p.done++
	if r.Err != nil {
		p.failed++
	}
	p.mu.Unlock()
}

// run redraws the line until stopped.
func (p *progress) run() {
	p.stopped.Add(1)
	go func() {
		defer p.stopped.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				p.c.mu.Lock()
				p.c.clearLine()
				p.c.mu.Unlock()
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

func (p *progress) finish() {
	close(p.stop)
	p.stopped.Wait()
}

func (p *progress) draw() {
	p.mu.Lock()
	done, failed := p.done, p.failed
	p.mu.Unlock()
	line := progressLine(done, p.total, failed, p.read.Load(), p.totalBytes, time.Since(p.start))
	p.c.mu.Lock()
	fmt.Fprint(p.c.w, "\r\x1b[K"+line)
	p.c.lineShown = true
	p.c.mu.Unlock()
}

// progressLine renders "3/10 items, 1.5 MiB of 4.0 MiB (37%), 2.0 MiB/s,
// ETA 1s". Bytes re-read by a retry may pass the total: the shown figure
// is capped. Without sizes the percentage and ETA follow the item count.
func progressLine(done, total, failed int, read, totalBytes int64, el time.Duration) string {
	if totalBytes > 0 && read > totalBytes {
		read = totalBytes
	}
	rate := float64(read) / max(el.Seconds(), 0.001)
	pct, eta := 0.0, "?"
	switch {
	case totalBytes > 0:
		pct = 100 * float64(read) / float64(totalBytes)
		if read > 0 {
			eta = fmtETA(time.Duration(float64(totalBytes-read) / rate * float64(time.Second)))
		}
	case total > 0:
		pct = 100 * float64(done) / float64(total)
		if done > 0 {
			eta = fmtETA(time.Duration(float64(total-done) * float64(el) / float64(done)))
		}
	}
	line := fmt.Sprintf("%d/%d items, %s of %s (%.0f%%), %s/s, ETA %s", done, total, fmtBytes(read), fmtBytes(totalBytes), pct, fmtBytes(int64(rate)), eta)
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	return line
}

// fmtETA rounds an estimate to whole seconds ("1m5s", "0s"): tenths of a
// second in an estimate are noise.
func fmtETA(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

var actionWords = map[planner.Action]string{
	planner.Encrypt: "encrypted", planner.Decrypt: "decrypted", planner.Reencrypt: "re-encrypted", planner.Rewrap: "rewrapped",
	planner.Unchanged: "unchanged", planner.Skip: "skipped", planner.Conflict: "conflicts", planner.Error: "errors",
}

// planCounts renders "2 to encrypt (+), 1 unchanged (=), …".
func planCounts(p *planner.Plan) string {
	c := p.Counts()
	words := map[planner.Action]string{planner.Encrypt: "to encrypt", planner.Decrypt: "to decrypt", planner.Reencrypt: "to re-encrypt", planner.Rewrap: "to rewrap",
		planner.Unchanged: "unchanged", planner.Skip: "skipped", planner.Conflict: "conflicts", planner.Error: "errors"}
	var parts []string
	for _, a := range planner.Actions {
		parts = append(parts, fmt.Sprintf("%d %s (%s)", c[a], words[a], a.Symbol()))
	}
	return strings.Join(parts, ", ")
}

// planLine is one item of `plan -v`.
func planLine(it *planner.Item) string {
	s := it.Action.Symbol() + " " + sanitize(it.Input)
	if it.Output != "" && (it.Action.Changes() || it.Action == planner.Conflict || it.Action == planner.Unchanged) {
		s += " -> " + sanitize(it.Output)
	}
	if r := itemReason(it); r != "" {
		s += "  (" + sanitize(r) + ")"
	}
	return s
}

func itemReason(it *planner.Item) string {
	r := it.Reason
	var extra []string
	if len(it.MissingContextKeys) > 0 {
		extra = append(extra, "missing keys: "+strings.Join(it.MissingContextKeys, ", "))
	}
	for _, p := range it.MissingContextPairs {
		extra = append(extra, fmt.Sprintf("missing pair: %s=%s", p[0], p[1]))
	}
	if len(extra) > 0 {
		r += "; " + strings.Join(extra, "; ")
	}
	return r
}

// contextSkip reports an item skipped because its encryption context did
// not match what was required (what counts toward exit code 1).
func contextSkip(it *planner.Item) bool {
	return it.Action == planner.Skip && len(it.MissingContextKeys)+len(it.MissingContextPairs) > 0
}

// printSummary writes the final summary: counts per action, bytes,
// elapsed time, then failed, conflicting and skipped items with causes.
func printSummary(c *console, p *planner.Plan, sum *executor.Summary, interrupted bool) {
	var parts []string
	for _, a := range planner.Actions {
		if a == planner.Error {
			continue
		}
		if n := sum.Done[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", n, actionWords[a], a.Symbol()))
		}
	}
	parts = append(parts, fmt.Sprintf("%d failed (x)", len(sum.Failed)))
	if sum.NotStarted > 0 {
		parts = append(parts, fmt.Sprintf("%d not started", sum.NotStarted))
	}
	head := "done"
	if interrupted {
		head = "interrupted"
	}
	c.printf("encjob: %s: %s; %s in, %s out, %s\n", head, strings.Join(parts, ", "),
		fmtBytes(sum.BytesIn), fmtBytes(sum.BytesOut), fmtDuration(sum.Elapsed))
	failed := append([]executor.Result(nil), sum.Failed...)
	sort.Slice(failed, func(i, j int) bool { return failed[i].Item.Input < failed[j].Item.Input })
	const maxListed = 50
	for i, r := range failed {
		if i == maxListed {
			c.printf("  … and %d more failures (see the metadata log)\n", len(failed)-maxListed)
			break
		}
		c.printf("  failed: %s: %v\n", r.Item.Input, r.Err)
	}
	var conflicts, skipped []*planner.Item
	for i := range p.Items {
		switch it := &p.Items[i]; it.Action {
		case planner.Conflict:
			conflicts = append(conflicts, it)
		case planner.Skip:
			skipped = append(skipped, it)
		}
	}
	for i, it := range conflicts {
		if i == maxListed {
			c.printf("  … and %d more conflicts\n", len(conflicts)-maxListed)
			break
		}
		c.printf("  conflict: %s -> %s: %s\n", it.Input, it.Output, it.Reason)
	}
	if c.quiet {
		return
	}
	for i, it := range skipped {
		if i == maxListed {
			c.printf("  … and %d more skipped\n", len(skipped)-maxListed)
			break
		}
		c.printf("  skipped: %s: %s\n", it.Input, itemReason(it))
	}
}
