package plot

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// ErrorStyle says how Lines draws the intervals of its values.
type ErrorStyle int

const (
	// ErrorBars draws a capped vertical bar at each point.
	ErrorBars ErrorStyle = iota
	// ErrorBands shades the region between the intervals' bounds.
	ErrorBands
)

// Lines is a line chart with markers, for a score against a numeric x
// (e.g. the share of interleaved data) or against categories (e.g. mixture
// labels "5:5:1", "1:1:0"), one line per series.
//
// A missing or non-finite value breaks the line there.
type Lines struct {
	Title string
	X, Y  Axis
	// Categories, when set, makes x categorical: Y[i] of each series is
	// drawn at Categories[i], evenly spaced, and the series' X is ignored.
	Categories []string
	Series     []LineSeries
	Errors     ErrorStyle
	// Width and PlotHeight size the figure in viewBox units; 0 means
	// 720 wide and a 300-high plot area.
	Width, PlotHeight float64
}

// LineSeries is one line. With a numeric x, X[i] is the x of Y[i] and the
// points are joined in increasing x.
type LineSeries struct {
	Name string
	X    []float64
	Y    []Value
}

type linePoint struct {
	idx     int     // index into the series' Y
	x       float64 // data x, or the category index
	v       Value
	ok, err bool
}

// Render draws the chart.
func (c Lines) Render() Figure {
	var k skips
	series := make([][]linePoint, len(c.Series))
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	drawable := false
	for si, ser := range c.Series {
		n := len(ser.Y)
		if c.Categories != nil {
			n = len(c.Categories)
			for i := n; i < len(ser.Y); i++ {
				k.add(ser.Name, "no category", "point "+strconv.Itoa(i))
			}
		}
		for i := 0; i < n; i++ {
			v := NA()
			if i < len(ser.Y) {
				v = ser.Y[i]
			}
			pt := linePoint{idx: i}
			if c.Categories != nil {
				pt.x = float64(i)
				pt.ok, pt.err = v.check(&k, ser.Name, "category "+strconv.Quote(c.Categories[i]))
			} else {
				at := "point " + strconv.Itoa(i)
				if i >= len(ser.X) {
					k.add(ser.Name, "no x value", at)
					continue
				}
				if r := nonFinite(ser.X[i]); r != "" {
					k.add(ser.Name, "x "+r, at)
					continue
				}
				pt.x = ser.X[i]
				pt.ok, pt.err = v.check(&k, ser.Name, "x="+formatG(pt.x))
			}
			pt.v = v
			series[si] = append(series[si], pt)
			if !pt.ok {
				continue
			}
			drawable = true
			xlo, xhi = math.Min(xlo, pt.x), math.Max(xhi, pt.x)
			ylo, yhi = math.Min(ylo, v.Y), math.Max(yhi, v.Y)
			if pt.err {
				ylo, yhi = math.Min(ylo, math.Min(v.Lo, v.Hi)), math.Max(yhi, math.Max(v.Lo, v.Hi))
			}
		}
		if c.Categories == nil {
			slices.SortStableFunc(series[si], func(a, b linePoint) int {
				return cmp.Compare(a.x, b.x)
			})
		}
	}

	l := layout{width: c.Width, plotHeight: c.PlotHeight, title: c.Title, xTitle: c.X.title(), yTitle: c.Y.title(), skipped: &k, inset: 8}
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
	l.yTicks = linearTicks(ylo, yhi, tickTarget(c.PlotHeight))
	if c.Categories != nil {
		l.xCats = c.Categories
	} else {
		xt := linearTicks(xlo, xhi, 6)
		l.xTicks = &xt
	}
	for i, ser := range c.Series {
		l.legend = append(l.legend, legendItem{name: ser.Name, style: seriesStyle(i), kind: legendLine})
	}
	p := l.place()
	s.begin(p.width, p.height, c.Title)
	l.drawBack(&s, p)

	px := func(x float64) float64 {
		if c.Categories != nil {
			return p.x0 + (x+0.5)*(p.x1-p.x0)/float64(len(c.Categories))
		}
		return l.px(p, x)
	}
	py := func(y float64) float64 { return l.py(p, y) }

	for si, pts := range series {
		st := seriesStyle(si)
		name := c.Series[si].Name
		s.raw(`<g class="series" data-series="`, strconv.Itoa(si), `">`, "\n")
		if c.Errors == ErrorBands {
			for _, run := range runs(pts, func(pt linePoint) bool { return pt.err }) {
				var xs, ys []float64
				for _, pt := range run {
					xs, ys = append(xs, px(pt.x)), append(ys, py(math.Max(pt.v.Lo, pt.v.Hi)))
				}
				for i := len(run) - 1; i >= 0; i-- {
					xs, ys = append(xs, px(run[i].x)), append(ys, py(math.Min(run[i].v.Lo, run[i].v.Hi)))
				}
				s.raw(`<polygon class="band" points="`, points(xs, ys), `" fill="`, st.color, `" fill-opacity="0.18" stroke="none"/>`, "\n")
			}
		}
		for _, run := range runs(pts, func(pt linePoint) bool { return pt.ok }) {
			xs, ys := make([]float64, len(run)), make([]float64, len(run))
			for i, pt := range run {
				xs[i], ys[i] = px(pt.x), py(pt.v.Y)
			}
			drawPolyline(&s, "line", xs, ys, st)
		}
		for _, pt := range pts {
			if !pt.ok {
				continue
			}
			x, y := px(pt.x), py(pt.v.Y)
			if pt.err && c.Errors == ErrorBars {
				drawErrBar(&s, x, py(pt.v.Lo), py(pt.v.Hi), 8)
			}
			at := formatG(pt.x)
			if c.Categories != nil {
				at = c.Categories[pt.idx]
			}
			tip := name + " · " + at + ": " + formatValue(pt.v, pt.err)
			s.raw(`<g class="point" data-index="`, strconv.Itoa(pt.idx), `" transform="translate(`, num(x), " ", num(y), `)"><title>`, esc(tip), "</title>\n")
			s.drawMarker(st.marker, 0, 0, 4, st.color, "")
			s.raw("</g>\n")
		}
		s.raw("</g>\n")
	}
	l.drawFront(&s, p)
	s.end()
	return Figure{SVG: s.b.Bytes(), Skipped: k.list}
}

// runs splits pts into maximal runs of consecutive points that keep holds
// for; a line is drawn through each run and broken between them.
func runs(pts []linePoint, keep func(linePoint) bool) [][]linePoint {
	var out [][]linePoint
	start := -1
	for i := 0; i <= len(pts); i++ {
		if i < len(pts) && keep(pts[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, pts[start:i])
			start = -1
		}
	}
	return out
}

func drawPolyline(s *svg, class string, xs, ys []float64, st style) {
	s.raw(`<polyline class="`, class, `" points="`, points(xs, ys), `" fill="none" stroke="`, st.color,
		`" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"`)
	if st.dash != "" {
		s.raw(` stroke-dasharray="`, st.dash, `"`)
	}
	s.raw("/>\n")
}
