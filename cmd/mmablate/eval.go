package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/experiments/eval"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
)

func newEvalCmd() *cobra.Command {
	var (
		shots            []int
		trials, queries  int
		weights, outPath string
	)
	cmd := &cobra.Command{
		Use:   "eval RUN_DIR",
		Short: "Evaluate a trained run few-shot: captioning, VQA and text perplexity",
		Long: `eval scores the model of a run directory as the end of mmablate train does,
and writes RUN_DIR/eval.json. It reads:

  config.resolved.yaml   seed, model, data.packing, train.threads and eval sections
  tokenizer.json         the run's tokenizer
  final.safetensors      the trained weights (--weights picks another file,
                         e.g. checkpoints/step-100.safetensors)

For each benchmark (eval.caption, eval.vqa) and each demonstration count k
in eval.shots, every query of the first eval.max_queries gets a prompt of k
solved examples drawn from the benchmark's support/ split, then its image:

  <|bos|> <|image|>×N Caption: two blue squares <|endofchunk|> ... <|image|>×N Caption:
  <|bos|> <|image|>×N Question: What color is the star? Answer: red <|endofchunk|> ... Answer:

and the model continues it greedily for at most eval.max_new_tokens tokens
or until <|endofchunk|>. Captions are scored with CIDEr-D and BLEU-4
(pycocoevalcap), answers with the VQAv2 accuracy. Demonstrations are drawn
per trial from the config's seed, so a rerun gives the same numbers; k > 0
runs eval.trials times and reports the mean and standard deviation. A prompt
that does not fit model.decoder.max_seq loses its earliest demonstrations,
and eval.json counts them (dropped_demos). The text perplexity is over the
last eval.perplexity_samples rows of eval.text.

Example:

  mmablate eval runs/tiny
  mmablate eval runs/tiny --shots 0,4 --trials 1 --max-queries 20 --out /tmp/quick.json

Flags:
  --shots        demonstration counts, comma-separated (default: eval.shots)
  --trials       demonstration draws per k > 0 (default: eval.trials)
  --max-queries  queries per benchmark, the first in dataset order; 0 for all
                 (default: eval.max_queries)
  --weights      weights file (default RUN_DIR/final.safetensors)
  --out          results file, written atomically (default RUN_DIR/eval.json)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			run, err := loadRunForEval(dir)
			if err != nil {
				return err
			}
			flags := cmd.Flags()
			if flags.Changed("shots") {
				run.eval.Shots = shots
			}
			if flags.Changed("trials") {
				run.eval.Trials = trials
			}
			if flags.Changed("max-queries") {
				run.eval.MaxQueries = queries
			}
			if err := run.eval.Validate(); err != nil {
				return &usageError{err}
			}
			if weights == "" {
				weights = filepath.Join(dir, experiments.FinalWeightsFile)
			}
			if outPath == "" {
				outPath = filepath.Join(dir, experiments.EvalFile)
			}
			tok, err := tokenizer.LoadFile(filepath.Join(dir, experiments.TokenizerFile))
			if err != nil {
				return err
			}
			engine.SetBLASThreads(run.blasThreads)
			m, err := models.New(run.model, run.batch, run.seqLen, models.Options{Workers: run.workers, MaxImages: run.maxImages})
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(dir, experiments.ResolvedConfigFile), err)
			}
			defer m.Close()
			if _, err := m.LoadWeights(weights); err != nil {
				return err
			}
			var imgOpts images.Options
			if v := run.model.Vision; v != nil {
				imgOpts = images.DefaultOptions(v.Resolution) // as training decodes
			}
			slog.Info("eval", "run", dir, "weights", weights, "shots", run.eval.Shots, "trials", run.eval.Trials, "max_queries", run.eval.MaxQueries)
			res, err := eval.Run(cmd.Context(), m, tok, run.eval, imgOpts, run.seed)
			if err != nil {
				return err
			}
			if err := eval.WriteJSON(outPath, res); err != nil {
				return err
			}
			printEvalSummary(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&shots, "shots", nil, "demonstration counts, comma-separated (default: eval.shots)")
	f.IntVar(&trials, "trials", 0, "demonstration draws per k > 0 (default: eval.trials)")
	f.IntVar(&queries, "max-queries", 0, "queries per benchmark; 0 for all (default: eval.max_queries)")
	f.StringVar(&weights, "weights", "", "weights file (default RUN_DIR/final.safetensors)")
	f.StringVar(&outPath, "out", "", "results file (default RUN_DIR/eval.json)")
	return cmd
}

// evalRun is what eval needs of a run's resolved config.
type evalRun struct {
	seed                 uint64
	model                models.Config
	eval                 eval.Config
	batch, seqLen        int // the training batch shape, so perplexity rows match training's
	maxImages            int
	workers, blasThreads int
}

// loadRunForEval reads RUN_DIR/config.resolved.yaml as training wrote it;
// errors name the file, line and key path.
func loadRunForEval(dir string) (*evalRun, error) {
	cfg, err := experiments.LoadResolved(filepath.Join(dir, experiments.ResolvedConfigFile))
	if err != nil {
		return nil, err
	}
	p, t := cfg.Data.Packing, cfg.Train.Threads
	return &evalRun{seed: cfg.Seed, model: cfg.Model, eval: cfg.Eval, batch: p.BatchSize, seqLen: p.SeqLen,
		maxImages: cfg.MaxImages(), workers: t.Workers, blasThreads: t.BLAS}, nil
}

// printEvalSummary prints one line per benchmark and k, then the perplexity.
func printEvalSummary(w io.Writer, r *eval.Results) {
	for _, t := range r.Tasks {
		for _, s := range t.Shots {
			fmt.Fprintf(w, "%-7s %d-shot", t.Task, s.Shots)
			for _, name := range []string{eval.MetricCIDEr, eval.MetricBLEU4, eval.MetricVQAAccuracy} {
				if st, ok := s.Metrics[name]; ok {
					fmt.Fprintf(w, "  %s %.4f ± %.4f", name, st.Mean, st.Std)
				}
			}
			if s.DroppedDemos > 0 {
				fmt.Fprintf(w, "  (%d demonstrations dropped to fit max_seq)", s.DroppedDemos)
			}
			fmt.Fprintln(w)
		}
	}
	if p := r.Perplexity; p != nil {
		fmt.Fprintf(w, "text    perplexity %.4f over %d documents, %d tokens\n", p.Value, p.Documents, p.Tokens)
	}
}
