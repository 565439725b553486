package ecsig

import (
	"sync"

	"filippo.io/nistec"
)

// Verification computes u1·G + u2·Q for public u1, u2 and Q, so it need
// not be constant time: one interleaved (Straus) double-and-add over the
// width-w NAFs of both scalars shares the 384 doublings between them and
// adds only at the non-zero digits, about one in w+1. nistec's constant-
// time ScalarBaseMult + ScalarMult + Add do a fixed-window pass each.
// Signing never comes here: its scalars are secret.

const (
	wG = 7 // G's table is built once: wider is fewer additions
	wQ = 5 // Q's table is built per verification: 8 points
)

// oddMultiples returns P, 3P, 5P, ..., (2^(w-1)-1)P.
func oddMultiples(p *nistec.P384Point, w uint) []*nistec.P384Point {
	t := make([]*nistec.P384Point, 1<<(w-2))
	t[0] = nistec.NewP384Point().Set(p)
	twice := nistec.NewP384Point().Double(p)
	for i := 1; i < len(t); i++ {
		t[i] = nistec.NewP384Point().Add(t[i-1], twice)
	}
	return t
}

var generatorTable = sync.OnceValue(func() []*nistec.P384Point {
	return oddMultiples(nistec.NewP384Point().SetGenerator(), wG)
})

// wnaf returns the width-w non-adjacent form of the big-endian scalar k,
// least significant digit first: k = Σ d[i]·2^i, every d[i] zero or odd
// with |d[i]| < 2^(w-1), and of any w consecutive digits at most one is
// non-zero.
func wnaf(k []byte, w uint) []int8 {
	// Little-endian 64-bit limbs with one spare for the carries that
	// negative digits cause.
	var x [scalarLen/8 + 1]uint64
	for i, b := range k {
		bit := uint(len(k)-1-i) * 8
		x[bit/64] |= uint64(b) << (bit % 64)
	}
	mask := uint64(1)<<w - 1
	out := make([]int8, 0, len(k)*8+1)
	for !isZero(x[:]) {
		var d int64
		if x[0]&1 == 1 {
			d = int64(x[0] & mask)
			if d >= 1<<(w-1) {
				d -= 1 << w
			}
			if d > 0 {
				sub(x[:], uint64(d))
			} else {
				add(x[:], uint64(-d))
			}
		}
		out = append(out, int8(d))
		shiftRight1(x[:])
	}
	return out
}

func isZero(x []uint64) bool {
	var acc uint64
	for _, l := range x {
		acc |= l
	}
	return acc == 0
}

func sub(x []uint64, v uint64) {
	for i := range x {
		old := x[i]
		x[i] -= v
		if old >= v {
			return
		}
		v = 1
	}
}

func add(x []uint64, v uint64) {
	for i := range x {
		old := x[i]
		x[i] += v
		if x[i] >= old {
			return
		}
		v = 1
	}
}

func shiftRight1(x []uint64) {
	for i := range x {
		x[i] >>= 1
		if i+1 < len(x) {
			x[i] |= x[i+1] << 63
		}
	}
}

// doubleScalarMult returns u1·G + u2·Q (the point at infinity when they
// cancel); u1 and u2 are big-endian scalars, public.
func doubleScalarMult(u1, u2 []byte, q *nistec.P384Point) *nistec.P384Point {
	tg, tq := generatorTable(), oddMultiples(q, wQ)
	d1, d2 := wnaf(u1, wG), wnaf(u2, wQ)
	acc := nistec.NewP384Point() // the point at infinity
	neg := nistec.NewP384Point()
	started := false
	addDigit := func(t []*nistec.P384Point, d int8) {
		switch {
		case d > 0:
			acc.Add(acc, t[d/2])
		case d < 0:
			acc.Add(acc, neg.Negate(t[-d/2]))
		default:
			return
		}
		started = true
	}
	for i := max(len(d1), len(d2)) - 1; i >= 0; i-- {
		if started {
			acc.Double(acc)
		}
		if i < len(d1) {
			addDigit(tg, d1[i])
		}
		if i < len(d2) {
			addDigit(tq, d2[i])
		}
	}
	return acc
}
