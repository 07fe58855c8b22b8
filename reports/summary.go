package reports

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Summary is the report's one-paragraph reading of the numbers: how far the
// sweep got, which axis moved the average most (the range of its marginal
// means against their seed spread), how far each other axis moved it or
// that it barely did (a range within the seed spread), and the best
// setting.
func Summary(a *Analysis) string {
	sw := a.Sweep
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d cells finished", a.Counts[StateDone], len(sw.Cells))
	var rest []string
	for _, st := range []State{StateFailed, StateRunning, StatePending} {
		if n := a.Counts[st]; n > 0 {
			rest = append(rest, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(rest) > 0 {
		b.WriteString(" (" + strings.Join(rest, ", ") + ")")
	}
	if a.Scored < a.Counts[StateDone] {
		fmt.Fprintf(&b, "; %d of the finished have scores at every shot count", a.Scored)
	}
	b.WriteString(".")
	if a.Scored == 0 {
		b.WriteString(" No cell has scores yet, so nothing can be compared.")
		return b.String()
	}
	fmt.Fprintf(&b, " The score is MM1's average (mean of %s) over %s shots.", andList(avgNames(a.AvgMetrics)), andList(intStrings(a.Shots)))

	effects := slices.Clone(a.Effects)
	// Widest range first; equal ranges keep axis order.
	slices.SortStableFunc(effects, func(x, y AxisEffect) int { return cmp.Compare(y.Range, x.Range) })
	switch {
	case len(sw.Axes) == 0:
		st := aggregate(sw.Cells, a.overall())
		fmt.Fprintf(&b, " The sweep has no axes; the score is %s.", fmtStat(st))
	case len(effects) == 0:
		b.WriteString(" No axis has scores at two or more of its values yet, so no axis can be compared.")
	default:
		top := effects[0]
		ax := sw.Axes[top.Axis]
		fmt.Fprintf(&b, " Axis %s moved it most: its marginal means span %s points, from %s at %s to %s at %s, %s.",
			ax.Name, num(top.Range), num(top.LoMean), ax.Name+"="+ax.Values[top.Lo].String(),
			num(top.HiMean), ax.Name+"="+ax.Values[top.Hi].String(), noisePhrase(top))
		// Every other axis gets its sentence too: a reader comparing lessons
		// needs each axis's range against the noise, not only the extremes.
		var also, barely, unknown []string
		for _, e := range effects[1:] {
			name := sw.Axes[e.Axis].Name
			switch {
			case !e.HasSpread:
				unknown = append(unknown, fmt.Sprintf("%s (range %s)", name, num(e.Range)))
			case e.Range <= e.Spread:
				barely = append(barely, fmt.Sprintf("%s (range %s, %s %s)", name, num(e.Range), e.spreadName(), num(e.Spread)))
			default:
				also = append(also, fmt.Sprintf("%s (range %s, %s)", name, num(e.Range), noisePhrase(e)))
			}
		}
		if top.HasSpread && top.Range <= top.Spread {
			b.WriteString(" No axis moved it beyond the noise.")
		} else {
			if len(also) > 0 {
				fmt.Fprintf(&b, " %s %s also moved it.", axisWord(also), andList(also))
			}
			if len(barely) > 0 {
				fmt.Fprintf(&b, " %s %s barely moved it.", axisWord(barely), andList(barely))
			}
			if len(unknown) > 0 {
				fmt.Fprintf(&b, " %s %s cannot be told from noise (one seed, one trial).", axisWord(unknown), andList(unknown))
			}
		}
	}
	if best, st := a.bestSetting(); best != nil && len(sw.Axes) > 0 {
		fmt.Fprintf(&b, " The best setting is %s with %s", best.Label, fmtStat(st))
		if a.Baseline != nil && a.Baseline != best {
			if bs := aggregate(a.Baseline.Cells, a.overall()); bs.OK {
				fmt.Fprintf(&b, ", against the baseline's %s (%s)", fmtStat(bs), a.Baseline.Label)
			}
		} else if a.Baseline == best {
			b.WriteString("; it is the baseline")
		}
		b.WriteString(".")
	}
	return b.String()
}

func axisWord(list []string) string {
	if len(list) > 1 {
		return "Axes"
	}
	return "Axis"
}

// bestSetting is the setting with the highest overall average.
func (a *Analysis) bestSetting() (*Setting, Stat) {
	var (
		best *Setting
		bst  Stat
	)
	for _, s := range a.Settings {
		st := aggregate(s.Cells, a.overall())
		if st.OK && (best == nil || st.Mean > bst.Mean) {
			best, bst = s, st
		}
	}
	return best, bst
}

// noisePhrase compares an axis's range with its seed spread.
func noisePhrase(e AxisEffect) string {
	switch {
	case !e.HasSpread:
		return "with no seed spread to compare (one seed, one trial)"
	case e.Range <= e.Spread:
		return "within the " + e.spreadName() + " of " + num(e.Spread)
	}
	return fmt.Sprintf("%s× the %s of %s", strconv.FormatFloat(e.Range/e.Spread, 'f', 1, 64), e.spreadName(), num(e.Spread))
}

// spreadName says what the noise is a spread over.
func (e AxisEffect) spreadName() string {
	if e.BySeeds {
		return "seed spread"
	}
	return "trial spread"
}

// avgNames names the average's components with their scale.
func avgNames(ms []Metric) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Label
		if m.Scale != 1 {
			out[i] += "×" + strconv.FormatFloat(m.Scale, 'g', -1, 64)
		}
	}
	return out
}

func intStrings(xs []int) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Itoa(x)
	}
	return out
}

// andList joins "a", "b and c".
func andList(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// num prints a score: two decimals, without a sign on a value that rounds
// to zero.
func num(x float64) string {
	s := strconv.FormatFloat(x, 'f', 2, 64)
	if s == "-0.00" {
		return "0.00"
	}
	return s
}

// fmtStat prints "mean ± noise", "mean", or "—" without data.
func fmtStat(st Stat) string {
	switch {
	case !st.OK:
		return "—"
	case st.HasNoise:
		return num(st.Mean) + " ± " + num(st.Noise)
	}
	return num(st.Mean)
}
