// Package plot draws the figures of an mmablate report as standalone SVG:
// grouped bars (MM1's Figure 3 style: one group per setting of an ablation
// axis, one bar per 0/4/8-shot average), lines over a numeric or categorical
// x (the data-mixture plots), and training curves (loss and perplexity over
// steps, one series per cell).
//
// The SVG is written by hand so that a report stays one self-contained file:
// no script, no external font, stylesheet or image, text as <text> in a
// system font stack, and a viewBox so the figure scales with its container
// (it also carries its natural width and height; inlined in HTML, CSS
// "svg { max-width: 100%; height: auto }" lets it shrink with the page).
// The same input always gives the same bytes: coordinates are rounded to two
// decimals and nothing depends on map order, time or randomness, so figures
// can be golden-tested and diffed between report runs.
//
// Every string (titles, axis titles, group and series names) comes from
// configs and datasets and is XML-escaped. Missing values are shown as such
// ("n/a" in bar charts, a gap in lines), never as zero. Non-finite values
// (NaN, ±Inf, and non-positive values on a log axis) are left out of the
// drawing and listed in Figure.Skipped, and a footnote in the figure says how
// many were left out. A chart with nothing to draw says "no data".
//
// Example:
//
//	fig := plot.GroupedBars{
//		Title:  "Image resolution",
//		X:      plot.Axis{Label: "Resolution", Unit: "px"},
//		Y:      plot.Axis{Label: "Average score", Unit: "%"},
//		Groups: []string{"64", "96", "128"},
//		Series: []plot.BarSeries{
//			{Name: "0-shot", Values: []plot.Value{plot.MeanStd(21.3, 0.8), plot.MeanStd(25.0, 1.1), plot.NA()}},
//			{Name: "4-shot", Values: []plot.Value{plot.V(30.2), plot.V(34.9), plot.V(36.0)}},
//		},
//	}.Render()
//	os.WriteFile("resolution.svg", fig.SVG, 0o644)
//	for _, s := range fig.Skipped {
//		slog.Warn("value left out of figure", "figure", "resolution", "skip", s)
//	}
package plot
