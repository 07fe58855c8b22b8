package mixer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRandomDrawsStayWithinTheBound checks, after every one of 10 000
// draws, −1 < target − count < k−1 for every source (the package doc's
// proof), and logs the largest deviation seen.
func TestRandomDrawsStayWithinTheBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []float64
		later   []float64 // weights from draw 5000 on, if any
	}{
		{"45:45:10", []float64{45, 45, 10}, nil},
		{"1:1", []float64{1, 1}, nil},
		{"1:99", []float64{1, 99}, nil},
		{"5 sources", []float64{5, 1, 20, 3, 7}, nil},
		{"schedule 45:45:10 then 50:10:40", []float64{45, 45, 10}, []float64{50, 10, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := len(tc.weights)
			s := sampler{credit: make([]float64, k)}
			rng := rand.New(rand.NewPCG(42, 7))
			active := make([]bool, k)
			for i := range active {
				active[i] = true
			}
			p := make([]float64, k)
			target := make([]float64, k)
			count := make([]float64, k)
			worst := 0.0
			for draw := range 10_000 {
				w := tc.weights
				if tc.later != nil && draw >= 5000 {
					w = tc.later
				}
				normalise(w, active, p)
				i := s.pick(p, rng)
				count[i]++
				for j := range k {
					target[j] += p[j]
					d := target[j] - count[j]
					if d <= -1 || d >= float64(k-1) {
						t.Fatalf("draw %d, source %d: target %.3f, count %.0f: target − count outside (−1, %d)", draw, j, target[j], count[j], k-1)
					}
					worst = max(worst, math.Abs(d))
				}
			}
			for j := range k {
				if math.Abs(target[j]-count[j]) >= float64(k) {
					t.Fatalf("source %d: %v drawn, %v targeted", j, count[j], target[j])
				}
			}
			t.Logf("largest |target − count| over 10 000 draws: %.3f", worst)
		})
	}
}

// TestRandomDrawsDependOnTheSeed: ties and jitter come from the seeded
// generator, so two seeds give two orders with the same bound.
func TestRandomDrawsDependOnTheSeed(t *testing.T) {
	order := func(seed uint64) []int {
		s := sampler{credit: make([]float64, 2)}
		rng := rand.New(rand.NewPCG(seed, 0))
		var out []int
		for range 64 {
			out = append(out, s.pick([]float64{0.5, 0.5}, rng))
		}
		return out
	}
	a, b, a2 := order(1), order(2), order(1)
	if !equalInts(a, a2) {
		t.Fatal("the same seed gave two orders")
	}
	if equalInts(a, b) {
		t.Fatal("two seeds gave the same order of 64 draws")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStratifiedSplitIsExact: every batch's counts sum to B and are the
// largest-remainder rounding of its quota; where B·p is whole every batch
// is exactly B·p; target − cumulative count stays in (−1, k−1).
func TestStratifiedSplitIsExact(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []float64
		b       int
		exact   []int // every batch, when B·p is whole
	}{
		{"45:45:10 of 20", []float64{45, 45, 10}, 20, []int{9, 9, 2}},
		{"1:1 of 8", []float64{1, 1}, 8, []int{4, 4}},
		{"45:45:10 of 8", []float64{45, 45, 10}, 8, nil},
		{"1:99 of 8", []float64{1, 99}, 8, nil},
		{"5 sources of 7", []float64{5, 1, 20, 3, 7}, 7, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := len(tc.weights)
			s := sampler{credit: make([]float64, k)}
			active := make([]bool, k)
			for i := range active {
				active[i] = true
			}
			p, counts := make([]float64, k), make([]int, k)
			target, total := make([]float64, k), make([]float64, k)
			normalise(tc.weights, active, p)
			for batch := range 2000 {
				quota := make([]float64, k)
				for i := range k {
					quota[i] = float64(tc.b)*p[i] + s.credit[i]
				}
				s.split(p, tc.b, counts)
				sum := 0
				for i, c := range counts {
					sum += c
					if c < 0 || float64(c) < math.Floor(quota[i])-1e-9 || float64(c) > math.Ceil(quota[i])+1e-9 {
						t.Fatalf("batch %d source %d: %d rows for quota %.4f", batch, i, c, quota[i])
					}
					target[i] += float64(tc.b) * p[i]
					total[i] += float64(c)
					if d := target[i] - total[i]; d <= -1 || d >= float64(k-1) {
						t.Fatalf("batch %d source %d: cumulative %v rows for target %.3f", batch, i, total[i], target[i])
					}
				}
				if sum != tc.b {
					t.Fatalf("batch %d: %d rows, want %d", batch, sum, tc.b)
				}
				if tc.exact != nil && !equalInts(counts, tc.exact) {
					t.Fatalf("batch %d: %v, want %v", batch, counts, tc.exact)
				}
			}
		})
	}
}

func TestScheduleSteps(t *testing.T) {
	cfg := Config{Sources: map[string]Source{"a": {Weight: 45}, "b": {Weight: 45}, "c": {Weight: 10}},
		Schedule: []Phase{{Step: 100, Weights: map[string]float64{"a": 50, "b": 10, "c": 40}}, {Step: 200, Weights: map[string]float64{"b": 50}}}}
	names := cfg.names()
	w := make([]float64, 3)
	for _, tc := range []struct {
		interp string
		step   int64
		want   []float64
	}{
		{InterpConstant, 0, []float64{45, 45, 10}},
		{InterpConstant, 99, []float64{45, 45, 10}},
		{InterpConstant, 100, []float64{50, 10, 40}},
		{InterpConstant, 5000, []float64{50, 50, 40}},
		{InterpLinear, 50, []float64{47.5, 27.5, 25}},
		{InterpLinear, 150, []float64{50, 30, 40}},
		{InterpLinear, 300, []float64{50, 50, 40}},
	} {
		c := cfg
		c.Interpolation = tc.interp
		newSchedule(c, names).at(tc.step, w)
		for i := range w {
			if math.Abs(w[i]-tc.want[i]) > 1e-12 {
				t.Fatalf("%s at step %d: %v, want %v", tc.interp, tc.step, w, tc.want)
			}
		}
	}
}
