package plot

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// isNiceStep reports whether step is 1, 2 or 5 times a power of ten.
func isNiceStep(step float64) bool {
	e := math.Floor(math.Log10(step) + 1e-9)
	m := step / math.Pow(10, e)
	for _, want := range []float64{1, 2, 5, 10} {
		if math.Abs(m-want) < 1e-6 {
			return true
		}
	}
	return false
}

func checkLinear(t *testing.T, lo, hi float64, tk ticks) {
	t.Helper()
	n := len(tk.vals)
	if n < 2 || n > maxTicks || len(tk.labels) != n {
		t.Fatalf("[%g, %g]: %d ticks, %d labels", lo, hi, n, len(tk.labels))
	}
	if tk.lo() > lo || tk.hi() < hi {
		t.Errorf("[%g, %g]: ticks %v do not cover the data", lo, hi, tk.vals)
	}
	step := tk.vals[1] - tk.vals[0]
	if !isNiceStep(step) {
		t.Errorf("[%g, %g]: step %g is not 1, 2 or 5 × 10^k", lo, hi, step)
	}
	for i := 1; i < n; i++ {
		if d := tk.vals[i] - tk.vals[i-1]; math.Abs(d-step) > 1e-9*math.Max(1, math.Abs(tk.vals[i])) {
			t.Errorf("[%g, %g]: uneven steps %v", lo, hi, tk.vals)
		}
		if r := math.Mod(math.Abs(tk.vals[i])/step+1e-6, 1); r > 1e-5 {
			t.Errorf("[%g, %g]: tick %g is not a multiple of the step %g", lo, hi, tk.vals[i], step)
		}
	}
	// The axis is not much wider than the data: at most one step on each side.
	if tk.lo() < lo-step*(1+1e-9) || tk.hi() > hi+step*(1+1e-9) {
		t.Errorf("[%g, %g]: ticks %v overshoot by more than a step", lo, hi, tk.vals)
	}
	seen := map[string]bool{}
	for _, l := range tk.labels {
		if seen[l] {
			t.Errorf("[%g, %g]: duplicate label %q in %v", lo, hi, l, tk.labels)
		}
		seen[l] = true
	}
}

func TestLinearTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []float64
		labels []string
	}{
		{0, 38.5, []float64{0, 10, 20, 30, 40}, []string{"0", "10", "20", "30", "40"}},
		{-4.1, 2.2, []float64{-6, -4, -2, 0, 2, 4}, nil},
		{0, 1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 50000, []float64{0, 10000, 20000, 30000, 40000, 50000}, []string{"0", "10k", "20k", "30k", "40k", "50k"}},
		{3, 3, []float64{2.6, 2.8, 3, 3.2, 3.4}, nil},
		{0, 0, []float64{-1, -0.5, 0, 0.5, 1}, nil},
	}
	for _, tt := range tests {
		got := linearTicks(tt.lo, tt.hi, 5)
		if len(got.vals) != len(tt.want) {
			t.Errorf("[%g, %g]: ticks %v, want %v", tt.lo, tt.hi, got.vals, tt.want)
			continue
		}
		for i := range tt.want {
			if math.Abs(got.vals[i]-tt.want[i]) > 1e-9 {
				t.Errorf("[%g, %g]: ticks %v, want %v", tt.lo, tt.hi, got.vals, tt.want)
				break
			}
		}
		if tt.labels != nil && !slices.Equal(got.labels, tt.labels) {
			t.Errorf("[%g, %g]: labels %q, want %q", tt.lo, tt.hi, got.labels, tt.labels)
		}
	}
}

func TestLinearTicksRandomRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 2000 {
		scale := math.Pow(10, float64(r.IntN(16)-8))
		a, b := (r.Float64()*2-1)*scale*10, (r.Float64()*2-1)*scale*10
		lo, hi := math.Min(a, b), math.Max(a, b)
		if lo == hi {
			continue
		}
		for _, target := range []int{3, 5, 8} {
			checkLinear(t, lo, hi, linearTicks(lo, hi, target))
		}
	}
}

func TestLinearTicksExtremes(t *testing.T) {
	for _, r := range [][2]float64{{-math.MaxFloat64, math.MaxFloat64}, {1e300, 1e300}, {5e-324, 1e-323}, {1e16, 1e16 + 4}} {
		tk := linearTicks(r[0], r[1], 5)
		if len(tk.vals) < 2 || len(tk.labels) != len(tk.vals) || tk.lo() > r[0] || tk.hi() < r[1] {
			t.Errorf("%v: ticks %v labels %v", r, tk.vals, tk.labels)
		}
	}
}

func TestLogTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		labels []string
	}{
		{8.2, 930, []string{"5", "10", "20", "50", "100", "200", "500", "1000"}},
		{1, 1e6, []string{"1", "10", "100", "1000", "10k", "100k", "1M"}},
		{3e-290, 4e290, nil},
		{22, 48, []string{"20", "30", "40", "50"}},
		{0.013, 0.9, []string{"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"}},
	}
	for _, tt := range tests {
		got := logTicks(tt.lo, tt.hi)
		if tt.labels != nil && !slices.Equal(got.labels, tt.labels) {
			t.Errorf("[%g, %g]: labels %q, want %q", tt.lo, tt.hi, got.labels, tt.labels)
		}
		if got.lo() > tt.lo || got.hi() < tt.hi {
			t.Errorf("[%g, %g]: ticks %v do not cover the data", tt.lo, tt.hi, got.vals)
		}
	}
	r := rand.New(rand.NewPCG(3, 5))
	for range 1000 {
		a, b := math.Pow(10, r.Float64()*40-20), math.Pow(10, r.Float64()*40-20)
		if r.IntN(4) == 0 {
			b = a * (1 + r.Float64()) // within one decade
		}
		lo, hi := math.Min(a, b), math.Max(a, b)
		tk := logTicks(lo, hi)
		if len(tk.vals) < 2 || len(tk.vals) > 14 || tk.lo() > lo || tk.hi() < hi || !slices.IsSorted(tk.vals) {
			t.Fatalf("[%g, %g]: ticks %v", lo, hi, tk.vals)
		}
		for _, v := range tk.vals {
			if m := v / math.Pow(10, math.Floor(math.Log10(v)+1e-9)); math.Abs(m-math.Round(m)) > 1e-6 {
				t.Errorf("[%g, %g]: tick %g is not a digit times a power of ten", lo, hi, v)
			}
		}
	}
}

func TestDownsample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{0, 1, 5, 400, 401, 1000, 12345} {
		pts := make([]xy, n)
		for i := range pts {
			pts[i] = xy{float64(i), r.NormFloat64()}
		}
		got := downsample(pts, 400)
		if n <= 400 {
			if len(got) != n {
				t.Errorf("n=%d: kept %d points, want all", n, len(got))
			}
			continue
		}
		if len(got) > 400 {
			t.Errorf("n=%d: kept %d points, want at most 400", n, len(got))
		}
		if got[0] != pts[0] || got[len(got)-1] != pts[n-1] {
			t.Errorf("n=%d: first or last point dropped", n)
		}
		if !slices.IsSortedFunc(got, func(a, b xy) int { return int(a.x - b.x) }) {
			t.Errorf("n=%d: order not kept", n)
		}
		ys := func(p []xy) (lo, hi float64) {
			lo, hi = math.Inf(1), math.Inf(-1)
			for _, q := range p {
				lo, hi = math.Min(lo, q.y), math.Max(hi, q.y)
			}
			return
		}
		wlo, whi := ys(pts)
		glo, ghi := ys(got)
		if wlo != glo || whi != ghi {
			t.Errorf("n=%d: extremes [%v, %v] became [%v, %v]", n, wlo, whi, glo, ghi)
		}
	}
}
