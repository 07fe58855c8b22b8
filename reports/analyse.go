package reports

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Metric is a column of the report's tables: one task's metric on the
// scale papers print it.
type Metric struct {
	Task, Metric string
	Label        string
	// Scale multiplies the value in eval.json: CIDEr and BLEU-4 are 0–1
	// there (pycocoevalcap's scale) and printed ×100, as MM1 does; VQA
	// accuracy is already a percentage.
	Scale float64
	Unit  string // of the printed value, for plot axes
}

// knownMetrics are the metrics experiments/eval writes, in table order.
// The average is over the first of each task (CIDEr, VQA accuracy).
var knownMetrics = []Metric{
	{Task: "caption", Metric: "cider", Label: "CIDEr", Scale: 100, Unit: "×100"},
	{Task: "caption", Metric: "bleu4", Label: "BLEU-4", Scale: 100, Unit: "×100"},
	{Task: "vqa", Metric: "accuracy", Label: "VQA acc.", Scale: 1, Unit: "%"},
}

// Stat is an aggregate of one quantity over cells: the mean and its noise,
// the spread over seeds (or over evaluation trials with one seed).
type Stat struct {
	OK       bool // some cell had the quantity
	Mean     float64
	Noise    float64
	HasNoise bool
	BySeeds  bool // the noise is a spread over seeds, not over trials
	N        int  // cells aggregated
}

// Setting is the cells that differ only in seed.
type Setting struct {
	Label    string // axis=value pairs, e.g. "res=32,tokens=4"
	Axes     []Value
	Cells    []*Cell // in seed order
	Baseline bool
}

// Delta is a setting minus the baseline for one quantity.
type Delta struct {
	OK   bool
	Mean float64
	// Spread is the standard deviation of the per-seed differences
	// (HasSpread with two or more seed pairs).
	Spread    float64
	HasSpread bool
	// Paired is how many seeds both have; 0 means the difference is of
	// means over unpaired seeds.
	Paired int
	// Noise is √(σ_setting² + σ_baseline²), each σ the spread over seeds
	// (or over trials with one seed); Within when |Mean| ≤ Noise.
	Noise    float64
	HasNoise bool
	Within   bool
}

// DeltaRow is one setting against the baseline at one shot count.
type DeltaRow struct {
	Setting *Setting
	Shots   int // -1: the setting has no scores to compare at any count
	Average Delta
	Metrics []Delta // as Analysis.Metrics
}

// AxisEffect is how much an axis moved the overall average: the range of
// its marginal means against their seed spread.
type AxisEffect struct {
	Axis           int
	Range          float64
	Spread         float64 // root mean square of the marginals' noise
	HasSpread      bool
	BySeeds        bool // every marginal's noise is a spread over seeds
	Lo, Hi         int  // value indexes of the lowest and highest marginal
	LoMean, HiMean float64
}

// Analysis is what the report shows, computed from a Sweep.
type Analysis struct {
	Sweep *Sweep
	Shots []int
	// AvgMetrics are the components of the average (MM1's): CIDEr×100 and
	// VQA accuracy, those that some cell has.
	AvgMetrics []Metric
	// Metrics are every metric some cell has: known ones first.
	Metrics  []Metric
	Settings []*Setting
	Baseline *Setting // nil when the sweep names none
	Deltas   []DeltaRow
	Effects  []AxisEffect // axes with two or more values with data, in axis order
	Counts   map[State]int
	Scored   int // done cells with an average at every shot count
}

// quantity is a per-cell number with its trial noise.
type quantity func(c *Cell) (mean, std float64, ok bool)

// Analyse computes the report's numbers.
func Analyse(sw *Sweep) *Analysis {
	a := &Analysis{Sweep: sw, Counts: map[State]int{}}
	shots := map[int]bool{}
	present := map[[2]string]bool{}
	for _, c := range sw.Cells {
		a.Counts[c.State]++
		for _, s := range c.Scores {
			shots[s.Shots] = true
			present[[2]string{s.Task, s.Metric}] = true
		}
	}
	for k := range shots {
		a.Shots = append(a.Shots, k)
	}
	slices.Sort(a.Shots)
	seenTask := map[string]bool{}
	for _, m := range knownMetrics {
		if present[[2]string{m.Task, m.Metric}] {
			a.Metrics = append(a.Metrics, m)
			if !seenTask[m.Task] {
				a.AvgMetrics = append(a.AvgMetrics, m)
				seenTask[m.Task] = true
			}
			delete(present, [2]string{m.Task, m.Metric})
		}
	}
	var other []Metric
	for tm := range present {
		other = append(other, Metric{Task: tm[0], Metric: tm[1], Label: tm[0] + " " + tm[1], Scale: 1})
	}
	slices.SortFunc(other, func(x, y Metric) int { return strings.Compare(x.Label, y.Label) })
	a.Metrics = append(a.Metrics, other...)

	a.groupSettings()
	overall := a.overall()
	for _, c := range sw.Cells {
		if _, _, ok := overall(c); ok {
			a.Scored++
		}
	}
	a.compareBaseline()
	a.axisEffects()
	return a
}

// groupSettings groups cells by their axis values, in first-cell order.
func (a *Analysis) groupSettings() {
	byKey := map[string]*Setting{}
	for _, c := range a.Sweep.Cells {
		parts := make([]string, len(c.Axes))
		for i, v := range c.Axes {
			parts[i] = a.Sweep.Axes[i].Name + "=" + v.String()
		}
		key := strings.Join(parts, ",")
		s, ok := byKey[key]
		if !ok {
			s = &Setting{Label: key, Axes: c.Axes}
			byKey[key] = s
			a.Settings = append(a.Settings, s)
		}
		s.Cells = append(s.Cells, c)
		s.Baseline = s.Baseline || c.Baseline
	}
	for _, s := range a.Settings {
		slices.SortStableFunc(s.Cells, func(x, y *Cell) int { return cmp.Compare(x.Seed, y.Seed) })
		if s.Baseline && a.Baseline == nil {
			a.Baseline = s
		}
	}
	if a.Baseline == nil && len(a.Sweep.Baseline) > 0 {
		// Older or hand-written sweep.json: find the baseline by its values.
		for _, s := range a.Settings {
			match := true
			for i, ax := range a.Sweep.Axes {
				if v, ok := a.Sweep.Baseline[ax.Name]; !ok || v.String() != s.Axes[i].String() {
					match = false
				}
			}
			if match {
				s.Baseline, a.Baseline = true, s
				break
			}
		}
	}
}

// average is MM1's average at k shots: the mean of the AvgMetrics on the
// printed scale; its trial noise is that of a mean of independent values.
func (a *Analysis) average(k int) quantity {
	return func(c *Cell) (float64, float64, bool) {
		if len(a.AvgMetrics) == 0 {
			return 0, 0, false
		}
		var sum, vsum float64
		for _, m := range a.AvgMetrics {
			s, ok := c.Score(m.Task, k, m.Metric)
			if !ok {
				return 0, 0, false
			}
			sum += s.Mean * m.Scale
			vsum += (s.Std * m.Scale) * (s.Std * m.Scale)
		}
		n := float64(len(a.AvgMetrics))
		return sum / n, math.Sqrt(vsum) / n, true
	}
}

// metric is one metric at k shots on the printed scale.
func metric(m Metric, k int) quantity {
	return func(c *Cell) (float64, float64, bool) {
		s, ok := c.Score(m.Task, k, m.Metric)
		return s.Mean * m.Scale, s.Std * m.Scale, ok
	}
}

// overall is the average over every shot count: the number the summary
// ranks axes by.
func (a *Analysis) overall() quantity {
	return func(c *Cell) (float64, float64, bool) {
		if len(a.Shots) == 0 {
			return 0, 0, false
		}
		var sum, vsum float64
		for _, k := range a.Shots {
			m, s, ok := a.average(k)(c)
			if !ok {
				return 0, 0, false
			}
			sum, vsum = sum+m, vsum+s*s
		}
		n := float64(len(a.Shots))
		return sum / n, math.Sqrt(vsum) / n, true
	}
}

// perplexity is the cell's validation perplexity (no trial noise).
func perplexity(c *Cell) (float64, float64, bool) {
	return c.Perplexity, 0, !math.IsNaN(c.Perplexity) && !math.IsInf(c.Perplexity, 0)
}

// aggregate is the mean of q over cells; its noise is the standard
// deviation over seeds of the per-seed means when two or more seeds have
// the quantity, else the trial noise of the mean.
func aggregate(cells []*Cell, q quantity) Stat {
	var (
		st     Stat
		sum    float64
		vsum   float64
		bySeed = map[int64][]float64{}
		seeds  []int64
	)
	for _, c := range cells {
		m, s, ok := q(c)
		if !ok || math.IsNaN(m) || math.IsInf(m, 0) {
			continue
		}
		st.N++
		sum += m
		vsum += s * s
		if _, seen := bySeed[c.Seed]; !seen {
			seeds = append(seeds, c.Seed)
		}
		bySeed[c.Seed] = append(bySeed[c.Seed], m)
	}
	if st.N == 0 {
		return st
	}
	st.OK, st.Mean = true, sum/float64(st.N)
	if len(seeds) >= 2 {
		means := make([]float64, 0, len(seeds))
		for _, s := range seeds {
			means = append(means, mean(bySeed[s]))
		}
		st.Noise, st.BySeeds = stddev(means), true
	} else {
		st.Noise = math.Sqrt(vsum) / float64(st.N)
	}
	st.HasNoise = st.Noise > 0
	return st
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// stddev is the sample standard deviation (n−1), 0 for fewer than two.
func stddev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

// cellsWith returns the cells whose axis ai has value index vi.
func (a *Analysis) cellsWith(ai, vi int) []*Cell {
	want := a.Sweep.Axes[ai].Values[vi].String()
	var out []*Cell
	for _, c := range a.Sweep.Cells {
		if c.Axes[ai].String() == want {
			out = append(out, c)
		}
	}
	return out
}

// marginal is q marginalised over the other axes at each value of axis ai.
func (a *Analysis) marginal(ai int, q quantity) []Stat {
	out := make([]Stat, len(a.Sweep.Axes[ai].Values))
	for vi := range out {
		out[vi] = aggregate(a.cellsWith(ai, vi), q)
	}
	return out
}

// compareBaseline fills Deltas: every other setting at every shot count.
func (a *Analysis) compareBaseline() {
	if a.Baseline == nil {
		return
	}
	for _, s := range a.Settings {
		if s == a.Baseline {
			continue
		}
		var rows []DeltaRow
		scored := false
		for _, k := range a.Shots {
			row := DeltaRow{Setting: s, Shots: k, Average: delta(s.Cells, a.Baseline.Cells, a.average(k))}
			scored = scored || row.Average.OK
			for _, m := range a.Metrics {
				d := delta(s.Cells, a.Baseline.Cells, metric(m, k))
				scored = scored || d.OK
				row.Metrics = append(row.Metrics, d)
			}
			rows = append(rows, row)
		}
		if !scored {
			// One row says the setting has nothing to compare yet.
			rows = []DeltaRow{{Setting: s, Shots: -1, Metrics: make([]Delta, len(a.Metrics))}}
		}
		a.Deltas = append(a.Deltas, rows...)
	}
}

// delta compares q on a setting's cells with the baseline's, pairing
// cells of the same seed where both have the quantity.
func delta(cells, base []*Cell, q quantity) Delta {
	type val struct{ m, s float64 }
	collect := func(cs []*Cell) (map[int64]val, []int64) {
		out := map[int64]val{}
		var seeds []int64
		for _, c := range cs {
			if m, s, ok := q(c); ok {
				if _, dup := out[c.Seed]; !dup {
					seeds = append(seeds, c.Seed)
				}
				out[c.Seed] = val{m, s}
			}
		}
		return out, seeds
	}
	sv, sSeeds := collect(cells)
	bv, bSeeds := collect(base)
	if len(sv) == 0 || len(bv) == 0 {
		return Delta{}
	}
	d := Delta{OK: true}
	var diffs []float64
	for _, seed := range sSeeds {
		if b, ok := bv[seed]; ok {
			diffs = append(diffs, sv[seed].m-b.m)
		}
	}
	noise := func(m map[int64]val, seeds []int64) float64 {
		if len(seeds) == 1 {
			return m[seeds[0]].s
		}
		xs := make([]float64, len(seeds))
		for i, s := range seeds {
			xs[i] = m[s].m
		}
		return stddev(xs)
	}
	if len(diffs) > 0 {
		d.Paired, d.Mean = len(diffs), mean(diffs)
		if len(diffs) >= 2 {
			d.Spread, d.HasSpread = stddev(diffs), true
		}
	} else {
		ms := make([]float64, 0, len(sSeeds))
		for _, s := range sSeeds {
			ms = append(ms, sv[s].m)
		}
		mb := make([]float64, 0, len(bSeeds))
		for _, s := range bSeeds {
			mb = append(mb, bv[s].m)
		}
		d.Mean = mean(ms) - mean(mb)
	}
	ns, nb := noise(sv, sSeeds), noise(bv, bSeeds)
	d.Noise = math.Sqrt(ns*ns + nb*nb)
	d.HasNoise = d.Noise > 0
	d.Within = d.HasNoise && math.Abs(d.Mean) <= d.Noise
	return d
}

// axisEffects ranks how much each axis moved the overall average.
func (a *Analysis) axisEffects() {
	for ai := range a.Sweep.Axes {
		ms := a.marginal(ai, a.overall())
		e := AxisEffect{Axis: ai, Lo: -1, Hi: -1}
		var n int
		var vsum float64
		e.BySeeds = true
		for vi, st := range ms {
			if !st.OK {
				continue
			}
			n++
			e.BySeeds = e.BySeeds && st.BySeeds
			vsum += st.Noise * st.Noise
			if e.Lo < 0 || st.Mean < ms[e.Lo].Mean {
				e.Lo = vi
			}
			if e.Hi < 0 || st.Mean > ms[e.Hi].Mean {
				e.Hi = vi
			}
		}
		if n < 2 {
			continue
		}
		e.LoMean, e.HiMean = ms[e.Lo].Mean, ms[e.Hi].Mean
		e.Range = e.HiMean - e.LoMean
		e.Spread = math.Sqrt(vsum / float64(n))
		e.HasSpread = e.Spread > 0
		a.Effects = append(a.Effects, e)
	}
}
