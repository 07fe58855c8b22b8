package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/reports"
)

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report SWEEP_DIR",
		Short: "Write a sweep's report: HTML, Markdown and a Parquet table of every score",
		Long: `report reads a sweep directory (written by mmablate sweep run) and writes,
into --out (default SWEEP_DIR/report):

  report.html       one self-contained page, figures inline as SVG, no script
  report.md         the same tables, figures as fig-*.svg files beside it
  results.parquet   one row per cell × task × shots × metric × trial, with a
                    column per axis (int64, float64 or string as its values
                    are); cells without scores get one row with null scores

The report shows, per axis, grouped bars of the 0/4/8-shot average (the mean
of captioning CIDEr×100 and VQA accuracy, as MM1 averages them) for each
value, marginalised over the other axes, with error bars of ± the spread over
seeds (or over demonstration trials with one seed); for axes of data-source
weights, lines of each metric against the mixture; training-loss curves and
validation perplexity; every setting against the baseline, paired by seed,
marked "within noise" when |Δ| ≤ √(σ_setting² + σ_baseline²); a summary
paragraph; and the sweep's settings with the commands that reproduce it.

A sweep still running, or with failed cells, is reported as far as it has
got: unfinished cells are listed with their state and FAILED reason. Files
that cannot be read (a corrupt metrics.jsonl line, a missing or corrupt
eval.json) are warned about on stderr and listed under Problems. report
fails only when SWEEP_DIR holds no readable sweep.json.

The last lines printed are the path of report.html and the summary.

Example:

  mmablate report runs/resolution
  mmablate report runs/resolution --out /tmp/resolution-report

Flags:
  --out   report directory (default SWEEP_DIR/report)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if out == "" {
				out = filepath.Join(dir, "report")
			}
			summary, err := reports.Write(cmd.Context(), dir, out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "report: %s\n", filepath.Join(out, reports.HTMLFile))
			fmt.Fprintln(w, summary)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "report directory (default SWEEP_DIR/report)")
	return cmd
}
