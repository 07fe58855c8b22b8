package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/data/shapes"
	"github.com/mmablate/mmablate/data/shards"
)

func newDataSynthCmd() *cobra.Command {
	cfg := shapes.DefaultConfig()
	var (
		out          string
		textFiles    []string
		noBook       bool
		force        bool
		workers      int
		rowsPerShard int
	)
	cmd := &cobra.Command{
		Use:   "synth --out DIR",
		Short: "Generate the shapes world: caption, interleaved, text and evaluation datasets",
		Long: `Synth draws the shapes world, mmablate's built-in dataset: scenes of 1–8
coloured shapes (circle, square, triangle, star, cross, diamond, ring,
hexagon; ten colours; tiny, small, medium and large; on a 3×3 grid of
named positions) on pale backgrounds, rendered with anti-aliasing and
stored as PNG or JPEG. Tiny objects (a few pixels at 128 px) vanish at low
input resolution and crowded scenes are hard to count with few image
tokens, so resolution and token-count ablations show their effect within
minutes on a laptop.

It writes one canonical dataset (shards + manifest.json) per split under
--out, plus synth.json with the parameters:

  captions/              [image, caption], captions from eight templates
  interleaved/           documents of 2–5 images with text about and between them
  text/                  scene descriptions, short stories, and paragraph chunks
                         of English text (Go's Opticks by default, --text-file)
  eval/caption/query/    [image], 5 reference captions in meta
  eval/caption/support/  few-shot demonstrations, scenes disjoint from query
  eval/vqa/query/        [image, question], 10 annotator answers in meta
  eval/vqa/support/      few-shot demonstrations, scenes disjoint from query
  eval/text/             held-out scene descriptions and stories, none of them in
                         text/: the validation perplexity's documents
  instructions/          with --instructions N: [image, task prompt, answer], the
                         prompt marked as the instruction in meta

The package doc of data/shapes (go doc ./data/shapes) lists each split's
record layout and meta fields. The same flags give the same bytes, whatever
--workers says. Rerunning into a directory that holds this very output
says it is up to date; a directory with other parameters or other files is
refused unless --force, which replaces only synth's own files. One that
differs in --eval-text alone (a world made before eval/text existed) keeps
its other splits and gets eval/text written, no --force needed.

Progress goes to stderr: on a terminal a progress bar with the rows
written of all splits, the current split's rows and rows/s; otherwise a
log line every 10 seconds.

Flags:
  --out DIR              output directory (required)
  --seed S               random seed (default 1)
  --size PX              image side, 16..2048 (default 128)
  --scenes N             caption pairs (default 5000)
  --docs N               interleaved documents (default 1500)
  --texts N              synthetic text documents, besides the book chunks (default 2000)
  --eval-caption N       caption-evaluation queries (default 300)
  --eval-vqa N           VQA queries (default 500)
  --support N            support rows of each evaluation (default 100)
  --eval-text N          held-out text documents in eval/text/ (default 200; 0: none)
  --instructions N       instruction-style rows (default 0: no instructions/)
  --max-objects N        most objects in a scene, 1..9 (default 8)
  --tiny-fraction F      probability that an object is tiny (default 0.15)
  --crowded-fraction F   scenes drawn from the top quarter of the count range (default 0.25)
  --jpeg-fraction F      images stored as JPEG rather than PNG (default 0.5)
  --text-file PATH       more English text for text/ (repeatable)
  --no-book              leave Go's Opticks text out of text/
  --force                replace an output made with other parameters
  --workers N            render goroutines (default: all cores); never changes the output
  --rows-per-shard N     most rows per shard (0: the shards default)
Counts are 0..10000000.

Example:

  mmablate data synth --out data/shapes --seed 7 --scenes 20000 --tiny-fraction 0.3
  wrote 25184 rows to data/shapes in 12.0s
    captions                20000 rows  1 shard
    interleaved              1500 rows  1 shard
    text                     2484 rows  1 shard
    eval/caption/query        300 rows  1 shard
    eval/caption/support      100 rows  1 shard
    eval/vqa/query            500 rows  1 shard
    eval/vqa/support          100 rows  1 shard
    eval/text                 200 rows  1 shard
  mmablate data synth --out data/shapes --seed 7 --scenes 20000 --tiny-fraction 0.3
  data/shapes is up to date (synth.json matches these parameters)`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			if workers < 0 || rowsPerShard < 0 {
				return usagef("--workers and --rows-per-shard must be ≥ 0")
			}
			if err := cfg.Validate(); err != nil {
				return usagef("%s", strings.TrimPrefix(err.Error(), "shapes: "))
			}
			cfg.TextFiles = nil
			if !noBook {
				book, err := shapes.BookPath()
				if err != nil {
					return err
				}
				cfg.TextFiles = append(cfg.TextFiles, book)
			}
			cfg.TextFiles = append(cfg.TextFiles, textFiles...)
			prog := newSynthProgress(cmd.ErrOrStderr())
			start := time.Now()
			res, err := shapes.Generate(cmd.Context(), out, cfg, shapes.Options{
				Workers:  workers,
				Force:    force,
				Progress: prog.update,
				Shards:   shards.Options{MaxRowsPerShard: rowsPerShard},
			})
			prog.done()
			if err != nil {
				return err
			}
			printSynthResult(cmd.OutOrStdout(), out, res, time.Since(start))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output directory (required)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	f.IntVar(&cfg.Size, "size", cfg.Size, "image side in pixels, 16..2048")
	f.IntVar(&cfg.Scenes, "scenes", cfg.Scenes, "caption pairs in captions/")
	f.IntVar(&cfg.Docs, "docs", cfg.Docs, "interleaved documents in interleaved/")
	f.IntVar(&cfg.Texts, "texts", cfg.Texts, "synthetic text documents in text/, besides the book chunks")
	f.IntVar(&cfg.EvalCaption, "eval-caption", cfg.EvalCaption, "caption-evaluation queries")
	f.IntVar(&cfg.EvalVQA, "eval-vqa", cfg.EvalVQA, "VQA queries")
	f.IntVar(&cfg.Support, "support", cfg.Support, "support (few-shot demonstration) rows of each evaluation")
	f.IntVar(&cfg.EvalText, "eval-text", cfg.EvalText, "held-out synthetic texts in eval/text/, none in text/ (0: none)")
	f.IntVar(&cfg.Instructions, "instructions", cfg.Instructions, "instruction-style rows in instructions/ (task prompt marked in meta; 0: none)")
	f.IntVar(&cfg.MaxObjects, "max-objects", cfg.MaxObjects, "most objects in a scene, 1..9")
	f.Float64Var(&cfg.TinyFraction, "tiny-fraction", cfg.TinyFraction, "probability that an object is tiny (lost at low resolution)")
	f.Float64Var(&cfg.CrowdedFraction, "crowded-fraction", cfg.CrowdedFraction, "fraction of scenes with a count from the top quarter of 1..max-objects")
	f.Float64Var(&cfg.JPEGFraction, "jpeg-fraction", cfg.JPEGFraction, "fraction of images stored as JPEG (quality 90) rather than PNG")
	f.StringArrayVar(&textFiles, "text-file", nil, "plain-text file to cut into paragraph chunks for text/ (repeatable)")
	f.BoolVar(&noBook, "no-book", false, "leave Go's Isaac.Newton-Opticks.txt out of text/")
	f.BoolVar(&force, "force", false, "replace an output made with other parameters (files synth does not write are kept)")
	f.IntVar(&workers, "workers", 0, "render goroutines; 0 means one per core (never changes the output)")
	f.IntVar(&rowsPerShard, "rows-per-shard", 0, "most rows per shard (0: the shards default)")
	return cmd
}

func printSynthResult(w io.Writer, out string, res *shapes.Result, took time.Duration) {
	if res.UpToDate {
		fmt.Fprintf(w, "%s is up to date (%s matches these parameters)\n", out, shapes.StampName)
		return
	}
	var rows int64
	for _, s := range res.Splits {
		if !slices.Contains(res.Kept, s.Name) {
			rows += s.Rows
		}
	}
	fmt.Fprintf(w, "wrote %d rows to %s in %.1fs\n", rows, out, took.Seconds())
	for _, s := range res.Splits {
		noun := "shards"
		if len(s.Shards) == 1 {
			noun = "shard"
		}
		kept := ""
		if slices.Contains(res.Kept, s.Name) {
			kept = "  (kept: only eval/text differed)"
		}
		fmt.Fprintf(w, "  %-20s %8d rows  %d %s%s\n", s.Name, s.Rows, len(s.Shards), noun, kept)
	}
}

// synthProgress reports records written: on a terminal a bar over all
// rows with the percentage, the rows, the current split's rows and the
// rate, redrawn at most every redrawEvery and at the last row (so the
// final line says 100%); otherwise a log line every logEvery.
type synthProgress struct{ progressLine }

func newSynthProgress(w io.Writer) *synthProgress {
	return &synthProgress{newProgressLine(w)}
}

func (p *synthProgress) update(s shapes.Progress) {
	draw, log, rate := p.due(s.Done, s.TotalRows)
	switch {
	case draw:
		frac := float64(s.Done) / float64(max(s.TotalRows, 1))
		p.draw("synth %s %5.1f%%  %d/%d rows  %s %d/%d  %.0f rows/s",
			progressBar(frac, 20), 100*frac, s.Done, s.TotalRows, s.Split, s.SplitDone, s.SplitRows, rate)
	case log:
		p.log.Info("synth progress", "split", s.Split, "split_rows", s.SplitDone, "of", s.SplitRows,
			"rows", s.Done, "total", s.TotalRows, "rows_per_s", int64(math.Round(rate)))
	}
}
