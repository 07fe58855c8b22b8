package reports

import (
	"bytes"
	"fmt"
	"strings"
)

// renderMarkdown writes report.md: the HTML report's text and tables, with
// figures as links to the SVG files written beside it.
func renderMarkdown(v *view) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Sweep report: %s\n\n", mdText(v.Name))
	fmt.Fprintf(&b, "Created %s · code version `%s` · executor %s · %s\n\n", mdText(v.Created), mdCode(v.CodeVersion), mdText(v.Executor), mdText(v.Counts))
	fmt.Fprintf(&b, "## Summary\n\n%s\n\n", mdText(v.Summary))
	if len(v.Problems) > 0 {
		b.WriteString("## Problems\n\nThese parts of the sweep directory could not be read; the report leaves them out.\n\n")
		for _, p := range v.Problems {
			fmt.Fprintf(&b, "- %s\n", mdText(p))
		}
		b.WriteString("\n")
	}
	if len(v.Unfinished.Rows) > 0 {
		b.WriteString("## Unfinished cells\n\n")
		mdTable(&b, v.Unfinished)
	}
	b.WriteString("## Axes\n\n")
	mdFigures(&b, v.AxisFigs)
	if len(v.MixtureFigs) > 0 {
		b.WriteString("## Data mixtures\n\n")
		mdFigures(&b, v.MixtureFigs)
	}
	b.WriteString("## Against the baseline\n\n")
	if v.BaselineLabel != "" {
		fmt.Fprintf(&b, "Baseline: `%s`. Δ is the setting minus the baseline, paired by seed; ± is the spread of the paired differences over seeds; ≈ marks a difference within noise.\n\n", mdCode(v.BaselineLabel))
		mdTable(&b, v.Baseline)
	} else {
		b.WriteString("The sweep names no baseline cell, so nothing is compared with one.\n\n")
	}
	b.WriteString("## Training\n\n")
	mdFigures(&b, v.TrainingFigs)
	b.WriteString("## All cells\n\n")
	mdTable(&b, v.Cells)
	b.WriteString("## How the numbers are made\n\n")
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "- %s\n", mdText(n))
	}
	b.WriteString("\n## Settings and reproduction\n\n### Reproduce\n\n")
	mdBlock(&b, "sh", v.Reproduce)
	b.WriteString("### Sweep file (sweep.yaml)\n\n")
	fmt.Fprintf(&b, "Run from `%s`; SHA-256 of it and its base file: `%s`. Seeds: %s.\n\n", mdCode(v.File), mdCode(v.FileSHA256), mdText(v.Seeds))
	mdBlock(&b, "yaml", v.SweepYAML)
	if v.BaseConfigPath != "" {
		fmt.Fprintf(&b, "### Base config: %s\n\n", mdText(v.BaseConfigPath))
		if v.BaseConfig != "" {
			mdBlock(&b, "yaml", v.BaseConfig)
		}
	}
	if v.BaselineConfig != "" {
		b.WriteString("### Resolved config of the baseline cell\n\n")
		mdBlock(&b, "yaml", v.BaselineConfig)
	}
	b.WriteString("### Datasets\n\n")
	if len(v.Datasets.Rows) > 0 {
		mdTable(&b, v.Datasets)
	} else {
		b.WriteString("sweep.json lists no datasets.\n")
	}
	return b.Bytes()
}

func mdFigures(b *bytes.Buffer, figs []figure) {
	for _, f := range figs {
		fmt.Fprintf(b, "![%s](%s)\n\n%s\n\n", mdText(f.Title), f.File, mdText(f.Caption))
	}
}

func mdTable(b *bytes.Buffer, t table) {
	cells := func(xs []string) {
		b.WriteString("|")
		for _, x := range xs {
			b.WriteString(" " + mdText(x) + " |")
		}
		b.WriteString("\n")
	}
	cells(t.Head)
	b.WriteString("|")
	for range t.Head {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		cells(r.Cells)
	}
	b.WriteString("\n")
}

// mdBlock writes a fenced block whose fence is longer than any backtick run
// in the text, so the text cannot close it.
func mdBlock(b *bytes.Buffer, lang, text string) {
	fence := "```"
	for strings.Contains(text, fence) {
		fence += "`"
	}
	b.WriteString(fence + lang + "\n" + strings.TrimRight(text, "\n") + "\n" + fence + "\n\n")
}

// mdEscaper escapes what Markdown (and the HTML it may contain) would
// otherwise interpret in a string from the sweep.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "|", `\|`,
	"<", "&lt;", ">", "&gt;", "&", "&amp;", "#", `\#`, "\r\n", " ", "\n", " ", "\r", " ",
)

func mdText(s string) string { return mdEscaper.Replace(s) }

// mdCode is text for inside a code span: backticks cannot be escaped
// there, so they become quotes.
func mdCode(s string) string { return mdCodeReplacer.Replace(s) }

var mdCodeReplacer = strings.NewReplacer("`", "'", "\n", " ")
