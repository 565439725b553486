package main

import (
	"fmt"
	"slices"
	"strings"
)

// pairRounds chooses, for each row bench/run measured in rounds, the
// round the report shows. This VM's speed drifts from one minute to the
// next (the hypervisor takes 0 to 0.8 of its 2 cores: Row.Steal), so a
// row and its bounds are measured in turn, several times, and each round
// of the row is set against the bounds of its own round: the round with
// the median ratio is reported, with every round's ratio beside it
// (report.rounds). Keeping the fastest measurement of each instead
// paired one lucky bound with another round's row.
//
// A 4 KiB row's round holds exec, mem, copy, scopy and prim rows of the
// same round; one large signed file's round is the executor row between
// two SHA-384 measurements (prim-before of its round, and of the next or
// the prim after the last), whose mean is its bound.
func (r *report) pairRounds() {
	r.rounds, r.sha = map[string][]float64{}, map[string]float64{}
	byRound := map[string]map[int]Row{} // id -> round -> row
	for _, x := range r.all {
		if x.Round <= 0 || x.Seconds <= 0 {
			continue
		}
		if byRound[x.ID] == nil {
			byRound[x.ID] = map[int]Row{}
		}
		byRound[x.ID][x.Round] = x
	}
	for id, rounds := range byRound {
		base, ok := strings.CutPrefix(id, "exec/")
		if !ok || len(rounds) < 2 {
			continue
		}
		set, suite := strings.Split(base, "/")[0], strings.Split(base, "/")[1]
		type paired struct {
			round int
			q     float64
		}
		var ps []paired
		for k, x := range rounds {
			var bound float64
			if set == "large" {
				before, ok1 := byRound["prim-before/"+base][k]
				after, ok2 := byRound["prim-before/"+base][k+1]
				if !ok2 {
					after, ok2 = r.get("prim/" + base)
				}
				if !ok1 || !ok2 {
					continue
				}
				bound = (before.mbPerSec() + after.mbPerSec()) / 2
			} else {
				one := &report{rows: map[string]Row{}, cores: r.cores}
				for _, kind := range []string{"mem", "copy", "prim"} {
					if y, ok := byRound[kind+"/"+base][k]; ok {
						one.rows[kind+"/"+base] = y
					}
				}
				bound = one.boundFor(set, suite, base, float64(x.Bytes)/float64(max(1, x.Items))).bound
			}
			if bound > 0 {
				ps = append(ps, paired{k, rate(set, x) / bound})
			}
		}
		if len(ps) == 0 {
			continue
		}
		slices.SortFunc(ps, func(a, b paired) int {
			if a.q != b.q {
				if a.q < b.q {
					return -1
				}
				return 1
			}
			return a.round - b.round
		})
		med := ps[(len(ps)-1)/2]
		for _, p := range ps {
			r.rounds[base] = append(r.rounds[base], p.q)
		}
		for kind, rows := range byRound {
			if strings.HasSuffix(kind, "/"+base) {
				if y, ok := rows[med.round]; ok {
					r.rows[kind] = y
				}
			}
		}
		if set == "large" {
			before := byRound["prim-before/"+base][med.round]
			after, ok := byRound["prim-before/"+base][med.round+1]
			if !ok {
				after, _ = r.get("prim/" + base)
			}
			r.sha[base] = (before.mbPerSec() + after.mbPerSec()) / 2
		}
	}
}

// roundsNote lists a row's round ratios (ascending), or "".
func (r *report) roundsNote(base string) string {
	qs := r.rounds[base]
	if len(qs) < 2 {
		return ""
	}
	var s []string
	for _, q := range qs {
		s = append(s, fmt.Sprintf("%.2f", q))
	}
	return " (rounds " + strings.Join(s, ", ") + ")"
}
