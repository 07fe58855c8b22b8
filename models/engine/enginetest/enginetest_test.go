package enginetest

import (
	"math/rand/v2"
	"testing"
)

// TestGradCheckSquare checks the checker on out = x⊙x, whose gradient is
// 2x: exact passes, and a gradient off by a factor of 2 fails clearly.
func TestGradCheckSquare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		factor float64
		pass   bool
	}{{"exact", 2, true}, {"halved", 1, false}, {"doubled", 4, false}} {
		rng := rand.New(rand.NewPCG(1, 2))
		x, dx, out := Randn(rng, 10, 1), make([]float64, 10), make([]float64, 10)
		fwd := func() []float64 {
			for i, v := range x {
				out[i] = v * v
			}
			return out
		}
		bwd := func(g []float64) {
			for i, v := range x {
				dx[i] += tc.factor * v * g[i]
			}
		}
		worst, where := GradCheck(rng, fwd, bwd, []Input{{Name: "x", X: x, DX: dx}})
		if (worst < GradBound) != tc.pass || !tc.pass && (worst < 0.1 || where != "x") {
			t.Errorf("%s: worst %.3g in %q, want pass=%v", tc.name, worst, where, tc.pass)
		}
	}
}

func TestRelErrAndMaxDiff(t *testing.T) {
	for _, tc := range []struct {
		got, want    []float64
		rel, maxDiff float64
	}{
		{[]float64{1, 2}, []float64{1, 2}, 0, 0},
		{[]float64{0.5, 0}, []float64{0.25, 0}, 0.25, 0.25}, // small values: absolute
		{[]float64{110, 0}, []float64{100, 1}, 0.1, 10},     // large values: relative
	} {
		if r := RelErr(tc.got, tc.want); r != tc.rel {
			t.Errorf("RelErr(%v, %v) = %g, want %g", tc.got, tc.want, r, tc.rel)
		}
		if d := MaxDiff(tc.got, tc.want); d != tc.maxDiff {
			t.Errorf("MaxDiff(%v, %v) = %g, want %g", tc.got, tc.want, d, tc.maxDiff)
		}
	}
}

// recorder is a testing.TB that notes failures instead of reporting them.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               { r.TB.Helper() }
func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestMustPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
		fail bool
	}{
		{"matching panic", func() { panic("Forward: out has 3 values") }, false},
		{"other panic", func() { panic("something else") }, true},
		{"no panic", func() {}, true},
	} {
		r := &recorder{TB: t}
		MustPanic(r, tc.name, "out has 3", tc.f)
		if r.failed != tc.fail {
			t.Errorf("%s: failed = %v, want %v", tc.name, r.failed, tc.fail)
		}
	}
}
