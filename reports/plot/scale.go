package plot

import (
	"math"
	"strconv"
)

// ticks is an axis's tick values and their labels; the axis spans exactly
// from the first tick to the last.
type ticks struct {
	vals   []float64
	labels []string
	log    bool
}

func (t ticks) lo() float64 { return t.vals[0] }
func (t ticks) hi() float64 { return t.vals[len(t.vals)-1] }

// scale maps a data value onto [r0, r1] in SVG units.
func (t ticks) scale(v, r0, r1 float64) float64 {
	lo, hi := t.lo(), t.hi()
	if t.log {
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if math.IsInf(hi-lo, 0) {
		// An axis from near −MaxFloat64 to near +MaxFloat64: halve first.
		return r0 + (v/2-lo/2)/(hi/2-lo/2)*(r1-r0)
	}
	return r0 + (v-lo)/(hi-lo)*(r1-r0)
}

// The range a log axis accepts; beyond it powers of ten under- or overflow.
const minLog, maxLog = 1e-300, 1e300

// maxTicks bounds any tick list, whatever the data; beyond it labels would
// overlap anyway.
const maxTicks = 25

// niceStep returns the 1-2-5 step (m × 10^e, m ∈ {1, 2, 5}) closest above
// span/target, with its exponent e.
func niceStep(span float64, target int) (step float64, exp int) {
	raw := span / float64(target)
	exp = int(math.Floor(math.Log10(raw)))
	mag := math.Pow(10, float64(exp))
	for _, m := range [3]float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag, exp
		}
	}
	return 10 * mag, exp + 1
}

// linearTicks returns about target ticks at multiples of a 1-2-5 step, the
// first at or below lo and the last at or above hi.
func linearTicks(lo, hi float64, target int) ticks {
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo == hi {
		pad := math.Abs(lo) * 0.1
		if pad == 0 {
			pad = 1
		}
		lo, hi = lo-pad, hi+pad
	}
	lo, hi = math.Max(lo, -math.MaxFloat64), math.Min(hi, math.MaxFloat64)
	span := hi - lo
	if math.IsInf(span, 0) {
		// Only for values near ±MaxFloat64; halving keeps the step finite.
		return linearTicksHalved(lo, hi, target)
	}
	step, exp := niceStep(span, target)
	k0 := math.Floor(lo/step + 1e-9)
	k1 := math.Ceil(hi/step - 1e-9)
	if step == 0 || math.IsInf(step, 0) || k1-k0 >= maxTicks || k1 <= k0 {
		return ticks{vals: []float64{lo, hi}, labels: []string{formatG(lo), formatG(hi)}}
	}
	t := ticks{}
	for i := 0; i <= int(k1-k0); i++ {
		v := (k0 + float64(i)) * step
		if (i > 0 && v <= t.vals[i-1]) || math.IsInf(v, 0) {
			// Floats this large are coarser than the step (1e16 ± 4), or the
			// last tick overflows: show just the data's bounds.
			return ticks{vals: []float64{lo, hi}, labels: []string{formatG(lo), formatG(hi)}}
		}
		t.vals = append(t.vals, v)
	}
	t.labels = labels(t.vals, exp)
	return t
}

func linearTicksHalved(lo, hi float64, target int) ticks {
	t := linearTicks(lo/2, hi/2, target)
	for i := range t.vals {
		t.vals[i] *= 2
		t.labels[i] = formatG(t.vals[i])
	}
	t.vals[0] = math.Max(t.vals[0], -math.MaxFloat64)
	t.vals[len(t.vals)-1] = math.Min(t.vals[len(t.vals)-1], math.MaxFloat64)
	return t
}

// logTicks covers [lo, hi] (both within [minLog, maxLog]) with ticks at {1, 2, 5} × 10^k; at
// decades alone when that gives too many; at 1…9 × 10^k when too few. The
// axis spans from the first tick to the last, so it ends on ticks.
func logTicks(lo, hi float64) ticks {
	const fewest, most, mostDecades = 4, 10, 12
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo == hi {
		lo, hi = lo/2, hi*2
	}
	oneTwoFive := []float64{1, 2, 5}
	vals := logCandidates(snapLog(lo, oneTwoFive, false), snapLog(hi, oneTwoFive, true), oneTwoFive)
	switch {
	case len(vals) > most:
		decade := []float64{1}
		vals = logCandidates(snapLog(lo, decade, false), snapLog(hi, decade, true), decade)
		if len(vals) > mostDecades {
			vals = thin(vals, mostDecades)
		}
	case len(vals) < fewest:
		// Both bounds are {1, 2, 5} × 10^k, so they stay ticks.
		vals = logCandidates(vals[0], vals[len(vals)-1], []float64{1, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	t := ticks{vals: vals, log: true}
	for _, v := range vals {
		t.labels = append(t.labels, labels([]float64{v}, int(math.Floor(math.Log10(v)+1e-9)))[0])
	}
	return t
}

// snapLog rounds v > 0 to the nearest m × 10^k (m in mults, which holds 1)
// at or above v (up) or at or below it.
func snapLog(v float64, mults []float64, up bool) float64 {
	e := math.Floor(math.Log10(v))
	best := math.NaN()
	for p := e - 1; p <= e+1; p++ {
		for _, m := range mults {
			c := m * math.Pow(10, p)
			// !(c >= best) also holds while best is NaN.
			if up && c >= v*(1-1e-12) && !(c >= best) {
				best = c
			}
			if !up && c <= v*(1+1e-12) && !(c <= best) {
				best = c
			}
		}
	}
	return best
}

// logCandidates lists m × 10^k within [a, b] for each multiplier m, in order.
func logCandidates(a, b float64, mults []float64) []float64 {
	var vals []float64
	e0, e1 := int(math.Floor(math.Log10(a)))-1, int(math.Ceil(math.Log10(b)))
	for e := e0; e <= e1; e++ {
		for _, m := range mults {
			v := m * math.Pow(10, float64(e))
			if v >= a*(1-1e-12) && v <= b*(1+1e-12) {
				vals = append(vals, v)
			}
		}
	}
	return vals
}

// thin keeps every n-th of vals so at most about most remain, and the last,
// so the axis still covers the data.
func thin(vals []float64, most int) []float64 {
	n := (len(vals) + most - 1) / most
	var out []float64
	for i := 0; i < len(vals); i += n {
		out = append(out, vals[i])
	}
	if out[len(out)-1] != vals[len(vals)-1] {
		out = append(out, vals[len(vals)-1])
	}
	return out
}

// labels formats tick values that are multiples of 10^exp, with thousands
// written as k, M, G so training steps read "20k" rather than "20000".
func labels(vals []float64, exp int) []string {
	maxAbs := 0.0
	for _, v := range vals {
		maxAbs = math.Max(maxAbs, math.Abs(v))
	}
	unitExp, suffix := 0, ""
	switch {
	case maxAbs >= 1e12 || (maxAbs > 0 && maxAbs < 1e-6):
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = formatG(v)
		}
		return out
	case maxAbs >= 1e9:
		unitExp, suffix = 9, "G"
	case maxAbs >= 1e6:
		unitExp, suffix = 6, "M"
	case maxAbs >= 1e4:
		unitExp, suffix = 3, "k"
	}
	decimals := max(0, unitExp-exp)
	out := make([]string, len(vals))
	for i, v := range vals {
		s := strconv.FormatFloat(v/math.Pow(10, float64(unitExp)), 'f', decimals, 64)
		if s == "-"+strconv.FormatFloat(0, 'f', decimals, 64) {
			s = s[1:]
		}
		if v != 0 {
			s += suffix
		}
		out[i] = s
	}
	return out
}

// formatG formats a value in at most four significant digits, for tooltips
// and the rare tick outside what labels handles.
func formatG(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
