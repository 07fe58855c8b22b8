package reports

import (
	"bytes"
	"fmt"
	"html/template"
)

// htmlTemplate is report.html: one file, figures inline, no script and no
// external resource. html/template escapes every string from the sweep;
// only the SVG of package plot, which escapes its own text, goes in raw.
var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sweep report: {{.Name}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
figure{margin:0 0 28px}figcaption{font-size:.9em;color:#444}
svg{max-width:100%;height:auto}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f3f3f3}
tr.within td,tr.nonoise td{color:#555}
tr.better td:last-child{color:#0a6e31;font-weight:600}
tr.worse td:last-child{color:#a3261b;font-weight:600}
#unfinished td{white-space:pre-wrap}
tr.failed td{background:#fdecea}tr.running td{background:#eef5fd}tr.pending td{background:#f7f7f7}
pre{background:#f6f8fa;padding:10px;overflow-x:auto;font-size:.85em}
#problems li{color:#a3261b}
#summary{font-size:1.05em;background:#f6f8fa;padding:10px 14px;border-left:4px solid #0072b2}
</style>
</head>
<body>
<h1>Sweep report: {{.Name}}</h1>
<p id="meta">Created {{.Created}} · code version <code>{{.CodeVersion}}</code> · executor {{.Executor}} · {{.Counts}}</p>

<h2>Summary</h2>
<p id="summary">{{.Summary}}</p>
{{if .Problems}}
<section id="problems">
<h2>Problems</h2>
<p>These parts of the sweep directory could not be read; the report leaves them out.</p>
<ul>{{range .Problems}}
<li>{{.}}</li>{{end}}
</ul>
</section>{{end}}
{{if .Unfinished.Rows}}
<section id="status">
<h2>Unfinished cells</h2>
{{template "table" .Unfinished}}
</section>{{end}}

<section id="axes">
<h2>Axes</h2>
{{range .AxisFigs}}{{template "figure" .}}{{end}}
</section>
{{if .MixtureFigs}}
<section id="mixtures">
<h2>Data mixtures</h2>
{{range .MixtureFigs}}{{template "figure" .}}{{end}}
</section>{{end}}

<section id="comparison">
<h2>Against the baseline</h2>
{{if .BaselineLabel}}<p>Baseline: <code>{{.BaselineLabel}}</code>. Δ is the setting minus the baseline, paired by seed; ± is the spread of the paired differences over seeds; ≈ marks a difference within noise.</p>
{{template "table" .Baseline}}{{else}}<p>The sweep names no baseline cell, so nothing is compared with one.</p>{{end}}
</section>

<section id="training">
<h2>Training</h2>
{{range .TrainingFigs}}{{template "figure" .}}{{end}}
</section>

<section id="all-cells">
<h2>All cells</h2>
{{template "table" .Cells}}
</section>

<section id="method">
<h2>How the numbers are made</h2>
<ul>{{range .Notes}}
<li>{{.}}</li>{{end}}
</ul>
</section>

<section id="settings">
<h2>Settings and reproduction</h2>
<h3>Reproduce</h3>
<pre id="reproduce">{{.Reproduce}}</pre>
<h3>Sweep file (sweep.yaml)</h3>
<p>Run from <code>{{.File}}</code>; SHA-256 of it and its base file: <code>{{.FileSHA256}}</code>. Seeds: {{.Seeds}}.</p>
<pre>{{.SweepYAML}}</pre>
{{if .BaseConfigPath}}<h3>Base config: {{.BaseConfigPath}}</h3>
{{if .BaseConfig}}<pre>{{.BaseConfig}}</pre>{{end}}{{end}}
{{if .BaselineConfig}}<details><summary>Resolved config of the baseline cell</summary>
<pre>{{.BaselineConfig}}</pre></details>{{end}}
<h3>Datasets</h3>
{{if .Datasets.Rows}}{{template "table" .Datasets}}{{else}}<p>sweep.json lists no datasets.</p>{{end}}
</section>
</body>
</html>
{{define "figure"}}<figure class="{{.Class}}" id="{{.ID}}">
{{.HTML}}
<figcaption>{{.Caption}}</figcaption>
</figure>
{{end}}{{define "table"}}<div class="scroll"><table id="{{.ID}}">
<thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}
<tr{{if .Class}} class="{{.Class}}"{{end}}>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>{{end}}
</tbody>
</table></div>
{{end}}`))

func renderHTML(v *view) ([]byte, error) {
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("report.html: %w", err)
	}
	return b.Bytes(), nil
}
