package connector

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/mmablate/mmablate/models/engine"
)

// Prefix is the safetensors name prefix of every connector tensor.
const Prefix = "connector"

const (
	normEps = 1e-5 // LayerNorm eps of MODEL-SPEC.md
	initStd = 0.02 // normal(0, 0.02) for linears, convolutions and queries
)

// The registered connector types (MM1 §3.2).
const (
	AvgPool     = "avgpool"
	AttnPool    = "attnpool"
	CAbstractor = "cabstractor"
	MLP         = "mlp"
)

// Connector maps an encoder's patch grid to N image tokens of the decoder's
// width. Forward and Backward follow the engine's conventions: Forward
// overwrites out, Backward adds into dgrid and into the parameter gradients.
type Connector[T engine.Float] interface {
	// Kind is the registry name (avgpool, attnpool, cabstractor, mlp).
	Kind() string
	// Config is the validated configuration the connector was built with.
	Config() Config
	// NumTokens is N, the tokens each image becomes.
	NumTokens() int
	// NumParams is the number of scalars the connector registered.
	NumParams() int
	// FLOPs counts one step's matrix-product FLOPs for a batch of images,
	// 2·m·n·k forward and twice that backward.
	FLOPs(images int) (forward, backward int64)
	// Init draws the initial weights from rng (see the package doc).
	Init(rng *rand.Rand)
	// Build takes the activation buffers for up to maxImages images per call
	// from a; call it once, after every parameter is registered.
	Build(a *engine.Arena[T], maxImages int)
	// Forward maps grid [B, h, w, Dv] (channels-last) to out [B, N, D] for
	// any B ≤ the Build size (0 included).
	Forward(out, grid []T)
	// Backward adds dgrid [B, h, w, Dv] (nil: no input gradient, as for a
	// frozen encoder) and the parameter gradients from dout [B, N, D]; grid
	// is the input of the last Forward, unchanged.
	Backward(dgrid, dout, grid []T)
}

// Config sizes a connector. The keys named in validation errors are those of
// the training config the values come from.
type Config struct {
	Tokens       int // N (model.connector.tokens)
	Depth        int // cabstractor: ResBlocks before and after pooling (model.connector.depth)
	GridH, GridW int // the encoder's patch grid h×w (model.vision.resolution / model.vision.patch)
	InDim        int // Dv, the encoder width (model.vision.width)
	OutDim       int // D, the decoder width (model.decoder.width)
	Heads        int // attnpool: attention heads, the encoder's (model.vision.heads)
}

// kind is what the registry knows of a connector type without building it.
type kind interface {
	validate(c Config) error // checks beyond the common ones
	numParams(c Config) int
	flops(c Config, images int) (forward int64) // backward is 2·forward
}

// builder is one registry entry: the kind and its constructor for each
// element type (Go cannot store an uninstantiated generic function).
type builder struct {
	kind  kind
	new32 func(*engine.Params[float32], Config, *engine.Pool) Connector[float32]
	new64 func(*engine.Params[float64], Config, *engine.Pool) Connector[float64]
}

// registry lists every connector type; it is read-only. Adding a connector
// is one file (a kind, a generic constructor, its tensor table) plus one
// line here.
var registry = map[string]builder{
	AvgPool:     {avgPoolKind{}, newAvgPool[float32], newAvgPool[float64]},
	AttnPool:    {attnPoolKind{}, newAttnPool[float32], newAttnPool[float64]},
	CAbstractor: {cAbstractorKind{}, newCAbstractor[float32], newCAbstractor[float64]},
	MLP:         {mlpKind{}, newMLP[float32], newMLP[float64]},
}

// Kinds lists the registered connector types, sorted.
func Kinds() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func lookup(name string) (builder, error) {
	b, ok := registry[name]
	if !ok {
		return builder{}, fmt.Errorf("model.connector.type %q is not a connector (want one of %s)",
			name, strings.Join(Kinds(), ", "))
	}
	return b, nil
}

// Validate checks cfg for the connector type name, naming the offending key.
func Validate(name string, cfg Config) error {
	b, err := lookup(name)
	if err != nil {
		return err
	}
	if err := cfg.validateCommon(); err != nil {
		return err
	}
	return b.kind.validate(cfg)
}

// New validates cfg and builds the connector type name, registering its
// tensors in ps under connector.* (see the package doc's table). pool spreads
// attention work (attnpool); nil runs it inline.
func New[T engine.Float](name string, ps *engine.Params[T], cfg Config, pool *engine.Pool) (Connector[T], error) {
	if err := Validate(name, cfg); err != nil {
		return nil, err
	}
	b := registry[name]
	switch ps := any(ps).(type) {
	case *engine.Params[float32]:
		return any(b.new32(ps, cfg, pool)).(Connector[T]), nil
	case *engine.Params[float64]:
		return any(b.new64(ps, cfg, pool)).(Connector[T]), nil
	}
	panic("unreachable: engine.Float is float32 or float64")
}

// NumParams is the number of scalars connector type name registers for cfg,
// without building it.
func NumParams(name string, cfg Config) (int, error) {
	if err := Validate(name, cfg); err != nil {
		return 0, err
	}
	return registry[name].kind.numParams(cfg), nil
}

// FLOPs counts one training step's matrix-product FLOPs of connector type
// name for a batch of images, without building it: 2·m·n·k per product
// forward (a convolution counts as its im2col product) and twice that
// backward (input and weight gradients). Pooling, normalisation, activations
// and softmax are left out: they are O(n·d) beside O(n·d²).
func FLOPs(name string, cfg Config, images int) (forward, backward int64, err error) {
	if err := Validate(name, cfg); err != nil {
		return 0, 0, err
	}
	f := registry[name].kind.flops(cfg, images)
	return f, 2 * f, nil
}

func (c Config) validateCommon() error {
	var errs []error
	positive := func(key string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", key, v))
		}
	}
	positive("model.connector.tokens", c.Tokens)
	positive("model.vision.width", c.InDim)
	positive("model.decoder.width", c.OutDim)
	if c.GridH <= 0 || c.GridW <= 0 {
		errs = append(errs, fmt.Errorf("connector input grid %d×%d (model.vision.resolution / model.vision.patch) must be positive",
			c.GridH, c.GridW))
	}
	return errors.Join(errs...)
}

// poolSide returns n = √N for the pooling connectors, or an error naming
// model.connector.tokens when N is not a perfect square or n×n does not fit
// in the grid.
func (c Config) poolSide(kind string) (int, error) {
	n := int(math.Round(math.Sqrt(float64(c.Tokens))))
	if n*n != c.Tokens {
		return 0, fmt.Errorf("model.connector.tokens %d is not a perfect square (%s pools the patch grid to n×n)",
			c.Tokens, kind)
	}
	if n > c.GridH || n > c.GridW {
		return 0, fmt.Errorf("model.connector.tokens %d needs a %d×%d pool, larger than the %d×%d patch grid",
			c.Tokens, n, n, c.GridH, c.GridW)
	}
	return n, nil
}

// side is √N for a validated pooling config.
func (c Config) side() int { return int(math.Round(math.Sqrt(float64(c.Tokens)))) }

// patches is h·w, the encoder tokens per image.
func (c Config) patches() int { return c.GridH * c.GridW }

// base holds what every connector shares: its config, its kind and the batch
// bookkeeping.
type base struct {
	name string
	cfg  Config
	kind kind
	maxB int // Build size
	b    int // images in the last Forward; -1 before the first
}

func (b *base) Kind() string   { return b.name }
func (b *base) Config() Config { return b.cfg }
func (b *base) NumTokens() int { return b.cfg.Tokens }
func (b *base) NumParams() int { return b.kind.numParams(b.cfg) }
func (b *base) FLOPs(images int) (forward, backward int64) {
	f := b.kind.flops(b.cfg, images)
	return f, 2 * f
}

func (b *base) build(maxImages int) {
	if maxImages <= 0 {
		panic(fmt.Sprintf("connector %s: Build: %d images per batch", b.name, maxImages))
	}
	b.maxB = maxImages
	b.b = -1
}

// forwardBatch checks a Forward call's lengths, records and returns its B.
// Wrong lengths are programming errors and panic, as in the engine.
func forwardBatch[T engine.Float](b *base, out, grid []T) int {
	c := b.cfg
	if b.maxB == 0 {
		panic("connector " + b.name + ": Forward before Build")
	}
	per := c.patches() * c.InDim
	B := len(grid) / per
	if B*per != len(grid) || B > b.maxB {
		panic(fmt.Sprintf("connector %s: Forward: grid has %d values, not a whole batch of at most %d grids [%d, %d, %d]",
			b.name, len(grid), b.maxB, c.GridH, c.GridW, c.InDim))
	}
	if len(out) != B*c.Tokens*c.OutDim {
		panic(fmt.Sprintf("connector %s: Forward: out has %d values, want %d×%d×%d",
			b.name, len(out), B, c.Tokens, c.OutDim))
	}
	b.b = B
	return B
}

// backwardBatch checks a Backward call's lengths against the last Forward
// and returns its B.
func backwardBatch[T engine.Float](b *base, dgrid, dout, grid []T) int {
	c, B := b.cfg, b.b
	if b.maxB == 0 || B < 0 {
		panic("connector " + b.name + ": Backward before Forward")
	}
	n := B * c.patches() * c.InDim
	if len(grid) != n || (dgrid != nil && len(dgrid) != n) || len(dout) != B*c.Tokens*c.OutDim {
		panic(fmt.Sprintf("connector %s: Backward: grid %d, dgrid %d, dout %d values; want %d, %d, %d for %d images",
			b.name, len(grid), len(dgrid), len(dout), n, n, B*c.Tokens*c.OutDim, B))
	}
	return B
}
