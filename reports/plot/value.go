package plot

import (
	"fmt"
	"math"
)

// Value is one measurement: a mean Y, optionally an interval [Lo, Hi] drawn
// as an error bar or band, or a missing measurement.
type Value struct {
	Y       float64
	Lo, Hi  float64 // the interval's absolute bounds; used only when HasErr
	HasErr  bool
	Missing bool // no measurement (a cell that failed or was excluded)
}

// V is a value without an interval.
func V(y float64) Value { return Value{Y: y} }

// MeanStd is a mean with an interval of ± one standard deviation.
func MeanStd(mean, std float64) Value {
	return Value{Y: mean, Lo: mean - std, Hi: mean + std, HasErr: true}
}

// Interval is a value with an explicit interval, e.g. a min–max over seeds
// or a bootstrap confidence interval.
func Interval(y, lo, hi float64) Value {
	return Value{Y: y, Lo: lo, Hi: hi, HasErr: true}
}

// NA is a missing value.
func NA() Value { return Value{Missing: true} }

// Axis names an axis: its title is "Label (Unit)", or Label alone when Unit
// is empty.
type Axis struct {
	Label string
	Unit  string
}

func (a Axis) title() string {
	if a.Unit == "" {
		return a.Label
	}
	if a.Label == "" {
		return "(" + a.Unit + ")"
	}
	return a.Label + " (" + a.Unit + ")"
}

// Figure is a rendered chart.
type Figure struct {
	SVG     []byte
	Skipped []Skip // values left out of the drawing, in series order
}

// Chart is any of this package's figure types.
type Chart interface {
	Render() Figure
}

// Skip reports values of one series left out of a figure for one reason.
type Skip struct {
	Series string
	// Reason is "NaN", "+Inf" or "-Inf" for the value itself; the same
	// prefixed by "x " or "interval " for its x or interval bounds (an
	// interval that cannot be drawn leaves its value drawn without one);
	// "non-positive on log axis", "beyond 1e±300 on log axis", or "no x
	// value" when a series has fewer X than Y, "no category" when it has
	// more Y than Lines has Categories.
	Reason string
	Count  int
	First  string // where the first one was, e.g. `group "res=96"` or "step 1200"
}

func (s Skip) String() string {
	noun := "values"
	if s.Count == 1 {
		noun = "value"
	}
	return fmt.Sprintf("series %q: %d %s left out (%s), first at %s", s.Series, s.Count, noun, s.Reason, s.First)
}

// skips collects Skip records, merging those of the same series and reason.
type skips struct{ list []Skip }

func (k *skips) add(series, reason, at string) {
	for i := range k.list {
		if k.list[i].Series == series && k.list[i].Reason == reason {
			k.list[i].Count++
			return
		}
	}
	k.list = append(k.list, Skip{Series: series, Reason: reason, Count: 1, First: at})
}

func (k *skips) total() int {
	n := 0
	for _, s := range k.list {
		n += s.Count
	}
	return n
}

// nonFinite names why v cannot be drawn, or returns "" when it can.
func nonFinite(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return ""
}

// check returns the value as drawable: ok is false when Y cannot be drawn
// (missing, or non-finite and then recorded in k); err is false when the
// interval cannot be drawn (absent, or non-finite and then recorded).
func (v Value) check(k *skips, series, at string) (ok, err bool) {
	if v.Missing {
		return false, false
	}
	if r := nonFinite(v.Y); r != "" {
		k.add(series, r, at)
		return false, false
	}
	if !v.HasErr {
		return true, false
	}
	for _, b := range [2]float64{v.Lo, v.Hi} {
		if r := nonFinite(b); r != "" {
			k.add(series, "interval "+r, at)
			return true, false
		}
	}
	return true, true
}
