package plot

import (
	"fmt"
	"math"
	"strings"
)

// Default figure size in viewBox units; the figure's height follows from
// its plot height plus title, legend, labels and notes.
const (
	defaultWidth      = 720.0
	defaultPlotHeight = 300.0
	minWidth          = 240.0
	minPlotHeight     = 80.0
	pad               = 12.0
	tickLen           = 4.0
	// maxLabelWidth truncates category labels (with an ellipsis; the full
	// label is the tooltip) so one long dataset name cannot eat the plot.
	maxLabelWidth = 150.0
	// labelAngle rotates category labels that do not fit their slot.
	labelAngle = 35.0
)

type legendKind int

const (
	legendBar legendKind = iota
	legendLine
)

type legendItem struct {
	name  string
	style style
	kind  legendKind
}

// layout is what a chart tells the frame; place turns it into positions.
type layout struct {
	width, plotHeight float64
	title             string
	xTitle, yTitle    string
	yTicks            ticks
	xCats             []string // categorical x: one label per slot
	xTicks            *ticks   // numeric x
	legend            []legendItem
	skipped           *skips
	// inset keeps data off the axis lines: markers at the extreme ticks
	// would otherwise be cut by the axes. Bars need none; they stand on
	// the axis.
	inset float64
}

// py maps a y value to its SVG coordinate in the placed plot area.
func (l *layout) py(p placed, v float64) float64 {
	return l.yTicks.scale(v, p.y1-l.inset, p.y0+l.inset)
}

// px maps a numeric x value to its SVG coordinate.
func (l *layout) px(p placed, v float64) float64 {
	return l.xTicks.scale(v, p.x0+l.inset, p.x1-l.inset)
}

type placedItem struct {
	legendItem
	x, y  float64 // top-left of the entry
	label string  // name, truncated to fit the row
}

// placed is the computed geometry of a figure: the plot area is
// [x0, x1] × [y0, y1] in SVG units (y grows downwards, y1 is the bottom).
type placed struct {
	width, height  float64
	titleLines     []string
	legend         []placedItem
	x0, x1, y0, y1 float64
	rotate         bool
	xLabels        []string // possibly truncated xCats
	noteLines      []string
}

func (l *layout) place() placed {
	p := placed{width: math.Max(minWidth, l.width)}
	if l.width == 0 {
		p.width = defaultWidth
	}
	ph := l.plotHeight
	if ph == 0 {
		ph = defaultPlotHeight
	}
	ph = math.Max(minPlotHeight, ph)

	cursor := pad
	// Titles are bold, about a tenth wider than textWidth's estimate.
	p.titleLines = wrap(l.title, titleSize, (p.width-2*pad)/1.1)
	cursor += float64(len(p.titleLines)) * titleSize * 1.3

	yTickW := 0.0
	for _, s := range l.yTicks.labels {
		yTickW = math.Max(yTickW, textWidth(s, tickSize))
	}
	p.x0 = pad + yTickW + tickLen + 4
	if l.yTitle != "" {
		p.x0 += axisSize*1.2 + 4
	}
	p.x1 = p.width - pad
	if l.xTicks != nil {
		last := l.xTicks.labels[len(l.xTicks.labels)-1]
		p.x1 -= textWidth(last, tickSize) / 2
	}

	labelH := tickSize
	if n := float64(len(l.xCats)); n > 0 {
		slot := (p.x1 - p.x0) / n
		widest := 0.0
		for _, c := range l.xCats {
			t := truncate(c, tickSize, maxLabelWidth)
			p.xLabels = append(p.xLabels, t)
			widest = math.Max(widest, textWidth(t, tickSize))
		}
		if widest > slot-6 {
			p.rotate = true
			a := labelAngle * math.Pi / 180
			labelH = widest*math.Sin(a) + tickSize*math.Cos(a)
			// The first label reaches left of its tick by w0 = width × cos;
			// move the plot's left edge x0 so that x0 + slot/2 − w0 ≥ pad,
			// where slot = (x1 − x0)/n shrinks as x0 grows.
			w0 := textWidth(p.xLabels[0], tickSize) * math.Cos(a)
			if x0 := (pad + w0 - p.x1/(2*n)) / (1 - 1/(2*n)); x0 > p.x0 {
				p.x0 = x0
			}
		}
	}

	if len(l.legend) > 0 {
		cursor += 6
		cursor = p.placeLegend(l.legend, cursor)
	}
	p.y0 = cursor + 10
	p.y1 = p.y0 + ph

	cursor = p.y1 + tickLen + 4 + labelH
	if l.xTitle != "" {
		cursor += 8 + axisSize
	}
	if l.skipped != nil && len(l.skipped.list) > 0 {
		p.noteLines = noteLines(l.skipped, p.width-2*pad)
		cursor += 8 + float64(len(p.noteLines))*noteSize*1.3
	}
	p.height = math.Ceil(cursor + pad)
	return p
}

// placeLegend flows the entries left to right from the plot's left edge,
// wrapping to a new row when one does not fit; it returns the y below.
func (p *placed) placeLegend(items []legendItem, top float64) float64 {
	const swatch, gap, rowH = 22.0, 18.0, legendSize * 1.6
	x, y := p.x0, top
	right := p.width - pad
	for _, it := range items {
		avail := right - p.x0 - swatch - 6
		label := truncate(it.name, legendSize, avail)
		w := swatch + 6 + textWidth(label, legendSize)
		if x > p.x0 && x+w > right {
			x, y = p.x0, y+rowH
		}
		p.legend = append(p.legend, placedItem{legendItem: it, x: x, y: y, label: label})
		x += w + gap
	}
	return y + rowH
}

// truncate shortens str with an ellipsis so it fits width.
func truncate(str string, size, width float64) string {
	if textWidth(str, size) <= width {
		return str
	}
	r := []rune(str)
	for len(r) > 0 && textWidth(string(r)+"…", size) > width {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// maxNoteLines bounds the footnote; the full list is in Figure.Skipped.
const maxNoteLines = 3

func noteLines(k *skips, width float64) []string {
	parts := make([]string, len(k.list))
	for i, s := range k.list {
		parts[i] = fmt.Sprintf("“%s”: %d %s", s.Series, s.Count, s.Reason)
	}
	noun := "values"
	if k.total() == 1 {
		noun = "value"
	}
	lines := wrap(fmt.Sprintf("Not drawn: %d %s (%s).", k.total(), noun, strings.Join(parts, "; ")), noteSize, width)
	if len(lines) > maxNoteLines {
		lines = lines[:maxNoteLines]
		lines[maxNoteLines-1] = truncate(lines[maxNoteLines-1]+" …", noteSize, width)
	}
	return lines
}

// drawBack draws what lies under the data: title, legend, grid lines and
// y tick labels.
func (l *layout) drawBack(s *svg, p placed) {
	y := pad
	for _, line := range p.titleLines {
		y += titleSize
		s.text(p.width/2, y, titleSize, "middle", `class="title" font-weight="600"`, line)
		y += titleSize * 0.3
	}
	for _, it := range p.legend {
		l.drawLegendItem(s, it)
	}
	for i, v := range l.yTicks.vals {
		y := l.py(p, v)
		s.line(p.x0, y, p.x1, y, gridColor, 1, `class="grid"`)
		s.line(p.x0-tickLen, y, p.x0, y, inkColor, 1, "")
		s.text(p.x0-tickLen-3, y+tickSize*0.35, tickSize, "end", `class="ytick"`, l.yTicks.labels[i])
	}
	if l.xTicks != nil {
		for _, v := range l.xTicks.vals {
			x := l.px(p, v)
			s.line(x, p.y0, x, p.y1, gridColor, 1, `class="grid"`)
		}
	}
}

func (l *layout) drawLegendItem(s *svg, it placedItem) {
	cy := it.y + legendSize*0.8
	s.raw(`<g class="legend-item">`)
	if it.label != it.name {
		s.raw("<title>", esc(it.name), "</title>")
	}
	s.raw("\n")
	switch it.kind {
	case legendBar:
		s.raw(`<rect x="`, num(it.x+5), `" y="`, num(cy-6), `" width="12" height="12" fill="`, it.style.color, `"/>`, "\n")
		s.drawHatch(it.style.hatch, it.x+5, cy-6, 12, 12)
	case legendLine:
		dash := ""
		if it.style.dash != "" {
			dash = `stroke-dasharray="` + it.style.dash + `"`
		}
		s.line(it.x, cy, it.x+22, cy, it.style.color, 2, dash)
		s.drawMarker(it.style.marker, it.x+11, cy, 3.5, it.style.color, "")
	}
	s.text(it.x+28, cy+legendSize*0.35, legendSize, "start", "", it.label)
	s.raw("</g>\n")
}

// drawFront draws what lies over the data: axis lines, x labels, axis
// titles and the footnote.
func (l *layout) drawFront(s *svg, p placed) {
	if len(l.yTicks.vals) > 0 {
		s.line(p.x0, p.y0, p.x0, p.y1, inkColor, 1, `class="axis"`)
		s.line(p.x0, p.y1, p.x1, p.y1, inkColor, 1, `class="axis"`)
	}
	ly := p.y1 + tickLen + 3 + tickSize
	if n := len(p.xLabels); n > 0 {
		slot := (p.x1 - p.x0) / float64(n)
		for i, lab := range p.xLabels {
			x := p.x0 + (float64(i)+0.5)*slot
			s.line(x, p.y1, x, p.y1+tickLen, inkColor, 1, "")
			tip := ""
			if lab != l.xCats[i] {
				tip = "<title>" + esc(l.xCats[i]) + "</title>"
			}
			if p.rotate {
				s.raw(`<text class="xtick" x="`, num(x), `" y="`, num(ly-tickSize*0.3), `" text-anchor="end" transform="rotate(-`,
					num(labelAngle), " ", num(x), " ", num(ly-tickSize*0.3), `)">`, tip, esc(lab), "</text>\n")
			} else {
				s.raw(`<text class="xtick" x="`, num(x), `" y="`, num(ly), `" text-anchor="middle">`, tip, esc(lab), "</text>\n")
			}
		}
	}
	if l.xTicks != nil {
		for i, v := range l.xTicks.vals {
			x := l.px(p, v)
			s.line(x, p.y1, x, p.y1+tickLen, inkColor, 1, "")
			s.text(x, ly, tickSize, "middle", `class="xtick"`, l.xTicks.labels[i])
		}
	}
	if l.yTitle != "" {
		cx, cy := pad+axisSize*0.9, (p.y0+p.y1)/2
		s.raw(`<text class="axis-title" x="`, num(cx), `" y="`, num(cy), `" font-size="`, num(axisSize),
			`" text-anchor="middle" transform="rotate(-90 `, num(cx), " ", num(cy), `)">`,
			esc(truncate(l.yTitle, axisSize, p.y1-p.y0)), "</text>\n")
	}
	bottom := p.height - pad
	if len(p.noteLines) > 0 {
		for i := len(p.noteLines) - 1; i >= 0; i-- {
			s.text(pad, bottom-noteSize*0.25, noteSize, "start", `class="note" fill="`+mutedInk+`" font-style="italic"`, p.noteLines[i])
			bottom -= noteSize * 1.3
		}
		bottom -= 8
	}
	if l.xTitle != "" {
		s.text((p.x0+p.x1)/2, bottom-axisSize*0.25, axisSize, "middle", `class="axis-title"`, truncate(l.xTitle, axisSize, p.width-2*pad))
	}
}

// drawNoData fills the plot area with the "no data" message.
func drawNoData(s *svg, p placed) {
	s.raw(`<rect class="no-data-frame" x="`, num(p.x0), `" y="`, num(p.y0), `" width="`, num(p.x1-p.x0),
		`" height="`, num(p.y1-p.y0), `" fill="#fafafa" stroke="`, gridColor, `"/>`, "\n")
	s.text((p.x0+p.x1)/2, (p.y0+p.y1)/2+5, 14, "middle", `class="no-data" fill="`+mutedInk+`"`, "no data")
}
