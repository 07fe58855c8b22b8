package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
	"github.com/mmablate/mmablate/data/tokenizer"
)

type tokenizerTrainConfig struct {
	vocab          int
	out            string
	minFrequency   int64
	addPrefixSpace bool
	specials       []string
	layout         string
	textColumn     string
	captionColumn  string
	onError        string
}

func newTokenizerTrainCmd() *cobra.Command {
	var c tokenizerTrainConfig
	cmd := &cobra.Command{
		Use:   "train --vocab N --out tokenizer.json INPUT...",
		Short: "Train a byte-level BPE vocabulary from text files or datasets",
		Long: `tokenizer train learns a byte-level BPE vocabulary and writes it as a Hugging
Face tokenizer.json (written to a temporary file, then renamed).

Each INPUT is a text file, read line by line (each line, with its newline, is
one training sequence, as in Hugging Face's trainer), or a dataset: a
.parquet file or a directory (a dataset with manifest.json, or a directory
of *.parquet files) in any layout the data commands read, each text segment
of each record being one sequence.

Training counts pre-tokenized words first, then merges the most frequent
adjacent pair until the vocabulary has --vocab entries or no pair occurs
--min-frequency times. Ties go to the pair with the smaller ids (Hugging
Face's rule), so the result is deterministic. The vocabulary is the special
tokens (ids 0, 1, ...), the 256 bytes, then the merged tokens.

Example:

  cat $(go env GOROOT)/src/testdata/Isaac.Newton-Opticks.txt > opticks.txt
  mmablate tokenizer train --vocab 8192 --out tokenizer.json opticks.txt data/shapes/text
  mmablate tokenizer encode -t tokenizer.json "The Light of the Sun"

Flags:
  --vocab             total vocabulary size, specials and 256 byte tokens included (required)
  --out               the tokenizer.json to write (required)
  --min-frequency     never merge a pair seen fewer times (default 2)
  --add-prefix-space  encode text as if it started with a space (default off, as GPT-2)
  --specials          special tokens, in id order (default the five above)
  --layout            dataset layout: auto, mmablate, obelics, img2dataset, hf-image, text
  --text-column       text column of the text layout (default "text")
  --caption-column    caption column of hf-image and img2dataset (default "caption")
  --on-error          a dataset row that is not a record: skip (count it) or fail`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.vocab == 0 || c.out == "" {
				return usagef("tokenizer train needs --vocab and --out (see --help)")
			}
			layout, err := layouts.ParseLayout(c.layout)
			if err != nil {
				return usagef("--layout: %v", err)
			}
			if c.onError != string(data.OnErrorSkip) && c.onError != string(data.OnErrorFail) {
				return usagef("--on-error %q: want skip or fail", c.onError)
			}
			lo := layouts.Options{Layout: layout, TextColumn: c.textColumn, CaptionColumn: c.captionColumn}
			return runTokenizerTrain(cmd.Context(), cmd.OutOrStdout(), c, lo, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.vocab, "vocab", 0, "total vocabulary size, including specials and the 256 byte tokens")
	f.StringVar(&c.out, "out", "", "tokenizer.json to write")
	f.Int64Var(&c.minFrequency, "min-frequency", 2, "never merge a pair seen fewer times")
	f.BoolVar(&c.addPrefixSpace, "add-prefix-space", false, "encode text as if it started with a space")
	f.StringSliceVar(&c.specials, "specials", tokenizer.DefaultSpecials, "special tokens in id order")
	f.StringVar(&c.layout, "layout", "auto", "dataset layout (auto, mmablate, obelics, img2dataset, hf-image, text)")
	f.StringVar(&c.textColumn, "text-column", "", "text column of the text layout")
	f.StringVar(&c.captionColumn, "caption-column", "", "caption column of hf-image and img2dataset")
	f.StringVar(&c.onError, "on-error", "skip", "dataset rows that are not records: skip or fail")
	return cmd
}

func runTokenizerTrain(ctx context.Context, stdout io.Writer, c tokenizerTrainConfig, lo layouts.Options, inputs []string) error {
	tr, err := tokenizer.NewTrainer(tokenizer.TrainOptions{VocabSize: c.vocab, MinFrequency: c.minFrequency,
		Specials: c.specials, AddPrefixSpace: c.addPrefixSpace})
	if err != nil {
		return &usageError{err}
	}
	// Counting and merging can take a while: refuse an --out that names a
	// directory, or sits in one that does not exist, before they start.
	if st, err := os.Stat(filepath.Dir(c.out)); err != nil {
		return fmt.Errorf("--out %s: %w", c.out, err)
	} else if !st.IsDir() {
		return fmt.Errorf("--out %s: %s is not a directory", c.out, filepath.Dir(c.out))
	}
	if st, err := os.Stat(c.out); err == nil && st.IsDir() {
		return fmt.Errorf("--out %s is a directory; name the tokenizer.json to write", c.out)
	}
	start := time.Now()
	var textBytes int64
	skippedAll := data.SkipCounts{}
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return err
		}
		if st.IsDir() || strings.HasSuffix(in, ".parquet") {
			skipped, err := tr.AddDataset(ctx, in, lo, data.OnError(c.onError))
			if err != nil {
				return err
			}
			slog.Info("tokenizer train: counted dataset", "path", in, "distinct_words", tr.Words(), "skipped", skipped)
			for r, n := range skipped {
				skippedAll[r] += n
			}
			continue
		}
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		err = tr.AddReader(ctx, in, f)
		f.Close()
		if err != nil {
			return err
		}
		textBytes += st.Size()
		slog.Info("tokenizer train: counted text file", "path", in, "bytes", st.Size(), "distinct_words", tr.Words())
	}
	counted := time.Now()
	tok, err := tr.Train(ctx)
	if err != nil {
		return err
	}
	if err := tok.Save(c.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d tokens (%d distinct words; text files %.1f MB); counting %s, merging %s\n",
		c.out, tok.VocabSize(), tr.Words(), float64(textBytes)/1e6,
		counted.Sub(start).Round(time.Millisecond), time.Since(counted).Round(time.Millisecond))
	if len(skippedAll) > 0 {
		reasons := make([]string, 0, len(skippedAll))
		for _, r := range slices.Sorted(maps.Keys(skippedAll)) {
			reasons = append(reasons, fmt.Sprintf("%s: %d", r, skippedAll[r]))
		}
		fmt.Fprintf(stdout, "skipped %d dataset rows (%s)\n", skippedTotal(skippedAll), strings.Join(reasons, ", "))
	}
	return nil
}
