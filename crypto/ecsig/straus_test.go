package ecsig

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"

	"filippo.io/nistec"
)

func edgeScalars(t *testing.T) [][]byte {
	one := big.NewInt(1)
	var out [][]byte
	for _, x := range []*big.Int{new(big.Int), one, big.NewInt(2), big.NewInt(15), big.NewInt(16), big.NewInt(63), big.NewInt(64),
		new(big.Int).Sub(order, one), new(big.Int).Sub(order, big.NewInt(2)), new(big.Int).Rsh(order, 1),
		new(big.Int).Sub(new(big.Int).Lsh(one, 384), one), new(big.Int).Lsh(one, 383)} {
		out = append(out, x.FillBytes(make([]byte, scalarLen)))
	}
	out = append(out, bytes.Repeat([]byte{0x55}, scalarLen), bytes.Repeat([]byte{0xaa}, scalarLen))
	for range 200 {
		b := make([]byte, scalarLen)
		rand.Read(b)
		out = append(out, b)
	}
	return out
}

// TestWNAF: the digits add up to the scalar, each is zero or odd and
// below 2^(w-1) in magnitude, and of any w consecutive digits at most one
// is non-zero (what makes the additions one in w+1).
func TestWNAF(t *testing.T) {
	for _, w := range []uint{wQ, wG} {
		for _, k := range edgeScalars(t) {
			d := wnaf(k, w)
			sum := new(big.Int)
			for i := len(d) - 1; i >= 0; i-- {
				sum.Lsh(sum, 1).Add(sum, big.NewInt(int64(d[i])))
				if d[i] != 0 && (d[i]%2 == 0 || d[i] >= 1<<(w-1) || d[i] <= -(1<<(w-1))) {
					t.Fatalf("w=%d k=%x: digit %d at %d", w, k, d[i], i)
				}
				if d[i] != 0 {
					for j := i + 1; j < i+int(w) && j < len(d); j++ {
						if d[j] != 0 {
							t.Fatalf("w=%d k=%x: digits %d and %d both non-zero", w, k, i, j)
						}
					}
				}
			}
			if sum.Cmp(new(big.Int).SetBytes(k)) != 0 {
				t.Fatalf("w=%d k=%x: digits sum to %x", w, k, sum)
			}
			if len(d) > 0 && d[len(d)-1] == 0 {
				t.Fatalf("w=%d k=%x: leading zero digit", w, k)
			}
		}
	}
}

// TestDoubleScalarMult against nistec's constant-time ScalarBaseMult +
// ScalarMult + Add, for edge and random scalars, including the
// cancellations (u2·G = -u1·G) that end at the point at infinity.
func TestDoubleScalarMult(t *testing.T) {
	g := nistec.NewP384Point().SetGenerator()
	qs := []*nistec.P384Point{g, nistec.NewP384Point().Negate(g)}
	for range 3 {
		b := make([]byte, scalarLen)
		rand.Read(b)
		b[0] &= 0x7f // below n
		q, err := nistec.NewP384Point().ScalarBaseMult(b)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	reduce := func(b []byte) []byte {
		return new(big.Int).Mod(new(big.Int).SetBytes(b), order).FillBytes(make([]byte, scalarLen))
	}
	scalars := edgeScalars(t)
	infinities := 0
	for i, u1 := range scalars {
		u1 = reduce(u1)
		u2 := reduce(scalars[(i*7+3)%len(scalars)])
		if i%10 == 0 { // u2 = n - u1 with Q = G: the sum cancels
			u2 = new(big.Int).Mod(new(big.Int).Neg(new(big.Int).SetBytes(u1)), order).FillBytes(make([]byte, scalarLen))
		}
		for j, q := range qs {
			if i%10 == 0 && j != 0 {
				continue
			}
			got := doubleScalarMult(u1, u2, q)
			p1, err := nistec.NewP384Point().ScalarBaseMult(u1)
			if err != nil {
				t.Fatal(err)
			}
			p2, err := nistec.NewP384Point().ScalarMult(q, u2)
			if err != nil {
				t.Fatal(err)
			}
			want := p1.Add(p1, p2)
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("u1=%x u2=%x Q #%d: got %x, want %x", u1, u2, j, got.Bytes(), want.Bytes())
			}
			if want.IsInfinity() == 1 {
				infinities++
			}
		}
	}
	if infinities == 0 {
		t.Fatal("no case reached the point at infinity")
	}
}
