package experiments

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mmablate/mmablate/data/shapes"
	"github.com/mmablate/mmablate/experiments/eval"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine/cuda"
)

// Config is one cell's run config. Default gives every default; Load
// decodes a file over it.
type Config struct {
	Name string `yaml:"name"` // informational; the default run directory is runs/<name>
	// Out is the run directory `mmablate train` writes when --out is not
	// given. Like --out, and unlike the config's dataset paths, it is
	// relative to the current directory, not to the config file; "" means
	// runs/<name>. Train and sweeps take the directory as an argument and
	// do not read it.
	Out string `yaml:"out,omitempty"`
	// Seed drives model init and the streams' order (and data.seed when
	// that is 0).
	Seed   uint64 `yaml:"seed"`
	Device string `yaml:"device"` // cpu, or cuda (models/engine/cuda: the decoder on the GPU, the image path on the host)
	// Precision of the GPU's matrix products: fp32 (the default), tf32 or
	// bf16 (fp32 weights, optimizer state and every other kernel). Only
	// with device cuda.
	Precision string `yaml:"precision,omitempty"`
	// Shapes, when dir is set, generates the shapes world there on first use.
	Shapes    ShapesConfig    `yaml:"shapes"`
	Tokenizer TokenizerConfig `yaml:"tokenizer"`
	Data      mixer.Config    `yaml:"data"`
	Model     models.Config   `yaml:"model"`
	Train     TrainConfig     `yaml:"train"`
	Eval      eval.Config     `yaml:"eval"`
	// Encoder, when set, pretrains model.vision.init on first use, as
	// tokenizer.path is trained on first use: the file is made once, by the
	// first run that needs it, and every later run loads it.
	Encoder *EncoderPretrain `yaml:"encoder,omitempty"`
}

// EncoderPretrain holds `mmablate encoder pretrain`'s settings (zero: its
// defaults). The seed is the encoder's own, not the run's, so every cell
// of a sweep that names the same file gets the same encoder whichever cell
// makes it.
type EncoderPretrain struct {
	Steps int     `yaml:"steps"`
	Batch int     `yaml:"batch"`
	LR    float64 `yaml:"lr"`
	Seed  uint64  `yaml:"seed"`
}

// ShapesConfig mirrors data/shapes.Config plus where to write it.
type ShapesConfig struct {
	Dir             string   `yaml:"dir"`
	Seed            uint64   `yaml:"seed"`
	Size            int      `yaml:"size"`
	Scenes          int      `yaml:"scenes"`
	Docs            int      `yaml:"docs"`
	Texts           int      `yaml:"texts"`
	EvalCaption     int      `yaml:"eval_caption"`
	EvalVQA         int      `yaml:"eval_vqa"`
	Support         int      `yaml:"support"`
	EvalText        int      `yaml:"eval_text"`              // held-out texts in eval/text/, eval.text's default; 0: none (and no default eval.text)
	Instructions    int      `yaml:"instructions,omitempty"` // rows of instructions/ (instruction-pruning data); 0: none
	MaxObjects      int      `yaml:"max_objects"`
	TinyFraction    float64  `yaml:"tiny_fraction"`
	CrowdedFraction float64  `yaml:"crowded_fraction"`
	JPEGFraction    float64  `yaml:"jpeg_fraction"`
	Book            bool     `yaml:"book"` // add Go's Opticks text to text/ (needs a Go installation)
	TextFiles       []string `yaml:"text_files"`
}

// TokenizerConfig says where the tokenizer is, and how to train it when it
// is not there yet.
type TokenizerConfig struct {
	Path         string `yaml:"path"`
	Vocab        int    `yaml:"vocab"`         // total vocabulary when trained, specials and bytes included
	MinFrequency int64  `yaml:"min_frequency"` // pairs seen fewer times are never merged
}

// TrainConfig is the optimisation and bookkeeping of the run.
type TrainConfig struct {
	Steps           int     `yaml:"steps"`
	LR              float64 `yaml:"lr"`     // peak, reached at the end of warm-up
	MinLR           float64 `yaml:"min_lr"` // cosine floor, reached at steps
	Warmup          int     `yaml:"warmup"` // linear warm-up steps
	WeightDecay     float64 `yaml:"weight_decay"`
	Beta1           float64 `yaml:"beta1"`
	Beta2           float64 `yaml:"beta2"`
	Eps             float64 `yaml:"eps"`
	Clip            float64 `yaml:"clip"` // global gradient-norm clip; 0 disables
	CheckpointEvery int     `yaml:"checkpoint_every"`
	KeepCheckpoints int     `yaml:"keep_checkpoints"`
	LogEvery        int     `yaml:"log_every"`
	// ShuffleBuffer is rows held per stream for shuffling (0: row groups
	// permuted, rows in file order).
	ShuffleBuffer int     `yaml:"shuffle_buffer"`
	Threads       Threads `yaml:"threads"`
	// LRScale multiplies the learning rate (and with it the decoupled
	// decay) of the tensors whose names start with a key: the name itself
	// or the name up to a dot ("connector.blocks" covers
	// connector.blocks.0.conv1.weight). The longest matching key wins; a
	// PyTorch parameter group per key. Keys that match no tensor of a
	// model (a sweep's avgpool cells have no connector.blocks) are logged.
	LRScale map[string]float64 `yaml:"lr_scale,omitempty"`
}

// Threads sets the parallelism; both counts change the bits of the result
// (see the package doc), so they are part of the config and its hash.
type Threads struct {
	BLAS    int `yaml:"blas"`    // OpenBLAS threads
	Workers int `yaml:"workers"` // model worker goroutines and stream decoders
}

// Default is every default in one place.
func Default() Config {
	sh := shapes.DefaultConfig()
	model := models.DefaultConfig()
	model.Decoder.Vocab = 0 // derived from the tokenizer
	return Config{
		Device: "cpu",
		Shapes: ShapesConfig{Seed: sh.Seed, Size: sh.Size, Scenes: sh.Scenes, Docs: sh.Docs, Texts: sh.Texts,
			EvalCaption: sh.EvalCaption, EvalVQA: sh.EvalVQA, Support: sh.Support, EvalText: sh.EvalText, MaxObjects: sh.MaxObjects,
			TinyFraction: sh.TinyFraction, CrowdedFraction: sh.CrowdedFraction, JPEGFraction: sh.JPEGFraction},
		Tokenizer: TokenizerConfig{
			Vocab:        1024, // the shapes world's words fit with room for merges
			MinFrequency: 2,    // a pair seen once is noise, as the tokenizer CLI's default
		},
		Model: model,
		Eval:  eval.DefaultConfig(),
		Train: TrainConfig{
			Steps:           300,
			LR:              3e-3,
			MinLR:           3e-4, // a tenth of the peak, the usual cosine floor
			Warmup:          30,   // a tenth of the run
			WeightDecay:     models.DefaultAdamW.WeightDecay,
			Beta1:           models.DefaultAdamW.Beta1,
			Beta2:           models.DefaultAdamW.Beta2,
			Eps:             models.DefaultAdamW.Eps,
			Clip:            models.DefaultClipNorm,
			CheckpointEvery: 100,
			KeepCheckpoints: 2, // the newest and one before it, in case the newest is damaged
			LogEvery:        10,
			ShuffleBuffer:   1000,
			Threads:         Threads{BLAS: 1, Workers: 2}, // one BLAS thread keeps results reproducible
		},
	}
}

// Load reads the config at path over Default, applies the overrides
// ("key.path=value"), makes relative paths absolute (relative to path's
// directory), derives what it can and validates.
func Load(path string, overrides []string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path, filepath.Dir(abs), overrides)
}

// Parse is Load on bytes: name labels errors, relative paths are joined to
// baseDir.
func Parse(b []byte, name, baseDir string, overrides []string) (Config, error) {
	c := Default()
	if err := decodeChecked(b, name, overrides, &c); err != nil {
		return Config{}, err
	}
	c.shapesEvalPaths()
	c.absPaths(baseDir)
	c.derive()
	return c, c.Validate()
}

// shapesEvalPaths points the eval paths left at their defaults at the
// shapes world this config generates, where its benchmarks are. The text
// perplexity's default is the held-out eval/text, never text/, which
// training reads: with shapes.eval_text 0 there is none, and eval.text
// left at its default is off.
func (c *Config) shapesEvalPaths() {
	if c.Shapes.Dir == "" {
		return
	}
	d := eval.DefaultConfig()
	text := "eval/text"
	if c.Shapes.EvalText <= 0 {
		text = ""
	}
	for _, p := range []struct {
		v        *string
		def, sub string
	}{{&c.Eval.Caption, d.Caption, "eval/caption"}, {&c.Eval.VQA, d.VQA, "eval/vqa"}, {&c.Eval.Text, d.Text, text}} {
		switch {
		case *p.v != p.def:
		case p.sub == "":
			*p.v = ""
		default:
			*p.v = filepath.Join(c.Shapes.Dir, filepath.FromSlash(p.sub))
		}
	}
}

// loadResolved reads a run directory's config.resolved.yaml, which lists
// every key, over a zero Config, so that a removed optional section (a
// text-only model's vision) stays removed.
func loadResolved(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	var c Config
	if err := decodeChecked(b, path, nil, &c); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// decodeChecked parses b to a node tree, applies overrides, checks every
// key and scalar against out's type (so errors carry line and key path),
// then decodes.
func decodeChecked(b []byte, name string, overrides []string, out *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var root *yaml.Node
	switch {
	case doc.Kind == 0: // empty file: all defaults
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	case doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode:
		root = doc.Content[0]
	default:
		return fmt.Errorf("%s: the config must be a YAML mapping of sections (name, seed, data, model, train, …)", name)
	}
	for _, o := range overrides {
		if err := applyOverride(root, o, out); err != nil {
			return err
		}
	}
	if errs := checkNode(root, name, "", *out); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := root.Decode(out); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// absPaths makes every dataset and weights path absolute, relative to dir.
func (c *Config) absPaths(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Shapes.Dir = abs(c.Shapes.Dir)
	for i, p := range c.Shapes.TextFiles {
		c.Shapes.TextFiles[i] = abs(p)
	}
	c.Tokenizer.Path = abs(c.Tokenizer.Path)
	if c.Model.Vision != nil {
		c.Model.Vision.Init = abs(c.Model.Vision.Init)
	}
	srcs := make(map[string]mixer.Source, len(c.Data.Sources))
	for n, s := range c.Data.Sources {
		paths := make([]string, len(s.Paths))
		for i, p := range s.Paths {
			paths[i] = abs(p)
		}
		s.Paths = paths
		srcs[n] = s
	}
	c.Data.Sources = srcs
	c.Eval.Caption, c.Eval.VQA, c.Eval.Text = abs(c.Eval.Caption), abs(c.Eval.VQA), abs(c.Eval.Text)
}

// derive fills the values that follow from others.
func (c *Config) derive() {
	if c.Data.Seed == 0 {
		c.Data.Seed = c.Seed
	}
	if c.Model.Vision != nil && c.Model.Connector != nil {
		if c.Data.Packing.ImageTokens == 0 {
			c.Data.Packing.ImageTokens = c.Model.Connector.Tokens
		}
		if c.Data.Packing.Resolution == 0 {
			c.Data.Packing.Resolution = c.Model.Vision.Resolution
		}
	}
}

// Validate checks every section, naming keys; model.decoder.vocab may be 0
// (not derived yet) until the tokenizer is known.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch c.Device {
	case "cpu":
		if c.Precision != "" && c.Precision != "fp32" {
			bad("precision", "%q needs device cuda (the CPU engine computes in fp32)", c.Precision)
		}
	case "cuda":
		if _, err := cuda.ParsePrecision(c.Precision); err != nil {
			bad("precision", "%v", err)
		}
		// Checked here, not only by models.SetAccelerator, so that the run
		// fails before generating data and training a tokenizer.
		if c.Model.Decoder.Pruned() {
			bad("device", "cuda: model.decoder.ffn_pruning %s trains on the CPU engine only", c.Model.Decoder.FFNPruning)
		}
	default:
		bad("device", "%q: want cpu or cuda", c.Device)
	}
	if c.Tokenizer.Path == "" {
		bad("tokenizer.path", "missing: where the tokenizer is, or is to be trained")
	}
	if c.Tokenizer.Vocab <= 0 {
		bad("tokenizer.vocab", "%d: want a positive vocabulary size", c.Tokenizer.Vocab)
	}
	if c.Shapes.Dir != "" {
		sc := c.Shapes.shapesConfig()
		if err := sc.Validate(); err != nil {
			bad("shapes", "%v", err)
		}
	}
	if err := c.Data.Validate(); err != nil {
		errs = append(errs, err)
	}
	m := c.Model
	vocab := m.Decoder.Vocab
	if vocab == 0 {
		m.Decoder.Vocab = 1 // checked against the tokenizer later
	}
	if err := m.Validate(); err != nil {
		errs = append(errs, err)
	}
	if vocab < 0 {
		bad("model.decoder.vocab", "%d is negative (0: take the tokenizer's)", vocab)
	}
	if e := c.Encoder; e != nil {
		if m.Vision == nil || m.Vision.Init == "" {
			bad("encoder", "needs model.vision.init: the file it makes and the run loads")
		}
		if e.Steps < 0 || e.Batch < 0 || e.LR < 0 {
			bad("encoder", "steps %d, batch %d, lr %v: want positive values (0: the defaults)", e.Steps, e.Batch, e.LR)
		}
	}
	p := c.Data.Packing
	if p.SeqLen > m.Decoder.MaxSeq {
		bad("data.packing.seq_len", "%d is more than model.decoder.max_seq %d", p.SeqLen, m.Decoder.MaxSeq)
	}
	if m.Connector != nil && m.Vision != nil {
		if p.ImageTokens != m.Connector.Tokens {
			bad("data.packing.image_tokens", "%d differs from model.connector.tokens %d: each image's placeholders are the connector's outputs", p.ImageTokens, m.Connector.Tokens)
		}
		if p.Resolution != m.Vision.Resolution {
			bad("data.packing.resolution", "%d differs from model.vision.resolution %d", p.Resolution, m.Vision.Resolution)
		}
	} else if p.ImageTokens != 0 {
		bad("data.packing.image_tokens", "%d, but the model is text-only (no model.vision and model.connector)", p.ImageTokens)
	}
	errs = append(errs, c.Train.validate()...)
	if err := c.Eval.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (t TrainConfig) validate() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("train.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if t.Steps <= 0 {
		bad("steps", "%d: want a positive number of steps", t.Steps)
	}
	if !finite(t.LR) || t.LR <= 0 {
		bad("lr", "%v: want a positive finite learning rate", t.LR)
	}
	if !finite(t.MinLR) || t.MinLR < 0 || t.MinLR > t.LR {
		bad("min_lr", "%v: want 0 ≤ min_lr ≤ train.lr %v", t.MinLR, t.LR)
	}
	if t.Warmup < 0 || t.Warmup > t.Steps {
		bad("warmup", "%d: want 0 ≤ warmup ≤ train.steps %d", t.Warmup, t.Steps)
	}
	if !finite(t.WeightDecay) || t.WeightDecay < 0 {
		bad("weight_decay", "%v: want a finite number ≥ 0", t.WeightDecay)
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"beta1", t.Beta1}, {"beta2", t.Beta2}} {
		if !(f.v > 0 && f.v < 1) {
			bad(f.key, "%v: want 0 < %s < 1", f.v, f.key)
		}
	}
	if !finite(t.Eps) || t.Eps <= 0 {
		bad("eps", "%v: want a positive finite number", t.Eps)
	}
	if !finite(t.Clip) || t.Clip < 0 {
		bad("clip", "%v: want a gradient-norm bound ≥ 0 (0: no clipping)", t.Clip)
	}
	for _, key := range slices.Sorted(maps.Keys(t.LRScale)) {
		if v := t.LRScale[key]; key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
			bad("lr_scale", "key %q: want a tensor name or a dotted prefix of one (connector.blocks)", key)
		} else if !finite(v) || v <= 0 {
			bad("lr_scale."+key, "%v: want a positive finite multiplier of train.lr", v)
		}
	}
	if t.CheckpointEvery <= 0 {
		bad("checkpoint_every", "%d: want a positive number of steps", t.CheckpointEvery)
	}
	if t.KeepCheckpoints < 1 {
		bad("keep_checkpoints", "%d: want at least 1 (resume needs one)", t.KeepCheckpoints)
	}
	if t.LogEvery <= 0 {
		bad("log_every", "%d: want a positive number of steps", t.LogEvery)
	}
	if t.ShuffleBuffer < 0 {
		bad("shuffle_buffer", "%d is negative", t.ShuffleBuffer)
	}
	if t.Threads.BLAS < 1 {
		bad("threads.blas", "%d: want at least 1", t.Threads.BLAS)
	}
	if t.Threads.Workers < 1 {
		bad("threads.workers", "%d: want at least 1", t.Threads.Workers)
	}
	return errs
}

// shapesConfig is the data/shapes generator config of the section.
func (s ShapesConfig) shapesConfig() shapes.Config {
	return shapes.Config{Seed: s.Seed, Size: s.Size, Scenes: s.Scenes, Docs: s.Docs, Texts: s.Texts,
		EvalCaption: s.EvalCaption, EvalVQA: s.EvalVQA, Support: s.Support, EvalText: s.EvalText, MaxObjects: s.MaxObjects,
		TinyFraction: s.TinyFraction, CrowdedFraction: s.CrowdedFraction, JPEGFraction: s.JPEGFraction,
		Instructions: s.Instructions, TextFiles: append([]string(nil), s.TextFiles...)}
}

// withVocab sets model.decoder.vocab from the tokenizer's size, or checks
// that the configured one equals it.
func (c *Config) withVocab(tokenizerVocab int) error {
	switch v := c.Model.Decoder.Vocab; {
	case v == 0:
		c.Model.Decoder.Vocab = tokenizerVocab
	case v != tokenizerVocab:
		return fmt.Errorf("model.decoder.vocab %d differs from the vocabulary of tokenizer.path %s (%d ids): set it to %d or to 0 to take the tokenizer's",
			v, c.Tokenizer.Path, tokenizerVocab, tokenizerVocab)
	}
	return nil
}

// Marshal is the config as YAML, every key present.
func (c Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	// A text-only model's vision and connector are omitted; say so, so that
	// decoding over defaults would not bring them back.
	if c.Model.Vision == nil {
		b = bytes.Replace(b, []byte("\nmodel:\n"), []byte("\nmodel:\n  vision: null\n  connector: null\n"), 1)
	}
	return b, nil
}

// unknownKeyList is the known keys, for "unknown key" messages.
func unknownKeyList(keys []string) string {
	if len(keys) > 12 {
		keys = append(keys[:12:12], "…")
	}
	return strings.Join(keys, ", ")
}
