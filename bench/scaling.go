package main

import (
	"fmt"
	"strings"
)

// onePrefix marks the rows bench/run measures a second time on one core
// (taskset -c 0): the rows with an issue 19 target, each next to its own
// bound on that core. The two columns together are the scaling curve from
// one core to all of them, which says what a bigger machine would do with
// a row whose target is out of reach here.
const onePrefix = "1core/"

// sub is the report seen through one prefix: its rows with the prefix
// removed, so that the bound code reads them as ordinary rows.
func (r *report) sub(prefix string) *report {
	s := &report{rows: map[string]Row{}, cores: 1}
	for id, row := range r.rows {
		if rest, ok := strings.CutPrefix(id, prefix); ok {
			s.rows[rest] = row
		}
	}
	return s
}

// kmsParts are a KMS row's bound and what it is made of, all measured
// next to the row (0: not measured). The row's CPU work per file is the
// ECDSA floor's (the signatures), KMS alone's (the calls through the same
// SDK and emulator) and the plain copy's (reading, writing and committing
// the same files); at concurrency 64 each of them keeps the cores busy on
// its own, so the rates add as costs: bound = 1 / (1/floor + 1/alone +
// 1/copy), never above the latency bound. Rows measured before the copy
// term existed have no copy row and keep the two-term bound.
type kmsParts struct {
	lat, alone, floor, copy, bound float64
	// CPU seconds per file of each term's process (0: not measured).
	aloneCPU, floorCPU, copyCPU float64
}

// measured says whether the bound has its CPU terms (else it is only the
// latency bound, no figure to hold a row to).
func (b kmsParts) measured() bool { return b.alone > 0 && b.floor > 0 }

func (r *report) kmsBound(cache string, conc int) (rate float64, b kmsParts) {
	x, ok := r.get(fmt.Sprintf("kms/%s/c%d", cache, conc))
	if !ok {
		return 0, b
	}
	var calls int64
	for _, c := range x.Calls {
		calls += c
	}
	b.lat = float64(conc) / (float64(calls) / float64(x.Items) * 0.005)
	b.bound = b.lat
	if k, ok := r.get(fmt.Sprintf("kmscalls/%s/c%d", cache, conc)); ok {
		b.alone, b.aloneCPU = k.filesPerSec(), k.CPUS/float64(k.Items)
	}
	if p, ok := r.get(fmt.Sprintf("prim/kms/%s/c%d", cache, conc)); ok {
		b.floor, b.floorCPU = p.filesPerSec(), p.CPUS/float64(p.Items)
	}
	if c, ok := r.get(fmt.Sprintf("copy/kms/%s/c%d", cache, conc)); ok {
		b.copy, b.copyCPU = c.filesPerSec(), c.CPUS/float64(c.Items)
	}
	if b.measured() {
		cost := 1/b.alone + 1/b.floor
		if b.copy > 0 {
			cost += 1 / b.copy
		}
		b.bound = min(b.lat, 1/cost)
	}
	return x.filesPerSec(), b
}

func (r *report) scaling() {
	one := r.sub(onePrefix)
	if len(one.rows) == 0 {
		return
	}
	r.p("\n## Scaling from 1 core to %d\n\n", r.cores)
	r.p("The rows with a target, run again restricted to one core (`taskset -c 0`: the process, its goroutines and its system calls; "+
		"kernel writeback and journal threads may still run elsewhere), each beside its own bound measured on that core in the same run. "+
		"Same data, same concurrency. *Scaling* is the rate on %d cores ÷ the rate on 1.\n\n", r.cores)
	r.p("| Row | 1 core | bound, 1 core | ÷ bound | %d cores | bound, %d cores | ÷ bound | encjob scaling | bound scaling |\n|---|---|---|---|---|---|---|---|---|\n", r.cores, r.cores)
	line := func(name, unit string, e1, b1, e2, b2 float64) {
		if e1 <= 0 || b1 <= 0 || e2 <= 0 || b2 <= 0 {
			return
		}
		r.p("| %s | %s%s | %s | %.2f× | %s%s | %s | %.2f× | %.2f× | %.2f× |\n", name, num(e1), unit, num(b1), e1/b1, num(e2), unit, num(b2), e2/b2, e2/e1, b2/b1)
	}
	for _, row := range targetRows(r.cores) {
		conc, base := row.conc, row.base
		x1, ok1 := one.get("exec/" + base)
		x2, ok2 := r.get("exec/" + base)
		if !ok1 || !ok2 {
			continue
		}
		b1 := one.boundFor(row.set, row.suite, base, float64(x1.Bytes)/float64(max(1, x1.Items)))
		b2 := r.boundFor(row.set, row.suite, base, float64(x2.Bytes)/float64(max(1, x2.Items)))
		unit := map[bool]string{true: " files/s", false: " MB/s"}[row.set == "small"]
		name := fmt.Sprintf("%s 0x%s %s, concurrency %d", map[string]string{"small": "4 KiB files", "large": "one large file"}[row.set], row.suite, row.op, conc)
		line(name, unit, rate(row.set, x1), b1.bound, rate(row.set, x2), b2.bound)
	}
	for _, cache := range []string{"nocache", "cache"} {
		e1, b1 := one.kmsBound(cache, 64)
		e2, b2 := r.kmsBound(cache, 64)
		if b1.measured() && b2.measured() {
			line("KMS re-encryption ("+cache+"), concurrency 64", " files/s", e1, b1.bound, e2, b2.bound)
		}
	}
}
