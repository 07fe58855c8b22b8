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
	for _, tc := range []struct {
		name          string
		axes, mixture int
	}{
		{"partial", 2, 0},
		{"mixture", 1, 5},
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
