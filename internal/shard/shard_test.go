package shard

import (
	"errors"
	"fmt"
	"testing"
)

// The hash is part of the on-disk contract (a re-run of one index must
// pick the items that index had): these values were checked against
// `printf %s ID | sha256sum` and must never change.
func TestGolden(t *testing.T) {
	cases := []struct {
		id       string
		hash     uint64
		of2, of7 int
		of1000   int
	}{
		{"", 0xe3b0c44298fc1c14, 0, 1, 652},
		{"a", 0xca978112ca1bbdca, 0, 4, 250},
		{"s3://bucket/invoices/a.csv", 0x07ee8e590fe88af1, 1, 1, 377},
		{"s3://bucket/invoices/b.csv", 0xd03b0daf14fd757c, 0, 5, 284},
		{"data/x/y.txt", 0xe43144ad3b620cdb, 1, 1, 91},
		{"s3://acme-data/2024/01/part-000001.parquet", 0x0b1ad5f6b830be46, 0, 0, 638},
	}
	for _, c := range cases {
		if got := Hash(c.id); got != c.hash {
			t.Errorf("Hash(%q) = %016x, want %016x", c.id, got, c.hash)
		}
		for _, n := range []struct{ count, want int }{{2, c.of2}, {7, c.of7}, {1000, c.of1000}} {
			if got := Of(c.id, n.count); got != n.want {
				t.Errorf("Of(%q, %d) = %d, want %d", c.id, n.count, got, n.want)
			}
			if !(Spec{Index: n.want, Count: n.count}).Owns(c.id) {
				t.Errorf("shard %d/%d does not own %q", n.want, n.count, c.id)
			}
		}
	}
}

func identities(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		// Near-identical keys, the hard case for weak hashes.
		ids[i] = fmt.Sprintf("s3://acme-data/exports/2024/part-%07d.csv", i)
	}
	return ids
}

// Every identity is owned by exactly one shard, for several counts, and
// the shards are balanced within 5% of the mean.
func TestPartitionAndBalance(t *testing.T) {
	ids := identities(100_000)
	for _, n := range []int{1, 2, 3, 7, 10, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sizes := make([]int, n)
			for _, id := range ids {
				owners := 0
				for i := range n {
					if (Spec{Index: i, Count: n}).Owns(id) {
						owners++
						sizes[i]++
					}
				}
				if owners != 1 {
					t.Fatalf("%q is owned by %d of %d shards, want 1", id, owners, n)
				}
			}
			total, mean := 0, float64(len(ids))/float64(n)
			for i, s := range sizes {
				total += s
				if d := (float64(s) - mean) / mean; d > 0.05 || d < -0.05 {
					t.Errorf("shard %d/%d has %d items, %.1f%% off the mean %.0f", i, n, s, 100*d, mean)
				}
			}
			if total != len(ids) {
				t.Errorf("shards hold %d items in total, want %d", total, len(ids))
			}
		})
	}
}

func TestUnsharded(t *testing.T) {
	for _, s := range []Spec{{}, {Index: 0, Count: 1}} {
		if s.Sharded() {
			t.Errorf("%v.Sharded() = true", s)
		}
		for _, id := range identities(100) {
			if !s.Owns(id) {
				t.Fatalf("%+v does not own %q", s, id)
			}
		}
	}
}

func TestParse(t *testing.T) {
	good := map[string]Spec{
		"0/1":          {0, 1},
		"0/4":          {0, 4},
		"3/4":          {3, 4},
		"07/10":        {7, 10},
		"99999/100000": {99999, 100000},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("Parse(%q).Validate() = %v", in, err)
		}
	}
	bad := map[string]error{
		"":                       ErrSyntax,
		"3":                      ErrSyntax,
		"1/":                     ErrSyntax,
		"/4":                     ErrSyntax,
		"-1/4":                   ErrSyntax,
		"+1/4":                   ErrSyntax,
		" 1/4":                   ErrSyntax,
		"1/4 ":                   ErrSyntax,
		"1/4/5":                  ErrSyntax,
		"a/b":                    ErrSyntax,
		"1_0/20":                 ErrSyntax,
		"4/4":                    ErrRange,
		"5/4":                    ErrRange,
		"0/0":                    ErrRange,
		"0/100001":               ErrRange,
		"0/99999999999999999999": ErrRange,
	}
	for in, want := range bad {
		got, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %v, %v; want a *shard.Error wrapping %v", in, got, err, want)
			continue
		}
		if e.Source != "--shard" || e.Value != in || e.Detail == "" {
			t.Errorf("Parse(%q): error %+v does not name the flag, the value and a fix", in, e)
		}
		if got != (Spec{}) {
			t.Errorf("Parse(%q) returned %v with an error", in, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/1", "3/4", "4/4", "x", "12/100000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			if s != (Spec{}) {
				t.Fatalf("Parse(%q) returned %v with error %v", in, s, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %v, invalid: %v", in, s, err)
		}
		if again, err := Parse(s.String()); err != nil || again != s {
			t.Fatalf("Parse(String(%v)) = %v, %v", s, again, err)
		}
	})
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	good := []struct {
		name  string
		env   map[string]string
		count int
		want  Spec
		ok    bool
	}{
		{"not a shard", nil, 4, Spec{}, false},
		{"count alone is not a shard", map[string]string{EnvCount: "4"}, 0, Spec{}, false},
		{"empty index is unset", map[string]string{EnvK8sIndex: ""}, 4, Spec{}, false},
		{"kubernetes", map[string]string{EnvK8sIndex: "3"}, 4, Spec{3, 4}, true},
		{"batch", map[string]string{EnvBatchIndex: "0"}, 2, Spec{0, 2}, true},
		{"both agree", map[string]string{EnvK8sIndex: "1", EnvBatchIndex: "1"}, 2, Spec{1, 2}, true},
		{"count from env", map[string]string{EnvK8sIndex: "5", EnvCount: "6"}, 0, Spec{5, 6}, true},
		{"flag beats env count", map[string]string{EnvK8sIndex: "5", EnvCount: "3"}, 6, Spec{5, 6}, true},
		{"one shard", map[string]string{EnvK8sIndex: "0"}, 1, Spec{0, 1}, true},
	}
	for _, c := range good {
		got, ok, err := FromEnv(env(c.env), c.count)
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("%s: FromEnv = %v, %v, %v; want %v, %v, nil", c.name, got, ok, err, c.want, c.ok)
		}
	}
	bad := []struct {
		name   string
		env    map[string]string
		count  int
		source string
		err    error
	}{
		{"no count", map[string]string{EnvK8sIndex: "0"}, 0, EnvK8sIndex, ErrNoCount},
		{"index too big", map[string]string{EnvK8sIndex: "4"}, 4, EnvK8sIndex, ErrRange},
		{"batch index too big", map[string]string{EnvBatchIndex: "9"}, 4, EnvBatchIndex, ErrRange},
		{"index not a number", map[string]string{EnvK8sIndex: "one"}, 4, EnvK8sIndex, ErrSyntax},
		{"negative index", map[string]string{EnvBatchIndex: "-1"}, 4, EnvBatchIndex, ErrSyntax},
		{"env count not a number", map[string]string{EnvK8sIndex: "0", EnvCount: "four"}, 0, EnvCount, ErrSyntax},
		{"env count zero", map[string]string{EnvK8sIndex: "0", EnvCount: "0"}, 0, EnvCount, ErrRange},
		{"flag count negative", map[string]string{EnvK8sIndex: "0"}, -2, "--shards", ErrRange},
		{"flag count too big", map[string]string{EnvK8sIndex: "0"}, MaxCount + 1, "--shards", ErrRange},
		{"disagreeing indexes", map[string]string{EnvK8sIndex: "1", EnvBatchIndex: "2"}, 4, EnvK8sIndex, ErrConflict},
	}
	for _, c := range bad {
		got, ok, err := FromEnv(env(c.env), c.count)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, c.err) || e.Source != c.source {
			t.Errorf("%s: FromEnv = %v, %v, %v; want a *shard.Error from %s wrapping %v", c.name, got, ok, err, c.source, c.err)
			continue
		}
		if ok || got != (Spec{}) {
			t.Errorf("%s: FromEnv returned %v, %v with an error", c.name, got, ok)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, s := range []Spec{{0, 0}, {-1, 3}, {3, 3}, {0, MaxCount + 1}} {
		if err := s.Validate(); !errors.Is(err, ErrRange) {
			t.Errorf("%+v.Validate() = %v, want ErrRange", s, err)
		}
	}
}

func BenchmarkOwns(b *testing.B) {
	s := Spec{Index: 1, Count: 16}
	id := "s3://acme-data/exports/2024/part-0000001.csv"
	for b.Loop() {
		s.Owns(id)
	}
}
