package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/experiments"
)

func newEncoderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "encoder",
		Short: "Pretrain an image encoder for model.vision.init",
	}
	cmd.AddCommand(newEncoderPretrainCmd())
	return cmd
}

func newEncoderPretrainCmd() *cobra.Command {
	var (
		configPath, out string
		sets            []string
		opts            experiments.EncoderOptions
	)
	cmd := &cobra.Command{
		Use:   "pretrain -c run.yaml --out FILE [--set key=value ...] [--steps N] [--batch B] [--lr X] [--seed S]",
		Short: "Pretrain the run config's ViT on the shapes world's scene labels",
		Long: `pretrain trains a ViT of exactly the run config's model.vision shape
(resolution, patch, width, depth, heads) to name what each shapes-world
image shows, the miniature of the CLIP/ImageNet pretraining MM1's encoders
come from: one linear head per attribute on the pooled patch grid (its
sum over √patches: the mean scaled so that one object moves it by O(1)),
softmax cross-entropy summed over

  background   the background colour (5 classes)
  color        the largest object's colour (10)
  shape        its shape (8)
  size         its size class (4)
  position     its cell of the 3×3 grid (9)

(of equally large objects, the first in reading order). It trains on the
config's caption rows (data.sources.caption.paths, else shapes.dir/captions),
decoded as training decodes them (CLIP normalisation at model.vision.resolution),
with AdamW (the config's betas, eps, weight decay, clip and train.threads),
a warm-up of a tenth of the steps and a cosine to a tenth of --lr. The
shapes world is generated first when the config sets shapes.dir, as train
does.

Settings the flags leave unset come from the config's encoder: section, and
--out defaults to model.vision.init, so that the command makes the very file
a run of that config would make on first use.

It writes FILE atomically: the vit.* tensors only, as a weights file that
model.vision.init loads (the heads are dropped), with the vision config
("vision"), the world (its path, and "world_manifest_sha256": the sha256 of
the caption rows' manifest.json), steps, seed and held-out results
("encoder", JSON) in its metadata. A run refuses the file, naming it and
the key, when the ViT's patch, width, depth or heads differ from the run's
model.vision, or, in a config with an encoder: section, when the run's
caption rows have another manifest (an encoder of another world: without
that section only a warning); another resolution is interpolated, and a
file written before the world was recorded loads with a warning. Held-out: the
caption benchmark's query rows
(eval.caption/query, else shapes.dir/eval/caption/query). It prints a
table of held-out accuracy per attribute beside its chance level (always
answering the most frequent training class). The same config, flags and
train.threads give the same file, byte for byte.

Example:

  mmablate encoder pretrain -c ablations/examples/base.yaml --out /tmp/vit-r32.safetensors
  mmablate train -c ablations/examples/base.yaml --set model.vision.init=/tmp/vit-r32.safetensors

Flags:
  -c, --config   the run config (YAML)
  --set          override a config key, key.path=value (repeatable; the value is YAML)
  --out          the encoder file to write (default: model.vision.init)
  --steps        optimiser steps
  --batch        images per step
  --lr           peak learning rate
  --seed         seed of the initial weights and of the image order`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usagef("encoder pretrain needs -c run.yaml (see --help)")
			}
			cfg, err := experiments.Load(configPath, sets)
			if err != nil {
				return err
			}
			// The file a run would make on first use, with the settings it
			// would use: the config's encoder: section and model.vision.init
			// fill what the flags leave unset.
			if e := cfg.Encoder; e != nil {
				f := cmd.Flags()
				for _, v := range []struct {
					flag string
					set  func()
					zero bool
				}{
					{"steps", func() { opts.Steps = e.Steps }, e.Steps == 0},
					{"batch", func() { opts.Batch = e.Batch }, e.Batch == 0},
					{"lr", func() { opts.LR = e.LR }, e.LR == 0},
					{"seed", func() { opts.Seed = e.Seed }, false},
				} {
					if !f.Changed(v.flag) && !v.zero {
						v.set()
					}
				}
			}
			if out == "" && cfg.Model.Vision != nil {
				out = cfg.Model.Vision.Init
			}
			if out == "" {
				return usagef("encoder pretrain needs --out FILE, or model.vision.init in the config (see --help)")
			}
			if opts.Steps <= 0 || opts.Batch <= 0 || !(opts.LR > 0) {
				return usagef("--steps, --batch and --lr must be positive")
			}
			opts.Log = slog.Default()
			res, err := experiments.PretrainEncoder(cmd.Context(), cfg, out, opts)
			if err != nil {
				return err
			}
			printEncoderResult(cmd.OutOrStdout(), res)
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "the run config (YAML)")
	f.StringArrayVar(&sets, "set", nil, "override a config key: key.path=value (repeatable)")
	f.StringVar(&out, "out", "", "the encoder file to write")
	f.IntVar(&opts.Steps, "steps", experiments.DefaultEncoderSteps, "optimiser steps")
	f.IntVar(&opts.Batch, "batch", experiments.DefaultEncoderBatch, "images per step")
	f.Float64Var(&opts.LR, "lr", experiments.DefaultEncoderLR, "peak learning rate")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the initial weights and the image order")
	return cmd
}

// printEncoderResult prints the held-out table: accuracy and chance per
// attribute.
func printEncoderResult(w io.Writer, r *experiments.EncoderResult) {
	fmt.Fprintf(w, "held-out accuracy on %d rows of %s (trained %d steps × %d images on %d rows):\n",
		r.Eval, r.HeldOut, r.Steps, r.Batch, r.Train)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "attribute\tclasses\taccuracy\tchance\t")
	for _, a := range r.Attributes {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t\n", a.Name, a.Classes, a.Accuracy, a.Chance)
	}
	tw.Flush()
}
