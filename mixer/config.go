package mixer

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/layouts"
)

// KeyPrefix is where a cell's config nests Config; every error from
// Validate, New and the packer names its key under it
// (data.sources.caption.weight, data.schedule[1].weights.text).
const KeyPrefix = "data"

// Config is the data mixture and packing of one training run, the `data:`
// block of a cell config:
//
//	data:
//	  sampling: random          # or stratified
//	  seed: 7
//	  sources:
//	    caption:     {paths: [shards/captions], weight: 45}
//	    interleaved: {paths: [shards/docs], weight: 45}
//	    text:        {paths: [shards/text], weight: 10, exhausted: stop}
//	  schedule:                 # weights from a step on; unnamed sources keep theirs
//	    - {step: 10000, weights: {caption: 50, interleaved: 10, text: 40}}
//	  interpolation: constant   # or linear
//	  packing: {batch_size: 8, seq_len: 128, image_tokens: 64, resolution: 128, max_images: 16}
type Config struct {
	// Sources maps a source name to its dataset and weight. Sources are
	// ordered by name wherever an order matters (sampling ties, rows of a
	// stratified batch), so the mixture never depends on map order.
	Sources map[string]Source `yaml:"sources"`
	// Sampling is "random" (default: per sample, see the package doc) or
	// "stratified" (per sequence, an exact integer split in every batch).
	Sampling string `yaml:"sampling"`
	// Seed drives the random sampler; the streams have their own seeds.
	Seed uint64 `yaml:"seed"`
	// Schedule changes the weights from a training step on; the sources'
	// own weights hold from step 0. Steps strictly increase.
	Schedule []Phase `yaml:"schedule"`
	// Interpolation between schedule points: "constant" (default: a phase's
	// weights hold until the next phase) or "linear" (weights move linearly
	// from one point to the next, constant after the last).
	Interpolation string  `yaml:"interpolation"`
	Packing       Packing `yaml:"packing"`
}

// Source is one dataset of the mixture.
type Source struct {
	// Paths are the dataset files or directories; whoever opens the
	// streams reads them (New takes opened streams).
	Paths []string `yaml:"paths"`
	// Weight is the source's share, relative to the others' (45:45:10 and
	// 0.45:0.45:0.1 are the same mixture). It must be positive.
	Weight float64 `yaml:"weight"`
	// Exhausted is what the end of an epoch does: "repeat" (default: the
	// stream's next epoch, in a new order) or "stop" (the source leaves
	// the mixture and the others share its weight).
	Exhausted string `yaml:"exhausted"`
	// Layout forces the datasets' layout (auto, mmablate, hf-image,
	// img2dataset, obelics, text); "" detects it from each file's schema.
	Layout string `yaml:"layout,omitempty"`
	// CaptionColumn, ImageColumn and TextColumn rename the columns of the
	// layouts that read them ("" keeps the layout's defaults).
	CaptionColumn string `yaml:"caption_column,omitempty"`
	ImageColumn   string `yaml:"image_column,omitempty"`
	TextColumn    string `yaml:"text_column,omitempty"`
	// OnError is what a bad row (a corrupt image, a null caption) does:
	// "fail" (default) stops training naming the file, row group and row;
	// "skip" drops it and counts it by reason (Stats.Skipped).
	OnError string `yaml:"on_error,omitempty"`
}

// Phase sets weights from Step on.
type Phase struct {
	Step    int64              `yaml:"step"`
	Weights map[string]float64 `yaml:"weights"`
}

// Packing shapes the batches.
type Packing struct {
	BatchSize int `yaml:"batch_size"` // sequences per batch (B)
	SeqLen    int `yaml:"seq_len"`    // tokens per sequence (T), the per-sequence token cap
	// MaxImages caps images per sequence; 0 means 16, MM1's limit.
	MaxImages int `yaml:"max_images"`
	// ImageTokens is N, the placeholders per image (the connector's
	// output count); 0 for text-only runs.
	ImageTokens int `yaml:"image_tokens"`
	// Resolution is R: every image must be 3×R×R.
	Resolution int `yaml:"resolution"`
	// Overflow is what happens to a document longer than the space left in
	// a sequence: "split" (default: the part that fits goes here, cut at a
	// text boundary and never inside an image's placeholders; the rest
	// starts the next sequence) or "carry" (the whole document moves to the
	// next sequence; one longer than a sequence is an error).
	Overflow string `yaml:"overflow"`
}

const (
	SamplingRandom     = "random"
	SamplingStratified = "stratified"
	ExhaustedRepeat    = "repeat"
	ExhaustedStop      = "stop"
	InterpConstant     = "constant"
	InterpLinear       = "linear"
	OverflowSplit      = "split"
	OverflowCarry      = "carry"
	// defaultMaxImages is MM1's cap on images per sequence.
	defaultMaxImages = 16
)

// ParseConfig reads a Config from YAML, rejecting unknown keys, and
// validates it.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", KeyPrefix, err)
	}
	return c, c.Validate()
}

// ImagesPerSeq is the image slots of one packed sequence, as the mixer
// sizes its batches and the trainer its model: min(max_images, seq_len /
// image_tokens), at least 1, with max_images 0 meaning its default (16);
// 0 when the packing carries no images.
func (p Packing) ImagesPerSeq() int {
	if p.ImageTokens <= 0 {
		return 0
	}
	n := p.MaxImages
	if n == 0 {
		n = defaultMaxImages
	}
	return max(1, min(n, p.SeqLen/p.ImageTokens))
}

// withDefaults fills the documented defaults.
func (c Config) withDefaults() Config {
	if c.Sampling == "" {
		c.Sampling = SamplingRandom
	}
	if c.Interpolation == "" {
		c.Interpolation = InterpConstant
	}
	if c.Packing.MaxImages == 0 {
		c.Packing.MaxImages = defaultMaxImages
	}
	if c.Packing.Overflow == "" {
		c.Packing.Overflow = OverflowSplit
	}
	src := make(map[string]Source, len(c.Sources))
	for name, s := range c.Sources {
		if s.Exhausted == "" {
			s.Exhausted = ExhaustedRepeat
		}
		src[name] = s
	}
	c.Sources = src
	return c
}

// names returns the source names in their canonical (sorted) order.
func (c Config) names() []string {
	names := make([]string, 0, len(c.Sources))
	for n := range c.Sources {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Validate checks every field, returning all problems joined, each naming
// its key path under KeyPrefix.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", KeyPrefix, key, fmt.Sprintf(format, args...)))
	}
	if len(c.Sources) == 0 {
		bad("sources", "no sources: the mixture needs at least one dataset")
	}
	for _, name := range c.names() {
		s := c.Sources[name]
		key := "sources." + name
		if strings.TrimSpace(name) == "" || strings.ContainsAny(name, ".[]") {
			bad(key, "source name %q must be non-empty and contain no '.', '[' or ']'", name)
		}
		if len(s.Paths) == 0 {
			bad(key+".paths", "no dataset paths: the source would be empty")
		}
		for i, p := range s.Paths {
			if p == "" {
				bad(fmt.Sprintf("%s.paths[%d]", key, i), "empty path")
			}
		}
		if err := checkWeight(s.Weight); err != nil {
			bad(key+".weight", "%v", err)
		}
		switch s.Exhausted {
		case "", ExhaustedRepeat, ExhaustedStop:
		default:
			bad(key+".exhausted", "%q: want repeat or stop", s.Exhausted)
		}
		if _, err := layouts.ParseLayout(s.Layout); err != nil {
			bad(key+".layout", "%v", err)
		}
		switch data.OnError(s.OnError) {
		case "", data.OnErrorFail, data.OnErrorSkip:
		default:
			bad(key+".on_error", "%q: want fail or skip", s.OnError)
		}
	}
	switch c.Sampling {
	case "", SamplingRandom, SamplingStratified:
	default:
		bad("sampling", "%q: want random or stratified", c.Sampling)
	}
	switch c.Interpolation {
	case "", InterpConstant, InterpLinear:
	default:
		bad("interpolation", "%q: want constant or linear", c.Interpolation)
	}
	prev := int64(0)
	for i, ph := range c.Schedule {
		key := fmt.Sprintf("schedule[%d]", i)
		switch {
		case ph.Step < 0:
			bad(key+".step", "%d is negative", ph.Step)
		case i > 0 && ph.Step <= prev:
			bad(key+".step", "%d does not come after schedule[%d].step %d: steps must strictly increase", ph.Step, i-1, prev)
		}
		prev = ph.Step
		if len(ph.Weights) == 0 {
			bad(key+".weights", "no weights")
		}
		names := make([]string, 0, len(ph.Weights))
		for n := range ph.Weights {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if _, ok := c.Sources[n]; !ok {
				bad(key+".weights."+n, "unknown source %q (sources: %s)", n, strings.Join(c.names(), ", "))
				continue
			}
			if err := checkWeight(ph.Weights[n]); err != nil {
				bad(key+".weights."+n, "%v", err)
			}
		}
	}
	p := c.Packing
	if p.BatchSize <= 0 {
		bad("packing.batch_size", "%d: want a positive number of sequences", p.BatchSize)
	}
	if p.SeqLen < 2 {
		bad("packing.seq_len", "%d: want at least 2 tokens (a token and its target)", p.SeqLen)
	}
	if p.MaxImages < 0 {
		bad("packing.max_images", "%d is negative", p.MaxImages)
	}
	if p.ImageTokens < 0 {
		bad("packing.image_tokens", "%d is negative", p.ImageTokens)
	}
	if p.Resolution < 0 {
		bad("packing.resolution", "%d is negative", p.Resolution)
	}
	if p.ImageTokens > 0 && p.Resolution == 0 {
		bad("packing.resolution", "missing: image_tokens is %d, so images need a resolution", p.ImageTokens)
	}
	switch p.Overflow {
	case "", OverflowSplit, OverflowCarry:
	default:
		bad("packing.overflow", "%q: want split or carry", p.Overflow)
	}
	return errors.Join(errs...)
}

func checkWeight(w float64) error {
	switch {
	case math.IsNaN(w) || math.IsInf(w, 0):
		return fmt.Errorf("%v is not a finite number", w)
	case w <= 0:
		return fmt.Errorf("%v: weights must be positive", w)
	}
	return nil
}
