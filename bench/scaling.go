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

// kmsBound is a KMS row's bound (see kmsRow): min(latency bound,
// 1/(1/ECDSA floor + 1/KMS alone)), 0 if a part is missing.
func (r *report) kmsBound(cache string, conc int) (rate, bound float64) {
	x, ok1 := r.get(fmt.Sprintf("kms/%s/c%d", cache, conc))
	k, ok2 := r.get(fmt.Sprintf("kmscalls/%s/c%d", cache, conc))
	p, ok3 := r.get(fmt.Sprintf("prim/kms/%s/c%d", cache, conc))
	if !ok1 || !ok2 || !ok3 {
		return 0, 0
	}
	var calls int64
	for _, c := range x.Calls {
		calls += c
	}
	lat := float64(conc) / (float64(calls) / float64(x.Items) * 0.005)
	return x.filesPerSec(), min(lat, 1/(1/k.filesPerSec()+1/p.filesPerSec()))
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
		line("KMS re-encryption ("+cache+"), concurrency 64", " files/s", e1, b1, e2, b2)
	}
}
