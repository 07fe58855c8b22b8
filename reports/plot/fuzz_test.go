package plot

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

// floats reads the bytes as little-endian float64s, so the fuzzer reaches
// NaN, ±Inf, subnormals and ±MaxFloat64.
func floats(b []byte) []float64 {
	var out []float64
	for len(b) >= 8 {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	return out
}

// geometry are the attributes that hold coordinates.
var geometry = []string{"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "points", "d", "transform", "viewBox"}

// FuzzRender draws every chart type from names and values of the fuzzer's
// choosing: none may panic, and each must be well-formed XML.
func FuzzRender(f *testing.F) {
	f.Add("title", "series", "group", []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, uint8(3))
	f.Add("max", "s", "g", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f}, uint8(40))
	f.Add(hostile, "]]>", "<g>", []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f}, uint8(40))
	f.Fuzz(func(t *testing.T, title, name, group string, raw []byte, n uint8) {
		vals := floats(raw)
		if len(vals) > 64 {
			vals = vals[:64]
		}
		var bv []Value
		for i, v := range vals {
			switch i % 4 {
			case 0:
				bv = append(bv, V(v))
			case 1:
				bv = append(bv, MeanStd(v, vals[len(vals)-1-i]))
			case 2:
				bv = append(bv, Interval(v, vals[(i+1)%len(vals)], vals[(i+2)%len(vals)]))
			default:
				bv = append(bv, NA())
			}
		}
		groups := make([]string, int(n)%12)
		for i := range groups {
			groups[i] = group
		}
		series := max(1, int(n)%20)
		bars := GroupedBars{Title: title, X: Axis{Label: name}, Y: Axis{Unit: group}, Groups: groups}
		lines := Lines{Title: title, Errors: ErrorStyle(n % 2)}
		if n%3 == 0 {
			lines.Categories = groups
		}
		curves := Curves{Title: title, LogY: n%2 == 0, MaxPoints: int(n)}
		for range series {
			bars.Series = append(bars.Series, BarSeries{Name: name, Values: bv})
			lines.Series = append(lines.Series, LineSeries{Name: name, X: vals, Y: bv})
			curves.Series = append(curves.Series, Curve{Name: name, X: vals, Y: vals[len(vals)/2:]})
		}
		for _, c := range []Chart{bars, lines, curves} {
			root, err := parseSVG(c.Render().SVG)
			if err != nil {
				t.Fatalf("%T: %v", c, err)
			}
			for _, n := range root.all(func(*node) bool { return true }) {
				for _, k := range geometry {
					if v := n.attr[k]; strings.Contains(v, "NaN") || strings.Contains(v, "Inf") {
						t.Fatalf("%T: <%s %s=%q>", c, n.name, k, v)
					}
				}
			}
		}
	})
}

func BenchmarkCurves(b *testing.B) {
	c := Curves{Title: "20 cells × 100k steps", LogY: true}
	for s := range 20 {
		cur := Curve{Name: "cell"}
		for i := range 100_000 {
			cur.X = append(cur.X, float64(i))
			cur.Y = append(cur.Y, 2+8*math.Exp(-float64(i)/float64(5000+s*1000)))
		}
		c.Series = append(c.Series, cur)
	}
	b.ResetTimer()
	for b.Loop() {
		c.Render()
	}
}
