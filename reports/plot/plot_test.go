package plot

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden SVG files under testdata/")

func sortedNames(m map[string]Chart) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestGolden(t *testing.T) {
	cases := goldenCases()
	for _, name := range sortedNames(cases) {
		t.Run(name, func(t *testing.T) {
			got := cases[name].Render().SVG
			path := filepath.Join("testdata", name+".svg")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered figure (run go test -update after checking the change)", path)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for name, c := range goldenCases() {
		a, b := c.Render().SVG, c.Render().SVG
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renders differ", name)
		}
	}
}

// externalRef matches anything that would make a viewer fetch or run
// something: links, CSS urls and imports, scripts, event handlers.
var externalRef = regexp.MustCompile(`(?i)href=|url\(|@import|<script|\son[a-z]+=|<foreignObject|<image`)

func TestWellFormedAndSelfContained(t *testing.T) {
	for name, c := range goldenCases() {
		svg := c.Render().SVG
		root, err := parseSVG(svg)
		if err != nil {
			t.Errorf("%s: not well-formed XML: %v", name, err)
			continue
		}
		if root.name != "svg" || root.attr["viewBox"] == "" {
			t.Errorf("%s: root is <%s viewBox=%q>, want <svg> with a viewBox", name, root.name, root.attr["viewBox"])
		}
		if m := externalRef.Find(svg); m != nil {
			t.Errorf("%s: contains %q", name, m)
		}
		if got := root.all(func(n *node) bool { return n.name == "script" }); len(got) > 0 {
			t.Errorf("%s: has a <script> element", name)
		}
		// Every drawn coordinate must lie inside the viewBox.
		var vb [4]float64
		for i, f := range strings.Fields(root.attr["viewBox"]) {
			vb[i], _ = strconv.ParseFloat(f, 64)
		}
		for _, n := range untransformed(root) {
			for _, k := range []string{"x", "y", "x1", "x2", "y1", "y2"} {
				if _, ok := n.attr[k]; !ok {
					continue
				}
				v := n.f(k)
				limit := vb[2]
				if k[0] == 'y' {
					limit = vb[3]
				}
				if v < 0 || v > limit {
					t.Errorf("%s: <%s class=%q %s=%v> outside the viewBox %v", name, n.name, n.attr["class"], k, v, vb)
				}
			}
		}
	}
}

func TestEscaping(t *testing.T) {
	root, err := parseSVG(goldenCases()["escaping"].Render().SVG)
	if err != nil {
		t.Fatal(err)
	}
	// XML cannot carry NUL or ESC; they come back as U+FFFD.
	want := strings.NewReplacer("\x00", "\uFFFD", "\x1b", "\uFFFD", "\xff", "\uFFFD").Replace(hostile)
	if want == hostile {
		t.Fatal("hostile string has no characters XML forbids")
	}
	if root.attr["aria-label"] != want {
		t.Errorf("aria-label = %q, want %q", root.attr["aria-label"], want)
	}
	titles := root.all(func(n *node) bool { return n.name == "title" })
	if len(titles) == 0 || titles[0].text != want {
		t.Errorf("first <title> does not carry the figure title %q", want)
	}
	wantText := []string{want + " (&amp;)", `]]> ("%")`, "<b>"}
	texts := map[string]bool{}
	for _, n := range root.all(func(n *node) bool { return n.name == "text" }) {
		texts[n.text] = true
	}
	for _, w := range wantText {
		if !texts[w] {
			t.Errorf("no <text> reads %q", w)
		}
	}
	tips := root.class("bar")
	if len(tips) != 1 || !strings.HasPrefix(tips[0].allText(), want+" · "+want+": 1") {
		t.Errorf("bar tooltip does not round-trip the hostile names: %+v", tips)
	}
}

// barGeometry maps "series/group" to the bar's rect.
func barGeometry(t *testing.T, c GroupedBars) (map[string]*node, *node) {
	t.Helper()
	root, err := parseSVG(c.Render().SVG)
	if err != nil {
		t.Fatal(err)
	}
	bars := map[string]*node{}
	for _, b := range root.class("bar") {
		bars[b.attr["data-series"]+"/"+b.attr["data-group"]] = b
	}
	return bars, root
}

func TestBarHeightsProportional(t *testing.T) {
	c := goldenCases()["bars_negative"].(GroupedBars)
	bars, root := barGeometry(t, c)
	zero := root.class("zero")
	if len(zero) != 1 {
		t.Fatalf("want one zero line with negative bars, got %d", len(zero))
	}
	zy := zero[0].f("y1")
	ref := bars["0/0"] // -2.5
	refH := ref.f("height")
	for si, s := range c.Series {
		for gi, v := range s.Values {
			b := bars[strconv.Itoa(si)+"/"+strconv.Itoa(gi)]
			if v.Missing {
				if b != nil {
					t.Errorf("series %d group %d: missing value drawn as a bar", si, gi)
				}
				continue
			}
			h := b.f("height")
			// Heights are rounded to 0.01 in the SVG.
			if want := refH * math.Abs(v.Y) / 2.5; math.Abs(h-want) > 0.02 {
				t.Errorf("series %d group %d (%v): height %v, want %v", si, gi, v.Y, h, want)
			}
			top, bottom := b.f("y"), b.f("y")+h
			edge := bottom
			if v.Y < 0 {
				edge = top
			}
			if math.Abs(edge-zy) > 0.02 {
				t.Errorf("series %d group %d (%v): bar spans [%v, %v], not starting at the zero line %v", si, gi, v.Y, top, bottom, zy)
			}
		}
	}
	// Bars sit in their group's slot, in series order.
	if !(bars["0/0"].f("x") < bars["1/0"].f("x") && bars["1/0"].f("x") < bars["0/1"].f("x")) {
		t.Error("bars are not ordered group by group, series within group")
	}
}

func TestBarsMissingMarkedNA(t *testing.T) {
	c := goldenCases()["bars_resolution"].(GroupedBars)
	f := c.Render()
	bars, root := barGeometry(t, c)
	na := map[string]bool{}
	for _, n := range root.class("na") {
		if n.text != "n/a" {
			t.Errorf("n/a mark reads %q", n.text)
		}
		na[n.attr["data-series"]+"/"+n.attr["data-group"]] = true
	}
	// 4-shot res=96 is NA(), 8-shot res=96 is NaN: both marked, neither a bar.
	for _, key := range []string{"1/1", "2/1"} {
		if !na[key] || bars[key] != nil {
			t.Errorf("%s: n/a=%v bar=%v, want an n/a mark and no bar", key, na[key], bars[key] != nil)
		}
	}
	if len(na) != 2 || len(bars) != 7 {
		t.Errorf("got %d n/a marks and %d bars, want 2 and 7", len(na), len(bars))
	}
	want := []Skip{{Series: "8-shot", Reason: "NaN", Count: 1, First: `group "res=96"`}}
	if !slices.Equal(f.Skipped, want) {
		t.Errorf("Skipped = %v, want %v", f.Skipped, want)
	}
	if notes := root.class("note"); len(notes) != 1 || !strings.Contains(notes[0].text, "1 value") {
		t.Errorf("footnote = %+v, want one line counting 1 value", notes)
	}
	// The error bar of 0-shot res=64 spans mean ± std on the bar's scale.
	b := bars["0/0"]
	perUnit := b.f("height") / 21.3
	errs := root.class("errbar")
	if len(errs) == 0 {
		t.Fatal("no error bars")
	}
	// d is "Mx y0Lx y1M…" as drawErrBar writes it.
	var x, x2, y0, y1 float64
	if _, err := fmt.Sscanf(errs[0].attr["d"], "M%g %gL%g %g", &x, &y0, &x2, &y1); err != nil {
		t.Fatal(err)
	}
	if got := math.Abs(y0 - y1); math.Abs(got-2*0.8*perUnit) > 0.05 {
		t.Errorf("error bar length %v, want %v", got, 2*0.8*perUnit)
	}
	if math.Abs(x-(b.f("x")+b.f("width")/2)) > 0.02 {
		t.Errorf("error bar at x=%v, not centred on its bar", x)
	}
}

func TestLinesPointPositions(t *testing.T) {
	c := goldenCases()["lines_numeric"].(Lines)
	f := c.Render()
	root, err := parseSVG(f.SVG)
	if err != nil {
		t.Fatal(err)
	}
	type pt struct{ dx, dy, px, py float64 }
	var pts []pt
	for _, g := range root.class("series") {
		si, _ := strconv.Atoi(g.attr["data-series"])
		for _, p := range g.class("point") {
			i, _ := strconv.Atoi(p.attr["data-index"])
			x, y := p.translate()
			pts = append(pts, pt{c.Series[si].X[i], c.Series[si].Y[i].Y, x, y})
		}
	}
	// 15 values: one NA and one +Inf are not drawn.
	if len(pts) != 13 {
		t.Fatalf("got %d points, want 13", len(pts))
	}
	// Positions are affine in the data: the same scale between any two points.
	a, b := pts[0], pts[len(pts)-1]
	sx, sy := (b.px-a.px)/(b.dx-a.dx), (b.py-a.py)/(b.dy-a.dy)
	if sx <= 0 || sy >= 0 {
		t.Fatalf("x scale %v should be positive and y scale %v negative (SVG y grows down)", sx, sy)
	}
	for _, p := range pts {
		if math.Abs(a.px+(p.dx-a.dx)*sx-p.px) > 0.03 || math.Abs(a.py+(p.dy-a.dy)*sy-p.py) > 0.03 {
			t.Errorf("point (%v, %v) drawn at (%v, %v), off the common scale", p.dx, p.dy, p.px, p.py)
		}
	}
	if len(root.class("band")) != 3 {
		t.Errorf("want 3 bands (0-shot whole, 4-shot split by its NA), got %d", len(root.class("band")))
	}
	// 8-shot's +Inf breaks its line in two.
	lines := root.class("series")[2].class("line")
	if len(lines) != 2 {
		t.Errorf("8-shot: %d line pieces, want 2", len(lines))
	}
	want := []Skip{{Series: "8-shot", Reason: "+Inf", Count: 1, First: "x=50"}}
	if !slices.Equal(f.Skipped, want) {
		t.Errorf("Skipped = %v, want %v", f.Skipped, want)
	}
}

func TestCurvesDownsampledAndSkipped(t *testing.T) {
	c := goldenCases()["curves_log"].(Curves)
	f := c.Render()
	root, err := parseSVG(f.SVG)
	if err != nil {
		t.Fatal(err)
	}
	curves := root.class("curve")
	if len(curves) != len(c.Series) {
		t.Fatalf("%d curves, want %d", len(curves), len(c.Series))
	}
	for i, cur := range curves {
		n := len(strings.Fields(cur.attr["points"]))
		if n > c.MaxPoints || n < c.MaxPoints-2 {
			t.Errorf("curve %d: %d points, want at most %d (and not far fewer)", i, n, c.MaxPoints)
		}
	}
	want := []Skip{{Series: c.Series[2].Name, Reason: "NaN", Count: 1, First: "x=1.234e+04"}}
	if !slices.Equal(f.Skipped, want) {
		t.Errorf("Skipped = %v, want %v", f.Skipped, want)
	}
	// Legend of 12 entries wraps onto more than one row.
	rows := map[string]bool{}
	for _, it := range root.class("legend-item") {
		rows[it.children[len(it.children)-1].attr["y"]] = true
	}
	if len(rows) < 2 {
		t.Errorf("legend of 12 long entries sits on %d row", len(rows))
	}
}

func TestLinesLengthMismatch(t *testing.T) {
	f := Lines{
		Categories: []string{"a", "b"},
		Series: []LineSeries{
			{Name: "long", Y: []Value{V(1), V(2), V(3)}},
			{Name: "short", Y: []Value{V(1)}},
		},
	}.Render()
	want := []Skip{{Series: "long", Reason: "no category", Count: 1, First: "point 2"}}
	if !slices.Equal(f.Skipped, want) {
		t.Errorf("categorical: Skipped = %v, want %v", f.Skipped, want)
	}
	f = Lines{Series: []LineSeries{{Name: "s", X: []float64{1}, Y: []Value{V(1), V(2)}}}}.Render()
	want = []Skip{{Series: "s", Reason: "no x value", Count: 1, First: "point 1"}}
	if !slices.Equal(f.Skipped, want) {
		t.Errorf("numeric: Skipped = %v, want %v", f.Skipped, want)
	}
}

func TestCurvesLogNonPositive(t *testing.T) {
	f := Curves{LogY: true, Series: []Curve{{Name: "loss", X: []float64{0, 1, 2, 3}, Y: []float64{4, 0, -1, 2}}}}.Render()
	want := []Skip{{Series: "loss", Reason: "non-positive on log axis", Count: 2, First: "x=1"}}
	if !slices.Equal(f.Skipped, want) {
		t.Errorf("Skipped = %v, want %v", f.Skipped, want)
	}
}

func TestNoData(t *testing.T) {
	cases := map[string]Chart{
		"bars without series": GroupedBars{Groups: []string{"a"}},
		"bars without groups": GroupedBars{Series: []BarSeries{{Name: "s", Values: []Value{V(1)}}}},
		"bars all missing":    GroupedBars{Groups: []string{"a"}, Series: []BarSeries{{Name: "s", Values: []Value{NA()}}}},
		"lines zero value":    Lines{},
		"lines no x":          Lines{Series: []LineSeries{{Name: "s", Y: []Value{V(1)}}}},
		"lines all Inf":       Lines{Categories: []string{"a"}, Series: []LineSeries{{Name: "s", Y: []Value{V(math.Inf(-1))}}}},
		"curves zero value":   Curves{},
		"curves all NaN":      Curves{Series: []Curve{{Name: "s", X: []float64{1}, Y: []float64{math.NaN()}}}},
	}
	for name, c := range cases {
		root, err := parseSVG(c.Render().SVG)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if nd := root.class("no-data"); len(nd) != 1 || nd[0].text != "no data" {
			t.Errorf("%s: no \"no data\" message", name)
		}
	}
}

func TestSeriesStylesDistinct(t *testing.T) {
	// Lines tell series apart by colour and marker (and dash); bars by
	// colour and hatching.
	lines := map[[2]string]int{}
	for i := range 56 { // 8 colours × 7 markers
		st := seriesStyle(i)
		key := [2]string{st.color, strconv.Itoa(int(st.marker))}
		if j, ok := lines[key]; ok {
			t.Errorf("line series %d and %d share colour and marker %v", j, i, key)
		}
		lines[key] = i
	}
	bars := map[[2]string]int{}
	for i := range 32 { // 8 colours × 4 hatchings
		st := seriesStyle(i)
		key := [2]string{st.color, strconv.Itoa(st.hatch)}
		if j, ok := bars[key]; ok {
			t.Errorf("bar series %d and %d share colour and hatching %v", j, i, key)
		}
		bars[key] = i
		if i >= 8 && st.dash == seriesStyle(i-8).dash {
			t.Errorf("series %d and %d share colour and dash", i-8, i)
		}
	}
}

func TestWrapAndTruncate(t *testing.T) {
	long := strings.Repeat("word ", 40) + strings.Repeat("x", 200)
	for _, line := range wrap(long, 12, 200) {
		if textWidth(line, 12) > 200 {
			t.Errorf("wrapped line %q is wider than 200", line)
		}
	}
	if got := strings.Join(wrap(long, 12, 200), ""); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(long, " ", "") {
		t.Error("wrap lost characters")
	}
	tr := truncate("héllo wörld, a long name", 12, 60)
	if textWidth(tr, 12) > 60 || !strings.HasSuffix(tr, "…") {
		t.Errorf("truncate gave %q", tr)
	}
}

// untransformed lists the text, rect and line elements not inside a
// transformed group, whose coordinates are therefore viewBox coordinates.
func untransformed(n *node) []*node {
	var out []*node
	if n.name == "g" && n.attr["transform"] != "" {
		return nil
	}
	if n.name == "text" || n.name == "rect" || n.name == "line" {
		out = append(out, n)
	}
	for _, c := range n.children {
		out = append(out, untransformed(c)...)
	}
	return out
}
