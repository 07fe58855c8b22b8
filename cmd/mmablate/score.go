package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/experiments/scoring"
)

// maxScoreLine bounds one JSONL line. A caption item with a handful of
// references, or a question with ten answers, is well under a kilobyte; a
// megabyte leaves room for long generated text without letting a file
// with no newlines be read into memory whole.
const maxScoreLine = 1 << 20

func newScoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Score predictions: CIDEr-D and BLEU for captions, VQAv2 accuracy",
		Long: `score computes the standard metrics of a prediction file, exactly as the
reference scripts do: captions as pycocoevalcap (PTB tokenisation, CIDEr-D,
BLEU-1..4), VQA answers as the official VQAv2 evaluation.

  mmablate score caption FILE.jsonl    {"CIDEr": ..., "BLEU-1": ..., ..., "BLEU-4": ...}
  mmablate score vqa FILE.jsonl        {"accuracy": ...}

Each line of FILE.jsonl is one JSON object; blank lines are skipped, keys
other than those named below are ignored, and a line longer than 1 MiB is an
error. Errors name the file and line.`,
	}
	cmd.AddCommand(newScoreCaptionCmd(), newScoreVQACmd())
	return cmd
}

func newScoreCaptionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "caption FILE.jsonl",
		Short: "CIDEr-D and BLEU-1..4 of captions, as pycocoevalcap computes them",
		Long: `score caption reads one image per line:

  {"id": "img1", "prediction": "a red circle", "references": ["a red circle", "one circle"]}

id is a string or a number and must be unique; prediction may be empty;
references is a non-empty list of strings. Every text is PTB-tokenised,
lower-cased and stripped of punctuation as pycocoevalcap does, then scored:

  CIDEr   CIDEr-D (n = 1..4, sigma = 6, x10; document frequencies from this
          file's references, so compare CIDEr only between files of the same
          images and references)
  BLEU-n  corpus BLEU-n, reference length the closest to each prediction

The result is printed as one JSON object on standard output.

Example:

  $ cat preds.jsonl
  {"id": "1", "prediction": "A red circle.", "references": ["a red circle", "a small red circle"]}
  {"id": "2", "prediction": "two squares", "references": ["two blue squares"]}
  $ mmablate score caption preds.jsonl
  {
    "CIDEr": 3.6669795398520204,
    "BLEU-1": 0.8187307527504899,
    "BLEU-2": 0.6684908602765924,
    "BLEU-3": 0.7152271912591579,
    "BLEU-4": 0.02339474353518078
  }

BLEU-3 above BLEU-2 is no slip: "two squares" misses a bigram, and the
single trigram matches; all four carry the brevity penalty exp(1 - 6/5).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var items []scoring.CaptionItem
			err := readScoreFile(args[0], func(id string, raw []byte) error {
				var line struct {
					Prediction *string   `json:"prediction"`
					References *[]string `json:"references"`
				}
				if err := json.Unmarshal(raw, &line); err != nil {
					return err
				}
				switch {
				case line.Prediction == nil:
					return errors.New(`missing "prediction"`)
				case line.References == nil:
					return errors.New(`missing "references"`)
				case len(*line.References) == 0:
					return errors.New(`"references" is empty: CIDEr and BLEU need at least one reference`)
				}
				items = append(items, scoring.CaptionItem{ID: id, Prediction: *line.Prediction, References: *line.References})
				return nil
			})
			if err != nil {
				return err
			}
			s, err := scoring.Caption(items)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return writeJSON(cmd.OutOrStdout(), struct {
				CIDEr float64 `json:"CIDEr"`
				BLEU1 float64 `json:"BLEU-1"`
				BLEU2 float64 `json:"BLEU-2"`
				BLEU3 float64 `json:"BLEU-3"`
				BLEU4 float64 `json:"BLEU-4"`
			}{s.CIDEr, s.BLEU[0], s.BLEU[1], s.BLEU[2], s.BLEU[3]})
		},
	}
}

func newScoreVQACmd() *cobra.Command {
	return &cobra.Command{
		Use:   "vqa FILE.jsonl",
		Short: "VQAv2 accuracy of answers, as the official evaluation computes it",
		Long: `score vqa reads one question per line:

  {"id": "q1", "prediction": "two", "answers": ["2", "2", "two", ...10 strings]}

id is a string or a number and must be unique; answers holds exactly 10
human answers. A question scores the mean over the ten leave-one-out sets
of min(1, matching answers / 3), after the official normalisation
(punctuation, number words, articles, contractions) — which, as in the
official script, runs only when the ten answers are not all identical. The
overall accuracy (0-100, unrounded) is printed as one JSON object.

Example:

  $ cat answers.jsonl
  {"id": 1, "prediction": "Two", "answers": ["2","2","2","two","2","2","2","2","2","3"]}
  $ mmablate score vqa answers.jsonl
  {
    "accuracy": 100
  }`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var items []scoring.VQAItem
			err := readScoreFile(args[0], func(id string, raw []byte) error {
				var line struct {
					Prediction *string   `json:"prediction"`
					Answers    *[]string `json:"answers"`
				}
				if err := json.Unmarshal(raw, &line); err != nil {
					return err
				}
				switch {
				case line.Prediction == nil:
					return errors.New(`missing "prediction"`)
				case line.Answers == nil:
					return errors.New(`missing "answers"`)
				case len(*line.Answers) != scoring.NumVQAAnswers:
					return fmt.Errorf(`"answers" has %d entries, want %d`, len(*line.Answers), scoring.NumVQAAnswers)
				}
				items = append(items, scoring.VQAItem{ID: id, Prediction: *line.Prediction, Answers: *line.Answers})
				return nil
			})
			if err != nil {
				return err
			}
			s, err := scoring.VQA(items)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return writeJSON(cmd.OutOrStdout(), struct {
				Accuracy float64 `json:"accuracy"`
			}{s.Accuracy})
		},
	}
}

// readScoreFile calls item for each non-blank line of a JSONL file with
// the line's id (unique across the file) and bytes; every error is
// prefixed with "FILE:LINE:".
func readScoreFile(path string, item func(id string, raw []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxScoreLine)
	firstLine := make(map[string]int)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var head struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return fmt.Errorf("%s:%d: not a JSON object: %w", path, n, err)
		}
		id, err := itemID(head.ID)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if prev, dup := firstLine[id]; dup {
			return fmt.Errorf("%s:%d: id %q already used on line %d", path, n, id, prev)
		}
		firstLine[id] = n
		if err := item(id, raw); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: line longer than %d bytes", path, n+1, maxScoreLine)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(firstLine) == 0 {
		return fmt.Errorf("%s: no items", path)
	}
	return nil
}

// itemID accepts a JSON string or number as an id; a number keeps its
// literal spelling.
func itemID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New(`missing "id"`)
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var num json.Number
	if err := json.Unmarshal(raw, &num); err != nil {
		return "", fmt.Errorf(`"id" must be a string or a number, got %s`, raw)
	}
	return num.String(), nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
