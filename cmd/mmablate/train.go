package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mmablate/mmablate/experiments"
)

func newTrainCmd() *cobra.Command {
	var (
		configPath, out, resume string
		device, precision       string
		sets                    []string
	)
	cmd := &cobra.Command{
		Use:   "train (-c run.yaml [--out DIR] [--set key=value ...] | --resume DIR)",
		Short: "Train one cell from a run config, or resume an interrupted run",
		Long: `train runs one cell: it prepares the data (the shapes world and the tokenizer
are made on first use when the config asks for them), builds the model,
trains it with AdamW and a warm-up + cosine learning rate, and writes the
run directory:

  config.resolved.yaml   the config after defaults, overrides and derivation
  tokenizer.json         the tokenizer used
  metrics.jsonl          loss, lr, grad_norm, tokens/s and per-source counts
  checkpoints/           step-N weights, AdamW state and state.json
  final.safetensors      the trained weights
  eval.json              few-shot captioning, VQA and text perplexity (experiments/eval)
  DONE                   written last

Checkpoints are written every train.checkpoint_every steps, at the end, and
when the job is interrupted (Ctrl-C or SIGTERM): then it stops and says how
to resume. --resume continues from the newest complete checkpoint and ends
with the same final.safetensors, byte for byte, as an uninterrupted run
with the same train.threads on the same machine. A run directory that is
not empty is never trained into without --resume.

The config's keys are listed in experiments/examples/tiny.yaml; unknown keys
and values of the wrong type are errors naming file, line and key.

Example:

  mmablate train -c experiments/examples/tiny.yaml --out runs/tiny
  mmablate train -c experiments/examples/tiny.yaml --out runs/tiny-lr --set train.lr=1e-3
  mmablate train --resume runs/tiny
  mmablate train --resume runs/tiny-gpu --device cpu    # a GPU run continues on the CPU

Flags:
  -c, --config   the run config (YAML)
  --out          the run directory (default: the config's out, else runs/<name>)
  --set          override a config key, key.path=value (repeatable; the value is YAML)
  --resume       continue the run in this directory (no -c, --out or --set)
  --device       cpu or cuda: shorthand for --set device=…; cuda trains the whole model on the GPU
                 (decoder, ViT, connector and AdamW; only patchify stays on the CPU; a
                 CGO_ENABLED=0 build, make build-cuda, runs where the NVIDIA driver is).
                 With --resume: continue on this device; the checkpoints are the same files
                 whichever device wrote them, config.resolved.yaml is left as it is and
                 metrics.jsonl's "device" field records where each step ran
  --precision    fp32, tf32 or bf16 (with --device cuda): shorthand for --set precision=…`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := experiments.Options{Log: slog.Default()}
			if term.IsTerminal(int(os.Stderr.Fd())) {
				opts.Bar = cmd.ErrOrStderr()
			}
			if resume != "" {
				if configPath != "" || out != "" || len(sets) > 0 {
					return usagef("--resume takes no -c, --out or --set: the run directory holds its config (--device and --precision move it to another device)")
				}
				opts.Device, opts.Precision = device, precision
				if err := experiments.Resume(cmd.Context(), resume, opts); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), resume)
				return nil
			}
			if configPath == "" {
				return usagef("train needs -c run.yaml or --resume DIR (see --help)")
			}
			if device != "" {
				sets = append(sets, "device="+device)
			}
			if precision != "" {
				sets = append(sets, "precision="+precision)
			}
			cfg, err := experiments.Load(configPath, sets)
			if err != nil {
				return err
			}
			if out == "" {
				out = cfg.Out
			}
			if out == "" {
				if cfg.Name == "" {
					return usagef("the config has neither out nor name: pass --out DIR")
				}
				out = filepath.Join("runs", cfg.Name)
			}
			if err := experiments.Train(cmd.Context(), cfg, out, opts); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "the run config (YAML)")
	f.StringVar(&out, "out", "", "the run directory (default: the config's out, else runs/<name>)")
	f.StringArrayVar(&sets, "set", nil, "override a config key: key.path=value (repeatable)")
	f.StringVar(&resume, "resume", "", "continue the run in this directory")
	f.StringVar(&device, "device", "", "cpu or cuda (overrides the config's device)")
	f.StringVar(&precision, "precision", "", "fp32, tf32 or bf16 for device cuda (overrides the config's precision)")
	return cmd
}
