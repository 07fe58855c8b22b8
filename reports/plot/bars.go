package plot

import (
	"math"
	"strconv"
)

// GroupedBars is a bar chart with one group of bars per x category (e.g.
// the settings of an ablation axis) and one bar per series in each group
// (e.g. 0-, 4- and 8-shot averages), as in MM1's ablation figures.
//
// The y axis always includes 0, so bar lengths compare; negative values
// hang below the zero line. A missing value (NA, or a series shorter than
// Groups) is labelled "n/a" where its bar would be.
type GroupedBars struct {
	Title  string
	X, Y   Axis
	Groups []string
	Series []BarSeries
	// Width and PlotHeight size the figure in viewBox units; 0 means
	// 720 wide and a 300-high plot area.
	Width, PlotHeight float64
}

// BarSeries is one bar per group; Values[i] belongs to Groups[i].
type BarSeries struct {
	Name   string
	Values []Value
}

type barCell struct {
	v       Value
	ok, err bool
}

// Render draws the chart.
func (c GroupedBars) Render() Figure {
	var k skips
	cells := make([][]barCell, len(c.Series))
	lo, hi := 0.0, 0.0
	drawable := false
	for si, ser := range c.Series {
		cells[si] = make([]barCell, len(c.Groups))
		for gi, g := range c.Groups {
			v := NA()
			if gi < len(ser.Values) {
				v = ser.Values[gi]
			}
			ok, err := v.check(&k, ser.Name, "group "+strconv.Quote(g))
			cells[si][gi] = barCell{v: v, ok: ok, err: err}
			if !ok {
				continue
			}
			drawable = true
			lo, hi = math.Min(lo, v.Y), math.Max(hi, v.Y)
			if err {
				lo, hi = math.Min(lo, math.Min(v.Lo, v.Hi)), math.Max(hi, math.Max(v.Lo, v.Hi))
			}
		}
	}

	l := layout{width: c.Width, plotHeight: c.PlotHeight, title: c.Title, xTitle: c.X.title(), yTitle: c.Y.title(), skipped: &k}
	var s svg
	if !drawable {
		p := l.place()
		s.begin(p.width, p.height, c.Title)
		l.drawBack(&s, p)
		drawNoData(&s, p)
		l.drawFront(&s, p)
		s.end()
		return Figure{SVG: s.b.Bytes(), Skipped: k.list}
	}
	l.yTicks = linearTicks(lo, hi, tickTarget(c.PlotHeight))
	l.xCats = c.Groups
	for i, ser := range c.Series {
		l.legend = append(l.legend, legendItem{name: ser.Name, style: seriesStyle(i), kind: legendBar})
	}
	p := l.place()
	s.begin(p.width, p.height, c.Title)
	l.drawBack(&s, p)

	y := func(v float64) float64 { return l.py(p, v) }
	zero := y(0)
	slot := (p.x1 - p.x0) / float64(len(c.Groups))
	bw := slot * 0.8 / float64(len(c.Series))
	gap := math.Min(2, bw*0.15)
	for gi, g := range c.Groups {
		for si, ser := range c.Series {
			cell := cells[si][gi]
			st := seriesStyle(si)
			x := p.x0 + float64(gi)*slot + slot*0.1 + float64(si)*bw + gap/2
			w := bw - gap
			idx := `data-series="` + strconv.Itoa(si) + `" data-group="` + strconv.Itoa(gi) + `"`
			if !cell.ok {
				drawNA(&s, x+w/2, zero, w, l.yTicks.hi() <= 0, idx)
				continue
			}
			top, bottom := y(math.Max(cell.v.Y, 0)), y(math.Min(cell.v.Y, 0))
			tip := ser.Name + " · " + g + ": " + formatValue(cell.v, cell.err)
			s.raw(`<rect class="bar" `, idx, ` x="`, num(x), `" y="`, num(top), `" width="`, num(w),
				`" height="`, num(bottom-top), `" fill="`, st.color, `"><title>`, esc(tip), "</title></rect>\n")
			if bottom-top < 1 {
				// A zero-height bar would be invisible, unlike the value it shows.
				s.line(x, zero, x+w, zero, st.color, 2, `class="bar-zero"`)
			}
			s.drawHatch(st.hatch, x, top, w, bottom-top)
			if cell.err {
				capW := math.Min(w*0.5, 10)
				drawErrBar(&s, x+w/2, y(cell.v.Lo), y(cell.v.Hi), capW)
			}
		}
	}
	if l.yTicks.lo() < 0 && l.yTicks.hi() > 0 {
		s.line(p.x0, zero, p.x1, zero, inkColor, 1, `class="zero"`)
	}
	l.drawFront(&s, p)
	s.end()
	return Figure{SVG: s.b.Bytes(), Skipped: k.list}
}

// tickTarget is how many y ticks a plot of that height gets: about one per
// 55 units.
func tickTarget(plotHeight float64) int {
	if plotHeight == 0 {
		plotHeight = defaultPlotHeight
	}
	return max(3, int(math.Max(minPlotHeight, plotHeight)/55))
}

// drawNA marks a missing bar with "n/a" just above the zero line (below it
// when the whole axis is negative), upright when the bar is too narrow.
func drawNA(s *svg, cx, zero, w float64, below bool, idx string) {
	const size = 10.0
	attrs := `class="na" ` + idx + ` fill="` + mutedInk + `"`
	if textWidth("n/a", size) <= w+2 {
		y := zero - 4
		if below {
			y = zero + 4 + size
		}
		s.text(cx, y, size, "middle", attrs, "n/a")
		return
	}
	y, anchor := zero-4, "start"
	if below {
		y, anchor = zero+4, "end"
	}
	x := cx + size*0.35
	s.text(x, y, size, anchor, attrs+` transform="rotate(-90 `+num(x)+" "+num(y)+`)"`, "n/a")
}

// drawErrBar draws a vertical interval with caps.
func drawErrBar(s *svg, x, y0, y1, capW float64) {
	h := capW / 2
	s.raw(`<path class="errbar" fill="none" stroke="`, inkColor, `" stroke-width="1.2" d="M`, num(x), " ", num(y0), "L", num(x), " ", num(y1),
		"M", num(x-h), " ", num(y0), "L", num(x+h), " ", num(y0), "M", num(x-h), " ", num(y1), "L", num(x+h), " ", num(y1), `"/>`, "\n")
}

// formatValue writes a value and its interval for a tooltip.
func formatValue(v Value, withErr bool) string {
	if !withErr {
		return formatG(v.Y)
	}
	return formatG(v.Y) + " [" + formatG(math.Min(v.Lo, v.Hi)) + ", " + formatG(math.Max(v.Lo, v.Hi)) + "]"
}
