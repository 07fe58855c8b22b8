package models

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"gopkg.in/yaml.v3"

	"github.com/mmablate/mmablate/models/connector"
)

// Config is the `model:` section of a training config. Decode YAML into
// DefaultConfig() so that absent keys keep their defaults; Validate before
// building, so a bad value fails at start-up with its key named, never as a
// panic mid-training.
type Config struct {
	Decoder DecoderConfig `yaml:"decoder" json:"decoder"`
	// Vision and Connector are nil for a text-only model.
	Vision    *VisionConfig    `yaml:"vision,omitempty" json:"vision,omitempty"`
	Connector *ConnectorConfig `yaml:"connector,omitempty" json:"connector,omitempty"`
}

// DecoderConfig sizes the language model (MODEL-SPEC "Decoder").
type DecoderConfig struct {
	Vocab     int     `yaml:"vocab" json:"vocab"`           // token ids are in [0, vocab)
	Width     int     `yaml:"width" json:"width"`           // D, the residual stream
	Layers    int     `yaml:"layers" json:"layers"`         // L transformer blocks
	Heads     int     `yaml:"heads" json:"heads"`           // query heads H; head dim = width/heads
	KVHeads   int     `yaml:"kv_heads" json:"kv_heads"`     // key/value heads for grouped-query attention
	FFNHidden int     `yaml:"ffn_hidden" json:"ffn_hidden"` // SwiGLU hidden size F
	RopeBase  float64 `yaml:"rope_base" json:"rope_base"`   // RoPE θ base
	QKNorm    bool    `yaml:"qk_norm" json:"qk_norm"`       // RMSNorm on q and k per head
	MaxSeq    int     `yaml:"max_seq" json:"max_seq"`       // longest sequence T a batch may have

	// Instruction-following pruning (models/ifprune). Every key is
	// omitted when unset, so a dense config's canonical form (its cell id,
	// its checkpoint metadata) is what it was before pruning existed.
	FFNPruning string `yaml:"ffn_pruning,omitempty" json:"ffn_pruning,omitempty"` // none (""), static or instruction
	// FFNActive is the active FFN channels k per layer: a fraction of
	// ffn_hidden in (0, 1] or a whole count in (1, ffn_hidden]; 0 = all.
	FFNActive float64 `yaml:"ffn_active,omitempty" json:"ffn_active,omitempty"`
	// FFNMaskTemperature is SoftTopK's t; 0 = DefaultMaskTemperature.
	FFNMaskTemperature float64 `yaml:"ffn_mask_temperature,omitempty" json:"ffn_mask_temperature,omitempty"`
	// FFNMaskEstimator is how training masks the FFN: straight_through
	// ("", the default) runs the hard top-k mask that inference gathers and
	// takes the SoftTopK mask's gradient; soft runs the SoftTopK mask itself.
	FFNMaskEstimator string `yaml:"ffn_mask_estimator,omitempty" json:"ffn_mask_estimator,omitempty"`
	// FFNPredictorWidth (E) and FFNPredictorHidden (P) size the instruction
	// predictor; 0 = DefaultPredictorWidth, DefaultPredictorHidden.
	FFNPredictorWidth  int `yaml:"ffn_predictor_width,omitempty" json:"ffn_predictor_width,omitempty"`
	FFNPredictorHidden int `yaml:"ffn_predictor_hidden,omitempty" json:"ffn_predictor_hidden,omitempty"`
	// FFNInstructionTokens (K): a document with no marked instruction
	// tokens uses its first K text tokens as its instruction; 0 = none
	// (such a document gets the predictor's empty-instruction mask).
	FFNInstructionTokens int `yaml:"ffn_instruction_tokens,omitempty" json:"ffn_instruction_tokens,omitempty"`
}

// FFN pruning modes (model.decoder.ffn_pruning).
const (
	PruneNone        = "none"
	PruneStatic      = "static"
	PruneInstruction = "instruction"
)

// Mask estimators (model.decoder.ffn_mask_estimator). Soft masks need not
// become binary: a SoftTopK mask of k/F on every channel trains as well as
// any other (the weights rescale), and then the hard top-k that inference
// gathers is a different model. The straight-through estimator trains the
// model that inference runs.
const (
	EstimatorStraightThrough = "straight_through"
	EstimatorSoft            = "soft"
)

// Defaults of the pruning keys left at 0.
const (
	// DefaultMaskTemperature: scores a few tenths apart already give
	// near-binary masks, so the soft training masks stay close to the hard
	// top-k used at inference, while the predictor's initial near-equal
	// scores still give every channel gradient.
	DefaultMaskTemperature = 0.1
	DefaultPredictorWidth  = 64
	DefaultPredictorHidden = 128
)

// Pruned reports whether the FFNs are masked (static or instruction).
func (d DecoderConfig) Pruned() bool {
	return d.FFNPruning == PruneStatic || d.FFNPruning == PruneInstruction
}

// ActiveFFN is the number of FFN channels k active per layer and input.
func (d DecoderConfig) ActiveFFN() int {
	a := d.FFNActive
	switch {
	case a <= 0:
		return d.FFNHidden
	case a <= 1:
		return max(1, int(math.Round(a*float64(d.FFNHidden))))
	}
	return int(a)
}

// MaskTemperature is SoftTopK's temperature with the default applied.
func (d DecoderConfig) MaskTemperature() float64 {
	if d.FFNMaskTemperature == 0 {
		return DefaultMaskTemperature
	}
	return d.FFNMaskTemperature
}

// PredictorSizes are E and P with the defaults applied.
func (d DecoderConfig) PredictorSizes() (width, hidden int) {
	width, hidden = d.FFNPredictorWidth, d.FFNPredictorHidden
	if width == 0 {
		width = DefaultPredictorWidth
	}
	if hidden == 0 {
		hidden = DefaultPredictorHidden
	}
	return width, hidden
}

// VisionConfig sizes the ViT image encoder (MODEL-SPEC "ViT encoder").
type VisionConfig struct {
	Resolution int  `yaml:"resolution" json:"resolution"` // R: images are R×R
	Patch      int  `yaml:"patch" json:"patch"`           // P: patches are P×P, grid R/P
	Width      int  `yaml:"width" json:"width"`           // Dv
	Depth      int  `yaml:"depth" json:"depth"`           // number of blocks
	Heads      int  `yaml:"heads" json:"heads"`           // Hv
	Freeze     bool `yaml:"freeze" json:"freeze"`         // no gradient, no optimiser update
	// Init names a weights file (a run's final.safetensors or a
	// checkpoint's weights) whose vit.* tensors start the encoder instead
	// of a random draw: a pretrained encoder, as MM1's ablations start from
	// a pretrained CLIP ViT. Only a fresh run reads it; a resumed run takes
	// every weight from its checkpoint.
	Init string `yaml:"init,omitempty" json:"init,omitempty"`
}

// ConnectorConfig picks the vision-language connector (MODEL-SPEC "Connectors").
type ConnectorConfig struct {
	Type   string `yaml:"type" json:"type"`     // avgpool, attnpool, cabstractor or mlp
	Tokens int    `yaml:"tokens" json:"tokens"` // N image tokens per image (mlp: must equal the patch count)
	Depth  int    `yaml:"depth" json:"depth"`   // cabstractor: ResBlocks before and after pooling
}

// Connector types.
const (
	ConnAvgPool     = "avgpool"
	ConnAttnPool    = "attnpool"
	ConnCAbstractor = "cabstractor"
	ConnMLP         = "mlp"
)

// DefaultConfig is engine.md's reference model with images: the sizes every
// benchmark and parity test uses, so a config that sets nothing trains it.
func DefaultConfig() Config {
	return Config{
		Decoder:   DefaultDecoderConfig(),
		Vision:    &VisionConfig{Resolution: 128, Patch: 16, Width: 256, Depth: 2, Heads: 4},
		Connector: &ConnectorConfig{Type: ConnCAbstractor, Tokens: 64, Depth: 1}, // MM1's base connector
	}
}

// DefaultDecoderConfig is the text-only reference decoder of engine.md.
func DefaultDecoderConfig() DecoderConfig {
	return DecoderConfig{
		Vocab:     512,
		Width:     256,
		Layers:    4,
		Heads:     4,
		KVHeads:   4,
		FFNHidden: 704,    // ≈ 8/3·D rounded up to a multiple of 64, as LLaMA sizes SwiGLU
		RopeBase:  500000, // the Apple foundation-model report's base
		QKNorm:    true,
		MaxSeq:    128,
	}
}

// ParseConfig decodes a `model:` YAML body over the defaults, rejecting
// unknown keys, and validates the result.
func ParseConfig(b []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: empty body, all defaults
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	return c, c.Validate()
}

// maxSeqLimit bounds max_seq, which sizes the RoPE tables and every
// activation, so a typo cannot ask for terabytes at build time.
const maxSeqLimit = 1 << 20

// Validate checks every size and relation the model relies on; the error
// names the offending key (model.decoder.heads, ...).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("model.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	d := c.Decoder
	positive := func(key string, v int) bool {
		if v <= 0 {
			bad(key, "must be positive, got %d", v)
			return false
		}
		return true
	}
	positive("decoder.vocab", d.Vocab)
	positive("decoder.layers", d.Layers)
	positive("decoder.ffn_hidden", d.FFNHidden)
	if positive("decoder.max_seq", d.MaxSeq) && d.MaxSeq > maxSeqLimit {
		bad("decoder.max_seq", "%d is above the supported %d", d.MaxSeq, maxSeqLimit)
	}
	if positive("decoder.width", d.Width) && positive("decoder.heads", d.Heads) {
		if d.Width%d.Heads != 0 {
			bad("decoder.heads", "%d does not divide decoder.width %d", d.Heads, d.Width)
		} else if hd := d.Width / d.Heads; hd%2 != 0 {
			bad("decoder.heads", "head dimension width/heads = %d must be even for RoPE", hd)
		}
		if positive("decoder.kv_heads", d.KVHeads) && d.Heads%d.KVHeads != 0 {
			bad("decoder.kv_heads", "%d does not divide decoder.heads %d", d.KVHeads, d.Heads)
		}
	}
	if !(d.RopeBase > 1) || math.IsInf(d.RopeBase, 0) {
		bad("decoder.rope_base", "must be a finite number above 1, got %v", d.RopeBase)
	}
	errs = append(errs, d.validatePruning()...)
	switch {
	case c.Vision == nil && c.Connector == nil:
	case c.Vision == nil:
		bad("vision", "missing, but model.connector is set (remove both for a text-only model)")
	case c.Connector == nil:
		bad("connector", "missing, but model.vision is set (remove both for a text-only model)")
	default:
		if err := c.validateImages(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateImages delegates to models/vision and models/connector, whose
// errors already name the model.vision.* and model.connector.* keys; the
// connector is checked only on a valid encoder, since its grid comes from it.
func (c Config) validateImages() error {
	if err := c.visionConfig().Validate(); err != nil {
		return err
	}
	return connector.Validate(c.Connector.Type, c.connectorConfig())
}

// validatePruning checks the ffn_* keys, naming each.
func (d DecoderConfig) validatePruning() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("model.decoder.%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch d.FFNPruning {
	case "", PruneNone, PruneStatic, PruneInstruction:
	default:
		bad("ffn_pruning", "unknown mode %q (want none, static or instruction)", d.FFNPruning)
	}
	a := d.FFNActive
	switch {
	case math.IsNaN(a) || math.IsInf(a, 0) || a < 0:
		bad("ffn_active", "must be a fraction in (0, 1] or a channel count, got %v", a)
	case a > 1 && a != math.Trunc(a):
		bad("ffn_active", "%v is above 1, so it is a channel count, and must be whole", a)
	case a > 1 && d.FFNHidden > 0 && a > float64(d.FFNHidden):
		bad("ffn_active", "%v channels is more than decoder.ffn_hidden %d", a, d.FFNHidden)
	case !d.Pruned() && a != 0 && d.FFNHidden > 0 && d.ActiveFFN() != d.FFNHidden:
		bad("ffn_active", "%v keeps %d of %d channels, but decoder.ffn_pruning is %q (set static or instruction, or ffn_active 1)", a, d.ActiveFFN(), d.FFNHidden, d.FFNPruning)
	}
	switch d.FFNMaskEstimator {
	case "", EstimatorStraightThrough, EstimatorSoft:
	default:
		bad("ffn_mask_estimator", "unknown estimator %q (want straight_through or soft)", d.FFNMaskEstimator)
	}
	if t := d.FFNMaskTemperature; math.IsNaN(t) || math.IsInf(t, 0) || t < 0 {
		bad("ffn_mask_temperature", "must be a positive number (0: default %v), got %v", DefaultMaskTemperature, t)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"ffn_predictor_width", d.FFNPredictorWidth}, {"ffn_predictor_hidden", d.FFNPredictorHidden}, {"ffn_instruction_tokens", d.FFNInstructionTokens}} {
		if f.v < 0 {
			bad(f.key, "must be 0 (default) or positive, got %d", f.v)
		}
	}
	return errs
}

// HeadDim is the per-head width of the decoder's attention.
func (d DecoderConfig) HeadDim() int { return d.Width / d.Heads }
