package reports

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/reports/internal/browsertest"
)

// TestReportInBrowser opens report.html in headless Chromium: one figure per
// axis, the baseline and cell tables, the summary, and no script errors
// (the page has no script, so a hostile cell name that got through would
// show up as one).
func TestReportInBrowser(t *testing.T) {
	browsertest.Require(t)
	// One page is enough for the browser (each render takes seconds of
	// the CI's two cores); TestMixtureFigures counts the mixture figures.
	for _, tc := range []struct {
		name          string
		axes, mixture int
	}{
		{"partial", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, _ := writeReport(t, tc.name)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dom, errs, err := browsertest.RenderDOM(ctx, filepath.Join(out, HTMLFile))
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) > 0 {
				t.Errorf("script errors: %q", errs)
			}
			if n := len(regexp.MustCompile(`<figure class="axis" id="fig-axis-`).FindAllString(dom, -1)); n != tc.axes {
				t.Errorf("%d axis figures, want %d", n, tc.axes)
			}
			if n := strings.Count(dom, `<figure class="mixture"`); n != tc.mixture {
				t.Errorf("%d mixture figures, want %d", n, tc.mixture)
			}
			for _, want := range []string{`<table id="baseline">`, `<table id="cells">`, `<p id="summary">`, `<section id="settings">`} {
				if !strings.Contains(dom, want) {
					t.Errorf("DOM lacks %s", want)
				}
			}
			if strings.Contains(dom, "<script>alert") {
				t.Error("a hostile axis value became a script element")
			}
		})
	}
}

// TestMixtureFigures: a data-mixture axis gets its bar chart and lines of
// the average, each metric and the perplexity against the mixture.
func TestMixtureFigures(t *testing.T) {
	out, _, _ := writeReport(t, "mixture")
	html := readFile(t, filepath.Join(out, HTMLFile))
	if n := strings.Count(html, `<figure class="axis"`); n != 1 {
		t.Errorf("%d axis figures, want 1", n)
	}
	if n := strings.Count(html, `<figure class="mixture"`); n != 5 {
		t.Errorf("%d mixture figures, want 5 (average, CIDEr, BLEU-4, VQA accuracy, perplexity)", n)
	}
}
