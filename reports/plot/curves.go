package plot

import (
	"cmp"
	"math"
	"slices"
	"strconv"
)

// Curves is a line chart of many long series over a numeric x, such as the
// training loss and validation perplexity of every cell of a sweep over
// steps. Each series is downsampled to at most MaxPoints points before
// drawing, keeping its first and last point and each bucket's minimum and
// maximum, so spikes survive and a 100k-step run stays a small file.
type Curves struct {
	Title  string
	X, Y   Axis
	LogY   bool
	Series []Curve
	// MaxPoints bounds the points drawn per series; 0 means 400.
	MaxPoints int
	// Width and PlotHeight size the figure in viewBox units; 0 means
	// 720 wide and a 300-high plot area.
	Width, PlotHeight float64
}

// Curve is one series: Y[i] at X[i]. Points are joined in increasing x.
type Curve struct {
	Name string
	X, Y []float64
}

const (
	defaultMaxPoints = 400
	minMaxPoints     = 4
	// curveMarkers is how many markers each curve carries, so that curves
	// sharing a colour (past 8 series) and viewers without colour can still
	// tell them apart.
	curveMarkers = 4
)

type xy struct{ x, y float64 }

// Render draws the chart.
func (c Curves) Render() Figure {
	var k skips
	maxPts := c.MaxPoints
	if maxPts == 0 {
		maxPts = defaultMaxPoints
	}
	maxPts = max(maxPts, minMaxPoints)
	series := make([][]xy, len(c.Series))
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for si, cur := range c.Series {
		pts := make([]xy, 0, len(cur.Y))
		for i, y := range cur.Y {
			if i >= len(cur.X) {
				k.add(cur.Name, "no x value", "point "+strconv.Itoa(i))
				continue
			}
			x := cur.X[i]
			if r := nonFinite(x); r != "" {
				k.add(cur.Name, "x "+r, "point "+strconv.Itoa(i))
				continue
			}
			reason := nonFinite(y)
			switch {
			case reason != "":
			case c.LogY && y <= 0:
				reason = "non-positive on log axis"
			case c.LogY && (y < minLog || y > maxLog):
				reason = "beyond 1e±300 on log axis"
			default:
				pts = append(pts, xy{x, y})
				continue
			}
			k.add(cur.Name, reason, "x="+formatG(x))
		}
		byX := func(a, b xy) int { return cmp.Compare(a.x, b.x) }
		if !slices.IsSortedFunc(pts, byX) { // logged steps usually are
			slices.SortStableFunc(pts, byX)
		}
		pts = downsample(pts, maxPts)
		for _, p := range pts {
			xlo, xhi = math.Min(xlo, p.x), math.Max(xhi, p.x)
			ylo, yhi = math.Min(ylo, p.y), math.Max(yhi, p.y)
		}
		series[si] = pts
	}

	l := layout{width: c.Width, plotHeight: c.PlotHeight, title: c.Title, xTitle: c.X.title(), yTitle: c.Y.title(), skipped: &k, inset: 8}
	var s svg
	if math.IsInf(xlo, 1) {
		p := l.place()
		s.begin(p.width, p.height, c.Title)
		l.drawBack(&s, p)
		drawNoData(&s, p)
		l.drawFront(&s, p)
		s.end()
		return Figure{SVG: s.b.Bytes(), Skipped: k.list}
	}
	if c.LogY {
		l.yTicks = logTicks(ylo, yhi)
	} else {
		l.yTicks = linearTicks(ylo, yhi, tickTarget(c.PlotHeight))
	}
	xt := linearTicks(xlo, xhi, 6)
	l.xTicks = &xt
	for i, cur := range c.Series {
		l.legend = append(l.legend, legendItem{name: cur.Name, style: seriesStyle(i), kind: legendLine})
	}
	p := l.place()
	s.begin(p.width, p.height, c.Title)
	l.drawBack(&s, p)
	for si, pts := range series {
		st := seriesStyle(si)
		s.raw(`<g class="series" data-series="`, strconv.Itoa(si), `"><title>`, esc(c.Series[si].Name), "</title>\n")
		if len(pts) > 0 {
			xs, ys := make([]float64, len(pts)), make([]float64, len(pts))
			for i, pt := range pts {
				xs[i], ys[i] = l.px(p, pt.x), l.py(p, pt.y)
			}
			drawPolyline(&s, "curve", xs, ys, st)
			for _, i := range markerIndices(len(pts), si) {
				s.drawMarker(st.marker, xs[i], ys[i], 3.5, st.color, "")
			}
		}
		s.raw("</g>\n")
	}
	l.drawFront(&s, p)
	s.end()
	return Figure{SVG: s.b.Bytes(), Skipped: k.list}
}

// markerIndices spreads curveMarkers markers along a curve of n points,
// shifted per series so markers of neighbouring curves do not stack.
func markerIndices(n, series int) []int {
	if n == 0 {
		return nil
	}
	var idx []int
	shift := float64((series*3)%8) / 8
	for j := range curveMarkers {
		i := int((float64(j) + 0.25 + 0.5*shift) / curveMarkers * float64(n-1))
		if len(idx) == 0 || idx[len(idx)-1] != i {
			idx = append(idx, i)
		}
	}
	return idx
}

// downsample keeps at most maxPts points of pts: the first and the last, and
// from each of (maxPts-2)/2 equal-count buckets in between the points with
// the smallest and the largest y, in their original order.
func downsample(pts []xy, maxPts int) []xy {
	n := len(pts)
	if n <= maxPts {
		return pts
	}
	buckets := (maxPts - 2) / 2
	inner := n - 2
	out := make([]xy, 0, 2+2*buckets)
	out = append(out, pts[0])
	for b := range buckets {
		from, to := 1+b*inner/buckets, 1+(b+1)*inner/buckets
		lo, hi := from, from
		for i := from + 1; i < to; i++ {
			if pts[i].y < pts[lo].y {
				lo = i
			}
			if pts[i].y > pts[hi].y {
				hi = i
			}
		}
		out = append(out, pts[min(lo, hi)])
		if lo != hi {
			out = append(out, pts[max(lo, hi)])
		}
	}
	return append(out, pts[n-1])
}
