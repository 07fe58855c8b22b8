package reports

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mmablate/mmablate/internal/atomicfile"
	"github.com/mmablate/mmablate/reports/plot"
)

// Files of the report directory.
const (
	HTMLFile     = "report.html"
	MarkdownFile = "report.md"
	ParquetFile  = "results.parquet"
)

// Write reads the sweep directory sweepDir and writes the report into outDir
// (sweepDir/report when empty): report.html, report.md with its figures as
// SVG files beside it, and results.parquet. It returns the summary
// paragraph. Problems with parts of the sweep are logged and listed in the
// report; Write fails only when nothing can be reported or a file cannot be
// written.
func Write(ctx context.Context, sweepDir, outDir string) (summary string, err error) {
	log := slog.Default()
	sw, err := Load(ctx, sweepDir, log)
	if err != nil {
		return "", err
	}
	if outDir == "" {
		outDir = filepath.Join(sweepDir, "report")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("report directory: %w", err)
	}
	a := Analyse(sw)
	v := newView(a, log)
	if err := ctx.Err(); err != nil {
		return "", err
	}
	for _, f := range v.allFigures() {
		if err := atomicfile.WriteFile(filepath.Join(outDir, f.File), f.SVG, 0o644); err != nil {
			return "", fmt.Errorf("figure: %w", err)
		}
	}
	html, err := renderHTML(v)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(outDir, HTMLFile), html, 0o644); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(outDir, MarkdownFile), renderMarkdown(v), 0o644); err != nil {
		return "", err
	}
	if err := writeParquet(filepath.Join(outDir, ParquetFile), a); err != nil {
		return "", err
	}
	return v.Summary, nil
}

// figure is one rendered chart of the report.
type figure struct {
	ID      string // HTML id, and the SVG file's stem
	Class   string // axis, mixture, training
	Title   string
	Caption string
	SVG     []byte
	File    string
}

// HTML is the SVG for inlining: package plot escapes every string it draws.
func (f figure) HTML() template.HTML { return template.HTML(f.SVG) }

// row is one table row of display strings; Class marks a row for styling.
type row struct {
	Cells []string
	Class string
}

// table is a table of the report.
type table struct {
	ID   string
	Head []string
	Rows []row
}

// view is what both renderers show, computed once.
type view struct {
	Name, Dir, Created, CodeVersion, Executor string
	Counts                                    string
	Summary                                   string
	Problems                                  []string
	Unfinished                                table
	AxisFigs, MixtureFigs, TrainingFigs       []figure
	BaselineLabel                             string
	Baseline                                  table
	Cells                                     table
	Notes                                     []string
	SweepYAML, BaseConfig, BaseConfigPath     string
	BaselineConfig                            string
	Datasets                                  table
	Reproduce                                 string
	// File is the sweep file with its hash (of it and its base file).
	File, FileSHA256 string
	Seeds            string
}

func (v *view) allFigures() []figure {
	var out []figure
	out = append(out, v.AxisFigs...)
	out = append(out, v.MixtureFigs...)
	return append(out, v.TrainingFigs...)
}

func newView(a *Analysis, log *slog.Logger) *view {
	sw := a.Sweep
	v := &view{
		Name: sw.Name, Dir: sw.Dir, Created: sw.Created, CodeVersion: orUnknown(sw.CodeVersion),
		Executor: orUnknown(sw.Executor), Summary: Summary(a),
		SweepYAML: sw.SweepYAML, BaseConfig: sw.BaseConfig, BaseConfigPath: sw.BaseConfigPath, BaselineConfig: sw.BaselineConfig,
	}
	var counts []string
	for _, st := range []State{StateDone, StateFailed, StateRunning, StatePending} {
		counts = append(counts, fmt.Sprintf("%d %s", a.Counts[st], st))
	}
	v.Counts = fmt.Sprintf("%d cells: %s", len(sw.Cells), strings.Join(counts, ", "))
	for _, p := range sw.Problems {
		v.Problems = append(v.Problems, p.String())
	}
	v.Unfinished = table{ID: "unfinished", Head: []string{"Cell", "ID", "State", "Detail", "End of cell.log"}}
	for _, c := range sw.Cells {
		switch c.State {
		case StateFailed:
			v.Unfinished.Rows = append(v.Unfinished.Rows, row{Cells: []string{c.Name, c.ID, string(c.State), c.Failure, c.LogTail}, Class: "failed"})
		case StateRunning:
			v.Unfinished.Rows = append(v.Unfinished.Rows, row{Cells: []string{c.Name, c.ID, string(c.State), c.Where, ""}, Class: "running"})
		case StatePending:
			v.Unfinished.Rows = append(v.Unfinished.Rows, row{Cells: []string{c.Name, c.ID, string(c.State), "not started, or stopped without a trace", ""}, Class: "pending"})
		}
	}
	v.figures(a, log)
	v.baselineTable(a)
	v.cellTable(a)
	v.Notes = methodNotes(a)
	v.Datasets = table{ID: "datasets", Head: []string{"Dataset", "Manifest SHA-256"}}
	for _, d := range sw.Datasets {
		v.Datasets.Rows = append(v.Datasets.Rows, row{Cells: []string{d.Path, d.ManifestSHA256}})
	}
	v.Reproduce = reproduce(sw)
	v.File, v.FileSHA256 = orUnknown(sw.File), orUnknown(sw.FileSHA256)
	seeds := make([]string, len(sw.Seeds))
	for i, sd := range sw.Seeds {
		seeds[i] = strconv.FormatInt(sd, 10)
	}
	v.Seeds = strings.Join(seeds, ", ")
	return v
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// scoreAxis is the y axis of every average plot.
var scoreAxis = plot.Axis{Label: "Average score", Unit: "CIDEr×100 & VQA acc. %"}

// figures draws one grouped-bar chart per axis, the mixture lines, and
// the training curves.
func (v *view) figures(a *Analysis, log *slog.Logger) {
	sw := a.Sweep
	add := func(dst *[]figure, class, id, title, caption string, c plot.Chart) {
		f := c.Render()
		for _, s := range f.Skipped {
			log.Warn("report: value left out of figure", "figure", title, "skip", s.String())
		}
		id = "fig-" + id
		*dst = append(*dst, figure{ID: id, Class: class, Title: title, Caption: caption, SVG: f.SVG, File: id + ".svg"})
	}
	for ai, ax := range sw.Axes {
		groups := make([]string, len(ax.Values))
		for i, val := range ax.Values {
			groups[i] = val.String()
		}
		var series []plot.BarSeries
		for _, k := range a.Shots {
			series = append(series, plot.BarSeries{Name: fmt.Sprintf("%d-shot", k), Values: plotValues(a.marginal(ai, a.average(k)))})
		}
		title := ax.Name + ": few-shot average"
		if len(a.Shots) > 0 {
			title = fmt.Sprintf("%s: %s-shot average", ax.Name, strings.Join(intStrings(a.Shots), "/"))
		}
		add(&v.AxisFigs, "axis", fmt.Sprintf("axis-%d-%s", ai+1, slug(ax.Name)), title,
			fmt.Sprintf("Axis %s (%s): mean over the cells with each value, marginalised over the other axes; error bars ± the noise (spread over seeds, or over trials with one seed).",
				ax.Name, strings.Join(ax.Keys, ", ")),
			plot.GroupedBars{Title: title, X: plot.Axis{Label: ax.Name}, Y: scoreAxis, Groups: groups, Series: series})
		if !ax.Mixture() {
			continue
		}
		type line struct {
			name string
			y    plot.Axis
			q    func(k int) quantity
		}
		lines := []line{{"Average score", scoreAxis, a.average}}
		for _, m := range a.Metrics {
			lines = append(lines, line{m.Label, plot.Axis{Label: m.Label, Unit: m.Unit}, func(k int) quantity { return metric(m, k) }})
		}
		for li, l := range lines {
			var series []plot.LineSeries
			for _, k := range a.Shots {
				series = append(series, plot.LineSeries{Name: fmt.Sprintf("%d-shot", k), Y: plotValues(a.marginal(ai, l.q(k)))})
			}
			title := fmt.Sprintf("%s by %s", l.name, ax.Name)
			add(&v.MixtureFigs, "mixture", fmt.Sprintf("mixture-%d-%d-%s", ai+1, li+1, slug(l.name)), title,
				fmt.Sprintf("Axis %s sets the source weights %s; error bars ± the noise (spread over seeds, or over trials with one seed).", ax.Name, strings.Join(ax.Keys, " : ")),
				plot.Lines{Title: title, X: plot.Axis{Label: ax.Name}, Y: l.y, Categories: groups, Series: series})
		}
		title = "Validation perplexity by " + ax.Name
		add(&v.MixtureFigs, "mixture", fmt.Sprintf("mixture-%d-%d-perplexity", ai+1, len(lines)+1), title,
			"Text perplexity of eval.text (lower is better).",
			plot.Lines{Title: title, X: plot.Axis{Label: ax.Name}, Y: plot.Axis{Label: "Perplexity"}, Categories: groups,
				Series: []plot.LineSeries{{Name: "perplexity", Y: plotValues(a.marginal(ai, perplexity))}}})
	}
	loss := plot.Curves{Title: "Training loss", X: plot.Axis{Label: "Step"}, Y: plot.Axis{Label: "Loss", Unit: "nats/token"}}
	for _, c := range sw.Cells {
		if len(c.Loss) == 0 {
			continue
		}
		cv := plot.Curve{Name: c.Name}
		for _, p := range c.Loss {
			cv.X = append(cv.X, float64(p.Step))
			cv.Y = append(cv.Y, p.Loss)
		}
		loss.Series = append(loss.Series, cv)
	}
	add(&v.TrainingFigs, "training", "training-loss", "Training loss", "Training loss of every cell with a metrics.jsonl, one line per cell.", loss)
	ppl := plot.GroupedBars{Title: "Validation perplexity", X: plot.Axis{Label: "Setting"}, Y: plot.Axis{Label: "Perplexity"}}
	var vals []plot.Value
	for _, s := range a.Settings {
		ppl.Groups = append(ppl.Groups, s.Label)
		vals = append(vals, plotValue(aggregate(s.Cells, perplexity)))
	}
	ppl.Series = []plot.BarSeries{{Name: "perplexity", Values: vals}}
	add(&v.TrainingFigs, "training", "validation-perplexity", "Validation perplexity",
		"Text perplexity after training per setting (mean over seeds ± their spread; lower is better; perplexity has no trials, so one seed has no error bar).", ppl)
}

func plotValues(sts []Stat) []plot.Value {
	out := make([]plot.Value, len(sts))
	for i, st := range sts {
		out[i] = plotValue(st)
	}
	return out
}

func plotValue(st Stat) plot.Value {
	switch {
	case !st.OK:
		return plot.NA()
	case st.HasNoise:
		return plot.MeanStd(st.Mean, st.Noise)
	}
	return plot.V(st.Mean)
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// slug makes a file-name-safe stem from a name.
func slug(s string) string {
	s = strings.Trim(slugRE.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		s = "x"
	}
	return s
}

// baselineTable compares every setting with the baseline.
func (v *view) baselineTable(a *Analysis) {
	if a.Baseline == nil {
		return
	}
	v.BaselineLabel = a.Baseline.Label
	v.Baseline = table{ID: "baseline", Head: []string{"Setting", "Shots", "Seeds paired", "Δ average"}}
	for _, m := range a.Metrics {
		v.Baseline.Head = append(v.Baseline.Head, "Δ "+m.Label)
	}
	v.Baseline.Head = append(v.Baseline.Head, "Noise (average)", "Verdict")
	for _, r := range a.Deltas {
		if r.Shots < 0 {
			cells := []string{r.Setting.Label, "—", "0"}
			for range len(r.Metrics) + 2 {
				cells = append(cells, "—")
			}
			var states []string
			for _, c := range r.Setting.Cells {
				states = append(states, fmt.Sprintf("seed %d %s", c.Seed, c.State))
			}
			v.Baseline.Rows = append(v.Baseline.Rows, row{Cells: append(cells, "no scores: "+strings.Join(states, ", ")), Class: "nodata"})
			continue
		}
		cells := []string{r.Setting.Label, strconv.Itoa(r.Shots), strconv.Itoa(r.Average.Paired), fmtDelta(r.Average)}
		for _, d := range r.Metrics {
			cells = append(cells, fmtDelta(d))
		}
		noise, verdict, class := "—", "no data", "nodata"
		if r.Average.OK {
			switch {
			case !r.Average.HasNoise:
				verdict, class = "no noise estimate", "nonoise"
			case r.Average.Within:
				noise, verdict, class = num(r.Average.Noise), "within noise", "within"
			case r.Average.Mean > 0:
				noise, verdict, class = num(r.Average.Noise), "better", "better"
			default:
				noise, verdict, class = num(r.Average.Noise), "worse", "worse"
			}
		}
		v.Baseline.Rows = append(v.Baseline.Rows, row{Cells: append(cells, noise, verdict), Class: class})
	}
}

// fmtDelta prints "+1.20 ± 0.30" (± the spread of the per-seed
// differences), with "≈" appended when within noise.
func fmtDelta(d Delta) string {
	if !d.OK {
		return "—"
	}
	s := num(d.Mean)
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	if d.HasSpread {
		s += " ± " + num(d.Spread)
	}
	if d.Within {
		s += " ≈"
	}
	return s
}

// cellTable lists every cell with its numbers.
func (v *view) cellTable(a *Analysis) {
	v.Cells = table{ID: "cells", Head: []string{"Cell", "ID", "Seed", "Baseline", "State", "Final loss", "Perplexity"}}
	for _, k := range a.Shots {
		v.Cells.Head = append(v.Cells.Head, fmt.Sprintf("Avg %d-shot", k))
		for _, m := range a.Metrics {
			v.Cells.Head = append(v.Cells.Head, fmt.Sprintf("%s %d-shot", m.Label, k))
		}
	}
	for _, c := range a.Sweep.Cells {
		base := ""
		if c.Baseline {
			base = "yes"
		}
		cells := []string{c.Name, c.ID, strconv.FormatInt(c.Seed, 10), base, string(c.State), optNum(c.FinalLoss()), optNum(c.Perplexity)}
		for _, k := range a.Shots {
			cells = append(cells, cellValue(a.average(k), c))
			for _, m := range a.Metrics {
				cells = append(cells, cellValue(metric(m, k), c))
			}
		}
		v.Cells.Rows = append(v.Cells.Rows, row{Cells: cells, Class: string(c.State)})
	}
}

func optNum(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	return num(x)
}

// cellValue prints a cell's quantity with its trial noise.
func cellValue(q quantity, c *Cell) string {
	m, s, ok := q(c)
	if !ok {
		return "—"
	}
	if s > 0 {
		return num(m) + " ± " + num(s)
	}
	return num(m)
}

// methodNotes say how the numbers were made.
func methodNotes(a *Analysis) []string {
	avg := "no metric of the average was found"
	if len(a.AvgMetrics) > 0 {
		avg = andList(avgNames(a.AvgMetrics))
	}
	return []string{
		"Average: MM1's few-shot average, the mean of " + avg + " at each shot count. CIDEr and BLEU-4 are printed ×100 (eval.json holds them as pycocoevalcap computes them: BLEU-4 in 0–1, CIDEr-D with its ×10 factor, about 0–10; MM1 prints both ×100); VQA accuracy is already a percentage. A cell lacking one of them has no average.",
		"Marginal means: for each value of an axis, the mean over all finished cells with that value, whatever the other axes.",
		"Noise (error bars, ±): the standard deviation over seeds of the per-seed means when two or more seeds have results; with one seed, the evaluation's spread over demonstration trials (combined as for a mean of independent values); none with one seed and one trial.",
		"Baseline deltas: each cell minus the baseline cell of the same seed, averaged over seeds; ± is the standard deviation of those paired differences. Seeds without a partner are compared as means (Seeds paired = 0). A delta is within noise (≈) when |Δ| ≤ √(σ_setting² + σ_baseline²), each σ the setting's noise as above.",
		"Final loss: the last training loss in metrics.jsonl. " + perplexityNote(a.Sweep.BaselineConfig),
	}
}

// perplexityNote says which documents the perplexity was measured on, as
// the baseline cell's resolved config names them (eval.text), and whether
// a training source reads that directory too: only a directory training
// never reads (the shapes world's eval/text) gives a validation perplexity.
func perplexityNote(resolved string) string {
	const what = "Perplexity: the text perplexity in eval.json"
	var cfg struct {
		Data struct {
			Sources map[string]struct {
				Paths []string `yaml:"paths"`
			} `yaml:"sources"`
		} `yaml:"data"`
		Eval struct {
			Text              string `yaml:"text"`
			PerplexitySamples int    `yaml:"perplexity_samples"`
		} `yaml:"eval"`
	}
	if resolved == "" || yaml.Unmarshal([]byte(resolved), &cfg) != nil || cfg.Eval.Text == "" {
		return what + ", over the last rows of eval.text; the baseline cell's config does not say which directory that is, so whether training read those documents (then the number measures fit, not validation) is unknown."
	}
	text := filepath.Clean(cfg.Eval.Text)
	docs := "the last rows"
	if n := cfg.Eval.PerplexitySamples; n > 0 {
		docs = fmt.Sprintf("the last %d rows", n)
	}
	names := slices.Sorted(maps.Keys(cfg.Data.Sources))
	for _, name := range names {
		for _, p := range cfg.Data.Sources[name].Paths {
			p = filepath.Clean(p)
			if p == text || strings.HasPrefix(text, p+string(filepath.Separator)) || strings.HasPrefix(p, text+string(filepath.Separator)) {
				return fmt.Sprintf("%s, over %s of %s (eval.text of the baseline cell), which training also reads (data source %s): it measures fit to training text, not a validation perplexity.", what, docs, text, name)
			}
		}
	}
	return fmt.Sprintf("%s, over %s of %s (eval.text of the baseline cell), which no data source of that cell reads: a validation perplexity, unless another directory holds the same documents (the shapes world's eval/text holds none of its text/).", what, docs, text)
}

// reproduce is the shell commands that rerun the sweep and this report.
func reproduce(sw *Sweep) string {
	var b strings.Builder
	if rev, ok := strings.CutSuffix(sw.CodeVersion, "+dirty"); rev != "" && rev != "unknown" {
		b.WriteString("git checkout " + shellQuote(rev))
		if ok {
			b.WriteString("   # the sweep ran on uncommitted changes to this revision")
		}
		b.WriteString("\n")
	}
	b.WriteString("go build -o bin/mmablate ./cmd/mmablate\n")
	file := sw.File
	if file == "" {
		file = filepath.Join(sw.Dir, sweepYAMLFile)
	}
	fmt.Fprintf(&b, "bin/mmablate sweep run %s --out %s\n", shellQuote(file), shellQuote(sw.Dir))
	fmt.Fprintf(&b, "bin/mmablate report %s\n", shellQuote(sw.Dir))
	return b.String()
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=+-]+$`)

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
