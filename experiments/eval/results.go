package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/mmablate/mmablate/internal/atomicfile"
)

// Metric names in ShotResult.Metrics.
const (
	// MetricCIDEr is CIDEr-D on pycocoevalcap's scale (papers print it ×100).
	MetricCIDEr = "cider"
	// MetricBLEU4 is corpus BLEU-4, 0–1.
	MetricBLEU4 = "bleu4"
	// MetricVQAAccuracy is the VQAv2 accuracy, 0–100.
	MetricVQAAccuracy = "accuracy"
)

// Results is what Run measures, written as a run's eval.json.
type Results struct {
	// Seed drew the demonstrations (with task, trial and query index).
	Seed uint64 `json:"seed"`
	// Config is the evaluation config that produced these results.
	Config     Config       `json:"config"`
	Tasks      []TaskResult `json:"tasks"`
	Perplexity *Perplexity  `json:"perplexity,omitempty"`
}

// TaskResult is one benchmark at every demonstration count.
type TaskResult struct {
	Task    Task         `json:"task"`
	Dir     string       `json:"dir"`
	Queries int          `json:"queries"` // query rows evaluated
	Support int          `json:"support"` // rows demonstrations were drawn from
	Shots   []ShotResult `json:"shots"`   // in Config.Shots order
}

// ShotResult is one benchmark at one demonstration count k.
type ShotResult struct {
	Shots int `json:"shots"`
	// Metrics: cider and bleu4 for captioning, accuracy for VQA, over the
	// trials. A 0-shot prompt has nothing random in it, so it runs once.
	Metrics map[string]Stat `json:"metrics"`
	// DroppedDemos counts the demonstrations left out, over all trials and
	// queries, because the prompt would not fit model.decoder.max_seq;
	// ShortenedPrompts counts the prompts that lost any.
	DroppedDemos     int `json:"dropped_demos"`
	ShortenedPrompts int `json:"shortened_prompts"`
	// Examples are the first queries of trial 0, for reading.
	Examples []Example `json:"examples"`
}

// Stat is a metric's value in each trial, their mean and their sample
// standard deviation (0 for a single trial).
type Stat struct {
	Mean   float64   `json:"mean"`
	Std    float64   `json:"std"`
	Trials []float64 `json:"trials"`
}

// Example is one query's generated text beside its reference (a caption's
// first reference, a question's true answer).
type Example struct {
	ID         string `json:"id"`
	Question   string `json:"question,omitempty"`
	Prediction string `json:"prediction"`
	Reference  string `json:"reference"`
}

// Perplexity is the decoder's perplexity on text documents.
type Perplexity struct {
	Source    string  `json:"source"`
	Documents int     `json:"documents"`
	Tokens    int     `json:"tokens"`     // predicted tokens, the CE's denominator
	Loss      float64 `json:"loss"`       // mean cross-entropy, nats per token
	Value     float64 `json:"perplexity"` // exp(Loss)
}

// newStat summarises per-trial values.
func newStat(trials []float64) Stat {
	s := Stat{Trials: trials}
	for _, v := range trials {
		s.Mean += v
	}
	s.Mean /= float64(len(trials))
	if len(trials) > 1 {
		var ss float64
		for _, v := range trials {
			ss += (v - s.Mean) * (v - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(len(trials)-1))
	}
	return s
}

// Metric returns a task's metric at k shots.
func (r *Results) Metric(task Task, shots int, metric string) (Stat, bool) {
	for _, t := range r.Tasks {
		if t.Task != task {
			continue
		}
		for _, s := range t.Shots {
			if s.Shots == shots {
				st, ok := s.Metrics[metric]
				return st, ok
			}
		}
	}
	return Stat{}, false
}

// maxResultsBytes bounds an eval.json read back: a few hundred shots ×
// trials × examples are kilobytes, so 64 MiB only stops a wrong file.
const maxResultsBytes = 64 << 20

// WriteJSON writes r to path atomically: a temporary file in the same
// directory, fsynced, renamed over path, then the directory fsynced, so
// path holds either the old results or the new, never a part.
func WriteJSON(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("eval results: %w", err)
	}
	b = append(b, '\n')
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("eval results: %w", err)
	}
	return nil
}

// ReadJSON reads results written by WriteJSON.
func ReadJSON(path string) (*Results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResultsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxResultsBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, not an eval.json", path, maxResultsBytes)
	}
	r, err := parseResults(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// parseResults decodes an eval.json, refusing unknown keys and anything
// after the object.
func parseResults(b []byte) (*Results, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Results
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("eval results: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("eval results: data after the JSON object")
	}
	return &r, nil
}
