package main

import (
	"encoding/json"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/ablations"
)

func newSweepCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Expand a sweep file into cells, plan them, run them",
		Long: `A sweep file names a base run config and the axes that vary; its cells are
the cartesian product of the axes (zip groups vary together, exclude drops
combinations) times the seeds. Each cell has a readable name
(res=64,tokens=16,seed=0) and a stable id (a hash of its resolved config).

  name: resolution
  base: ../../experiments/examples/tiny.yaml     # or an inline run config
  set: {train.steps: 200, data.packing.image_tokens: 0, data.packing.resolution: 0}   # every cell; 0: follow the model
  axes:
    model.vision.resolution: [32, 64]
    model.connector.tokens: [4, 16]
  labels: {model.vision.resolution: res, model.connector.tokens: tokens}
  zip:
    - name: mixture
      keys: [data.sources.caption.weight, data.sources.text.weight]
      values: [[90, 10], [50, 50]]
  exclude: [{res: 32, tokens: 16}]
  seeds: [0, 1, 2]
  baseline: {res: 64, tokens: 16}
  slurm: {partition: debug, time: "00:30:00", mem: 4G, cpus_per_task: 2, max_parallel: 4}

Errors name the file, line and key path, with a "did you mean" for
misspelt run-config keys. See ablations/examples/ for MM1's ablations.`,
	}
	cmd.AddCommand(newSweepPlanCmd(), newSweepRunCmd(), newSweepStatusCmd(), newSweepCancelCmd(), newSweepRunCellCmd())
	return cmd
}

func newSweepPlanCmd() *cobra.Command {
	var (
		asJSON      bool
		noCalibrate bool
		steps       int
	)
	cmd := &cobra.Command{
		Use:   "plan FILE [--json] [--no-calibrate]",
		Short: "List a sweep's cells with their size, FLOPs and estimated time",
		Long: `plan expands a sweep file and lists its cells, one per line: id, name
(the baseline marked *), parameters, training FLOPs per step, LLM tokens
per image, training steps and the estimated wall time of training plus
evaluation when run alone with the cell's train.threads.

The time comes from a short calibration: for each distinct model shape
(seeds and data mixtures share one) the model is built and a few training
steps are timed, then one generation per few-shot setting is timed and
scaled by the prompts the evaluation decodes. The steps read the cell's own
data mixture when its datasets and tokenizer exist (after a first run or
` + "`mmablate data synth`" + `), else synthetic batches with every image slot
filled; the last line says which. Data preparation (the shapes world, the
tokenizer) is not counted. --no-calibrate skips it and shows "-".

FLOPs per step count forward and backward matrix products (models' FLOPs
convention) with every image slot of the batch filled:
batch_size × min(max_images, seq_len / image_tokens) images.

Example:

  mmablate sweep plan ablations/examples/quickstart.yaml
  mmablate sweep plan ablations/examples/resolution.yaml --json --no-calibrate

Flags:
  --json             a JSON list: id, name, axes, seed, baseline, params, trainable,
                     flops_per_step, image_tokens, images_per_step, steps, est_seconds,
                     step_seconds, eval_seconds, calibrated_on (data or synthetic)
  --no-calibrate     no timing (est_seconds null)
  --calibrate-steps  timed training steps per model shape (default 3)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if steps < 1 {
				return usagef("--calibrate-steps %d: want at least 1 (or --no-calibrate)", steps)
			}
			s, err := ablations.Load(args[0])
			if err != nil {
				return err
			}
			opts := ablations.PlanOptions{CalibrateSteps: steps, Log: slog.Default()}
			if noCalibrate {
				opts.CalibrateSteps = 0
			}
			rows, err := ablations.Plan(cmd.Context(), s, opts)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			return ablations.WritePlan(cmd.OutOrStdout(), rows)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print a JSON list instead of a table")
	f.BoolVar(&noCalibrate, "no-calibrate", false, "skip the timing calibration")
	f.IntVar(&steps, "calibrate-steps", ablations.DefaultCalibrateSteps, "timed training steps per model shape")
	return cmd
}
