// Package reports turns a sweep directory into a report: report.html (one
// self-contained file, figures inline as SVG, no script), report.md (the same
// tables, figures as SVG files beside it) and results.parquet (every score,
// one row per cell × task × shots × metric × trial, a column per axis).
//
// It reads directories only, never the packages that wrote them
// (ablations, experiments, models, mixer, data): the files of the
// sweep-directory contract are decoded by this package's own structs.
//
//	DIR/sweep.json                 name, axes and their display values, seeds,
//	                               baseline, cells, datasets, code version
//	DIR/sweep.yaml                 the sweep file, shown in the report
//	DIR/executor.json              which executor ran the sweep
//	DIR/cells/ID/config.yaml       the cell's resolved run config
//	DIR/cells/ID/RUNNING, FAILED   a cell that runs, a cell that failed and why
//	DIR/cells/ID/run/DONE          a finished cell
//	DIR/cells/ID/run/metrics.jsonl the training loss: {"step":10,"loss":4.30,...} a line
//	DIR/cells/ID/run/eval.json     few-shot scores: tasks[].shots[].metrics.{cider,bleu4,accuracy}
//	                               {mean,std,trials} and perplexity.perplexity
//
// What the report shows, as MM1's ablations do: per axis, grouped bars of the
// 0/4/8-shot average (the mean of captioning CIDEr×100 and VQA accuracy in %)
// for each value, marginalised over the other axes, with error bars of ± the
// spread over seeds (or over demonstration trials with one seed); for axes
// of data-source weights, lines of each metric and of the validation
// perplexity against the mixture; training-loss curves and validation
// perplexity; every setting against the baseline, paired by seed, marked
// "within noise" when |Δ| ≤ √(σ_setting² + σ_baseline²); a summary paragraph
// saying which axis moved the average most and which barely moved it; and
// the sweep's settings with the commands that reproduce it.
//
// A partial or damaged sweep is reported as far as it can be: unfinished
// cells are listed with their state (failed with FAILED's reason, running with
// where), and unreadable files (a corrupt metrics.jsonl line, a missing or
// corrupt eval.json) are listed under Problems and logged as warnings naming
// the file and line. Only a directory without a readable sweep.json is an
// error.
//
// Example:
//
//	summary, err := reports.Write(ctx, "runs/resolution", "")   // writes runs/resolution/report/
package reports
