package plot

import "math"

// Palette is Okabe and Ito's colour-blind-safe palette (Color Universal
// Design, 2008), reordered so the first colours are the most distinct on
// white and yellow, the faintest, comes last.
var palette = [8]string{
	"#0072B2", // blue
	"#E69F00", // orange
	"#009E73", // bluish green
	"#D55E00", // vermillion
	"#CC79A7", // reddish purple
	"#56B4E9", // sky blue
	"#000000", // black
	"#F0E442", // yellow
}

// Series styles cycle colours every 8 series, markers every 7 and dashes
// every 8 × 4: 7 is coprime to 8, so two series that share a colour differ
// in marker, and in dash (lines) or hatching (bars) too.
type marker int

const (
	markerCircle marker = iota
	markerSquare
	markerTriangle
	markerDiamond
	markerTriangleDown
	markerCross
	markerPlus
	numMarkers
)

var dashes = [4]string{"", "7 3", "2 2.5", "9 3 2 3"}

type style struct {
	color  string
	marker marker
	dash   string // SVG stroke-dasharray; "" is solid
	hatch  int    // 0 none, 1 "/", 2 "\", 3 both: tells bars apart past 8 series
}

func seriesStyle(i int) style {
	cycle := i / len(palette)
	return style{
		color:  palette[i%len(palette)],
		marker: marker(i % int(numMarkers)),
		dash:   dashes[cycle%len(dashes)],
		hatch:  cycle % 4,
	}
}

// Palette returns the colour of the i-th series, for tables that want to
// match a figure's legend.
func Palette(i int) string { return seriesStyle(i).color }

// drawMarker writes the marker centred on (x, y) with radius r.
func (s *svg) drawMarker(m marker, x, y, r float64, color, extra string) {
	if extra != "" {
		extra = " " + extra
	}
	filled := `fill="` + color + `" stroke="#ffffff" stroke-width="0.8"` + extra
	stroked := `fill="none" stroke="` + color + `" stroke-width="1.8"` + extra
	switch m {
	case markerCircle:
		s.raw(`<circle cx="`, num(x), `" cy="`, num(y), `" r="`, num(r), `" `, filled, "/>\n")
	case markerSquare:
		a := r * 0.9
		s.raw(`<rect x="`, num(x-a), `" y="`, num(y-a), `" width="`, num(2*a), `" height="`, num(2*a), `" `, filled, "/>\n")
	case markerTriangle, markerTriangleDown:
		dir := -1.0
		if m == markerTriangleDown {
			dir = 1
		}
		a := r * 1.2
		xs := []float64{x, x + a*math.Sqrt(3)/2, x - a*math.Sqrt(3)/2}
		ys := []float64{y + dir*a, y - dir*a/2, y - dir*a/2}
		s.raw(`<polygon points="`, points(xs, ys), `" `, filled, "/>\n")
	case markerDiamond:
		a := r * 1.25
		s.raw(`<polygon points="`, points([]float64{x, x + a, x, x - a}, []float64{y - a, y, y + a, y}), `" `, filled, "/>\n")
	case markerCross:
		a := r * 0.9
		s.raw(`<path d="M`, num(x-a), " ", num(y-a), "L", num(x+a), " ", num(y+a), "M", num(x-a), " ", num(y+a), "L", num(x+a), " ", num(y-a), `" `, stroked, "/>\n")
	case markerPlus:
		a := r * 1.1
		s.raw(`<path d="M`, num(x-a), " ", num(y), "L", num(x+a), " ", num(y), "M", num(x), " ", num(y-a), "L", num(x), " ", num(y+a), `" `, stroked, "/>\n")
	}
}

// drawHatch covers the rectangle with diagonal white strokes: kind 1 one
// diagonal, 2 the other, 3 both. The strokes are clipped by computation
// rather than by a <clipPath>, whose id would collide between figures
// inlined in one HTML page.
func (s *svg) drawHatch(kind int, x, y, w, h float64) {
	const gap = 5.0
	if kind == 0 || w <= 0 || h <= 0 {
		return
	}
	s.raw(`<path class="hatch" fill="none" stroke="#ffffff" stroke-width="1.4" d="`)
	for _, dir := range [2]int{1, 2} {
		if kind&dir == 0 {
			continue
		}
		// The segment of u + v = c inside the box, u from the left edge
		// (from the right for dir 2), v from the bottom edge.
		for c := gap; c < w+h; c += gap {
			u0, u1 := math.Max(0, c-h), math.Min(w, c)
			x0, x1 := x+u0, x+u1
			if dir == 2 {
				x0, x1 = x+w-u0, x+w-u1
			}
			s.raw("M", num(x0), " ", num(y+h-(c-u0)), "L", num(x1), " ", num(y+h-(c-u1)))
		}
	}
	s.raw(`"/>`, "\n")
}
