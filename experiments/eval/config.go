package eval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Config is the `eval:` section of a run config. Decode YAML into
// DefaultConfig() so that absent keys keep their defaults, then Validate.
type Config struct {
	// Caption and VQA are benchmark directories holding query/ and
	// support/ datasets (data/shapes' eval/caption and eval/vqa); "" skips
	// the task.
	Caption string `yaml:"caption" json:"caption"`
	VQA     string `yaml:"vqa" json:"vqa"`
	// Text is the dataset whose last PerplexitySamples rows give the text
	// perplexity; "" skips it.
	Text string `yaml:"text" json:"text"`
	// Shots are the demonstration counts k evaluated, e.g. MM1's 0, 4, 8.
	Shots []int `yaml:"shots" json:"shots"`
	// Trials is the number of independent demonstration draws per k > 0.
	Trials int `yaml:"trials" json:"trials"`
	// MaxQueries caps each task at its first MaxQueries query rows, in
	// dataset order; 0 evaluates every row.
	MaxQueries int `yaml:"max_queries" json:"max_queries"`
	// Batch is the number of prompts decoded together.
	Batch        int          `yaml:"batch" json:"batch"`
	MaxNewTokens MaxNewTokens `yaml:"max_new_tokens" json:"max_new_tokens"`
	// PerplexitySamples is the number of text documents scored; 0 skips it.
	PerplexitySamples int `yaml:"perplexity_samples" json:"perplexity_samples"`
}

// MaxNewTokens is the greedy decoding length limit per task.
type MaxNewTokens struct {
	Caption int `yaml:"caption" json:"caption"`
	VQA     int `yaml:"vqa" json:"vqa"`
}

// Bounds that keep a typo from asking for hours of decoding or for more
// context than any model here has.
const (
	maxShots    = 64
	maxTrials   = 100
	maxNewLimit = 1024
	maxBatch    = 4096
)

// DefaultConfig is the open_flamingo protocol MM1 reports: 0, 4 and 8
// shots, three demonstration draws, about 20 new tokens for a caption and
// 5 for a short answer. The paths follow `mmablate data synth`'s layout
// under datasets/shapes.
func DefaultConfig() Config {
	return Config{
		Caption:           "datasets/shapes/eval/caption",
		VQA:               "datasets/shapes/eval/vqa",
		Text:              "datasets/shapes/eval/text",
		Shots:             []int{0, 4, 8},
		Trials:            3,
		MaxQueries:        200,
		Batch:             16,
		MaxNewTokens:      MaxNewTokens{Caption: 20, VQA: 5},
		PerplexitySamples: 64,
	}
}

// ParseConfig decodes an `eval:` YAML body over DefaultConfig, rejecting
// unknown keys, and validates the result.
func ParseConfig(b []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty body, all defaults
		return Config{}, fmt.Errorf("eval config: %w", err)
	}
	return c, c.Validate()
}

// Validate checks every value; each error names its key (eval.shots[1]).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("eval.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if len(c.Shots) == 0 {
		bad("shots", "empty: give at least one demonstration count, e.g. [0]")
	}
	seen := map[int]int{}
	for i, k := range c.Shots {
		key := fmt.Sprintf("shots[%d]", i)
		switch j, dup := seen[k]; {
		case k < 0 || k > maxShots:
			bad(key, "%d is outside 0..%d", k, maxShots)
		case dup:
			bad(key, "%d repeats shots[%d]", k, j)
		}
		seen[k] = i
	}
	if c.Trials < 1 || c.Trials > maxTrials {
		bad("trials", "%d is outside 1..%d", c.Trials, maxTrials)
	}
	if c.MaxQueries < 0 {
		bad("max_queries", "%d is negative (0 evaluates every query)", c.MaxQueries)
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		bad("batch", "%d is outside 1..%d", c.Batch, maxBatch)
	}
	if n := c.MaxNewTokens.Caption; n < 1 || n > maxNewLimit {
		bad("max_new_tokens.caption", "%d is outside 1..%d", n, maxNewLimit)
	}
	if n := c.MaxNewTokens.VQA; n < 1 || n > maxNewLimit {
		bad("max_new_tokens.vqa", "%d is outside 1..%d", n, maxNewLimit)
	}
	if c.PerplexitySamples < 0 {
		bad("perplexity_samples", "%d is negative (0 skips the perplexity)", c.PerplexitySamples)
	}
	if c.Caption == "" && c.VQA == "" && (c.Text == "" || c.PerplexitySamples == 0) {
		bad("caption", "nothing to evaluate: caption, vqa and text (with perplexity_samples > 0) are all off")
	}
	return errors.Join(errs...)
}

// ResolvePaths makes the relative dataset paths relative to dir (the
// config file's directory), as the run config's other paths are.
func (c *Config) ResolvePaths(dir string) {
	for _, p := range []*string{&c.Caption, &c.VQA, &c.Text} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
