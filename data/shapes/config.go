package shapes

import (
	"fmt"
)

// Config is everything that decides a synth output's bytes. Workers and
// progress reporting are not part of it: they never change the output.
type Config struct {
	Seed uint64 `json:"seed"`
	// Size is the image side in pixels.
	Size int `json:"size"`
	// Row counts per split.
	Scenes      int `json:"scenes"`       // captions/
	Docs        int `json:"docs"`         // interleaved/
	Texts       int `json:"texts"`        // text/, besides the chunks of the text files
	EvalCaption int `json:"eval_caption"` // eval/caption/query/
	EvalVQA     int `json:"eval_vqa"`     // eval/vqa/query/
	Support     int `json:"support"`      // each eval split's support/
	// EvalText is the row count of eval/text/ (SplitEvalText), held-out
	// synthetic texts for a validation perplexity; 0 writes no such split
	// and leaves synth.json as it was without it.
	EvalText int `json:"eval_text,omitempty"`
	// Instructions is the row count of instructions/ (SplitInstructions);
	// 0 writes no such split and leaves synth.json as it was without it.
	Instructions int `json:"instructions,omitempty"`
	// Scene distribution, see SceneOptions.
	MaxObjects      int     `json:"max_objects"`
	TinyFraction    float64 `json:"tiny_fraction"`
	CrowdedFraction float64 `json:"crowded_fraction"`
	// JPEGFraction is the probability that an image is stored as JPEG
	// (quality JPEGQuality) rather than PNG.
	JPEGFraction float64 `json:"jpeg_fraction"`
	// TextFiles are plain-text files cut into paragraph chunks and added to
	// text/ (Go's Opticks text among them by default, see BookPath).
	TextFiles []string `json:"-"`
}

// Bounds on Config.
const (
	MinSize    = 16
	MaxSize    = 2048
	MaxCount   = 10_000_000
	MaxObjects = int(numPositions) // one object per grid cell
)

// DefaultConfig is sized for a two-core laptop: about ten thousand scenes,
// generated in seconds, enough for a resolution or token-count ablation to
// show its effect in minutes of training.
func DefaultConfig() Config {
	return Config{
		Seed:            1,
		Size:            128,
		Scenes:          5000,
		Docs:            1500,
		Texts:           2000,
		EvalCaption:     300,
		EvalVQA:         500,
		Support:         100,
		EvalText:        200, // more than eval.perplexity_samples reads (16–32 in the examples); text only, so cheap
		MaxObjects:      8,
		TinyFraction:    0.15,
		CrowdedFraction: 0.25,
		JPEGFraction:    0.5,
	}
}

// Validate rejects sizes and counts outside their bounds, naming the field.
func (c *Config) Validate() error {
	if c.Size < MinSize || c.Size > MaxSize {
		return fmt.Errorf("shapes: size %d px is outside %d..%d", c.Size, MinSize, MaxSize)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"scenes", c.Scenes}, {"docs", c.Docs}, {"texts", c.Texts}, {"eval-caption", c.EvalCaption}, {"eval-vqa", c.EvalVQA}, {"support", c.Support}, {"eval-text", c.EvalText}, {"instructions", c.Instructions}} {
		if f.v < 0 || f.v > MaxCount {
			return fmt.Errorf("shapes: %s = %d is outside 0..%d", f.name, f.v, MaxCount)
		}
	}
	if c.MaxObjects < 1 || c.MaxObjects > MaxObjects {
		return fmt.Errorf("shapes: max-objects = %d is outside 1..%d (one object per cell of the 3×3 grid)", c.MaxObjects, MaxObjects)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"tiny-fraction", c.TinyFraction}, {"crowded-fraction", c.CrowdedFraction}, {"jpeg-fraction", c.JPEGFraction}} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return fmt.Errorf("shapes: %s = %v is outside 0..1", f.name, f.v)
		}
	}
	return nil
}

func (c *Config) sceneOptions() SceneOptions {
	return SceneOptions{MaxObjects: c.MaxObjects, TinyFraction: c.TinyFraction, CrowdedFraction: c.CrowdedFraction}
}
