package browsertest

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/reports/plot"
)

var screenshot = flag.String("screenshot", "", "also write a PNG of the figures page to this path, to look at")

// figuresPage writes an HTML page with one figure of each kind, titled with
// hostile strings, and returns its path.
func figuresPage(t *testing.T, script string) string {
	t.Helper()
	bars := plot.GroupedBars{
		Title:  `Resolution <script>alert("bars")</script> & more`,
		X:      plot.Axis{Label: "Resolution", Unit: "px"},
		Y:      plot.Axis{Label: "Average score", Unit: "%"},
		Groups: []string{"res=64", "res=96", "res=128"},
		Series: []plot.BarSeries{
			{Name: "0-shot", Values: []plot.Value{plot.MeanStd(21.3, 0.8), plot.MeanStd(25.0, 1.1), plot.MeanStd(27.4, 0.6)}},
			{Name: "4-shot", Values: []plot.Value{plot.MeanStd(30.2, 1.5), plot.NA(), plot.MeanStd(36.0, 1.0)}},
			{Name: "8-shot", Values: []plot.Value{plot.Interval(31.9, 30.1, 33.0), plot.V(math.NaN()), plot.V(38.5)}},
		},
	}
	lines := plot.Lines{
		Title:      "Mixture ]]> ratio",
		X:          plot.Axis{Label: "caption : interleaved : text"},
		Y:          plot.Axis{Label: "8-shot average", Unit: "%"},
		Categories: []string{"1:0:0", "5:5:1", "1:1:0", "0:1:0"},
		Errors:     plot.ErrorBands,
		Series: []plot.LineSeries{
			{Name: "captioning", Y: []plot.Value{plot.MeanStd(40, 2), plot.MeanStd(55, 1.5), plot.MeanStd(52, 1.8), plot.MeanStd(47, 2.5)}},
			{Name: `VQA "accuracy"`, Y: []plot.Value{plot.V(30), plot.NA(), plot.V(41), plot.V(39)}},
		},
	}
	curves := plot.Curves{Title: "Training loss", X: plot.Axis{Label: "Step"}, Y: plot.Axis{Label: "Loss"}, LogY: true}
	for s := range 10 {
		c := plot.Curve{Name: "cell " + string(rune('a'+s)) + " <b>"}
		for i := range 3000 {
			step := float64(i * 10)
			c.X = append(c.X, step)
			c.Y = append(c.Y, 2+8*math.Exp(-step/(2000+300*float64(s)))+0.05*math.Sin(step/7))
		}
		curves.Series = append(curves.Series, c)
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>figures</title>\n" +
		"<style>body{font-family:system-ui,sans-serif;margin:16px;max-width:760px} figure{margin:0 0 20px} svg{max-width:100%;height:auto}</style>\n" +
		"</head><body>\n")
	for _, c := range []plot.Chart{bars, lines, curves} {
		b.WriteString("<figure>")
		b.Write(c.Render().SVG)
		b.WriteString("</figure>\n")
	}
	b.WriteString(script)
	b.WriteString("</body></html>\n")
	path := filepath.Join(t.TempDir(), "figures.html")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRenderFigures(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	page := figuresPage(t, "")
	dom, errs, err := RenderDOM(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 0 {
		t.Errorf("clean page reported errors: %q", errs)
	}
	if n := strings.Count(dom, "<svg "); n != 3 {
		t.Errorf("DOM has %d <svg> elements, want 3", n)
	}
	if strings.Contains(dom, "data-browsertest") {
		t.Error("the hook's own elements are left in the DOM")
	}
	// The escaped title must come through as text, never as an element.
	if !strings.Contains(dom, `Resolution &lt;script&gt;alert("bars")&lt;/script&gt; &amp; more`) {
		t.Error("the escaped bar chart title is not in the DOM as text")
	}
	if strings.Contains(dom, "<script>alert") {
		t.Error("a title became a <script> element")
	}
	if *screenshot != "" {
		if err := Screenshot(ctx, page, *screenshot, 800, 1500); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot in %s", *screenshot)
	}
}

func TestRenderDetectsErrors(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	page := figuresPage(t, `<script>document.title = undefinedFunction();</script>
<script>console.error("bad", 42);</script>
<script>this is not javascript</script>
<img src="missing.png" alt="">
`)
	dom, errs, err := RenderDOM(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("errors reported: %q", errs)
	if len(errs) != 4 {
		t.Errorf("got %d errors, want 4 (one per fault, none twice)", len(errs))
	}
	// The page's lines: the figures, then the scripts from line N on.
	line := strings.Count(string(mustRead(t, page)), "\n") - 4
	want := []string{
		"undefinedFunction is not defined at " + fileURL(page) + ":" + strconv.Itoa(line),
		"console.error: bad 42",
		"SyntaxError",
		"failed to load <img> " + fileURL(filepath.Dir(page)) + "/missing.png",
	}
	all := strings.Join(errs, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("errors %q lack %q", errs, w)
		}
	}
	if n := strings.Count(dom, "<svg "); n != 3 {
		t.Errorf("DOM has %d <svg> elements, want 3", n)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInstrumentKeepsDoctype(t *testing.T) {
	tests := []struct{ page, prefix, suffix string }{
		{"<!DOCTYPE html><html><body>x</body></html>", "<!DOCTYPE html><base ", "</script><html><body>x</body></html>"},
		{"  <!doctype HTML>\n<p>x", "  <!doctype HTML><base ", "</script>\n<p>x"},
		{"<p>no doctype</p>", "<base ", "</script><p>no doctype</p>"},
	}
	for _, tt := range tests {
		got := string(instrument([]byte(tt.page), "/tmp/a b"))
		if !strings.HasPrefix(got, tt.prefix) || !strings.Contains(got, `href="file:///tmp/a%20b/"`) || !strings.HasSuffix(got, tt.suffix) {
			t.Errorf("instrument(%q) = %q", tt.page, got)
		}
	}
}

func TestParseConsole(t *testing.T) {
	stderr := []byte(`[1:2:1126/162727.238814:ERROR:dbus/bus.cc:405] Failed to connect to the bus
[24932:24932:1126/162728.376434:INFO:CONSOLE:1] "boom1", source: file:///tmp/ct/t.html (1)
[24932:24932:1126/162728.380339:INFO:CONSOLE(7)] "Uncaught ReferenceError: f is not defined", source: file:///x.html (7)
`)
	got := parseConsole(stderr)
	want := []string{"boom1", "Uncaught ReferenceError: f is not defined"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("parseConsole = %q, want %q", got, want)
	}
}
