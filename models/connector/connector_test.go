package connector

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

func TestKinds(t *testing.T) {
	want := []string{AttnPool, AvgPool, CAbstractor, MLP}
	if got := Kinds(); !slices.Equal(got, want) {
		t.Errorf("Kinds() = %v, want %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Tokens: 64, Depth: 1, GridH: 8, GridW: 8, InDim: 256, OutDim: 256, Heads: 4}
	for _, tc := range []struct {
		kind string
		edit func(c *Config)
		want string // substring of the error; "" for valid
	}{
		{AvgPool, func(c *Config) {}, ""},
		{AttnPool, func(c *Config) {}, ""},
		{CAbstractor, func(c *Config) {}, ""},
		{MLP, func(c *Config) {}, ""},
		{AvgPool, func(c *Config) { c.Tokens = 1 }, ""},
		{AttnPool, func(c *Config) { c.Tokens = 7 }, ""},
		{"resampler", func(c *Config) {}, `model.connector.type "resampler" is not a connector (want one of attnpool, avgpool, cabstractor, mlp)`},
		{AvgPool, func(c *Config) { c.Tokens = 50 }, "model.connector.tokens 50 is not a perfect square"},
		{CAbstractor, func(c *Config) { c.Tokens = 50 }, "model.connector.tokens 50 is not a perfect square"},
		{AvgPool, func(c *Config) { c.Tokens = 81 }, "model.connector.tokens 81 needs a 9×9 pool, larger than the 8×8 patch grid"},
		{CAbstractor, func(c *Config) { c.Tokens = 16; c.GridW = 3 }, "model.connector.tokens 16 needs a 4×4 pool, larger than the 8×3 patch grid"},
		{AttnPool, func(c *Config) { c.Tokens = 65 }, "model.connector.tokens 65 is more than the 8×8 = 64 patches"},
		{MLP, func(c *Config) { c.Tokens = 16 }, "model.connector.tokens 16 must equal the patch count 8×8 = 64 for mlp"},
		{CAbstractor, func(c *Config) { c.Depth = 0 }, "model.connector.depth must be positive for cabstractor, got 0"},
		{AttnPool, func(c *Config) { c.Heads = 3 }, "model.vision.heads 3 must be positive and divide model.vision.width 256"},
		{AvgPool, func(c *Config) { c.Tokens = 0 }, "model.connector.tokens must be positive, got 0"},
		{MLP, func(c *Config) { c.OutDim = 0 }, "model.decoder.width must be positive, got 0"},
		{MLP, func(c *Config) { c.InDim = -1 }, "model.vision.width must be positive, got -1"},
		{AvgPool, func(c *Config) { c.GridH = 0 }, "connector input grid 0×8"},
	} {
		c := ok
		tc.edit(&c)
		_, err := New(tc.kind, engine.NewParams[float32](), c, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %+v: %v", tc.kind, c, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %+v: error %v, want one containing %q", tc.kind, c, err, tc.want)
		}
		if verr := Validate(tc.kind, c); (verr == nil) != (err == nil) {
			t.Errorf("%s %+v: Validate says %v, New says %v", tc.kind, c, verr, err)
		}
	}
}

// shapeCases is a table of (connector, grid, N) the shape, count and
// gradient tests run over; dims are tiny so the float64 checks stay fast.
// cabstractor gets at least 3 channels: a LayerNorm over 2 values outputs ±1
// whatever its input, so its input gradient all but vanishes and the
// relative error of the check measures only rounding.
var shapeCases = []struct {
	kind string
	cfg  Config
}{
	{AvgPool, Config{Tokens: 4, GridH: 4, GridW: 4, InDim: 3, OutDim: 5}},
	{AvgPool, Config{Tokens: 4, GridH: 5, GridW: 3, InDim: 3, OutDim: 5}}, // overlapping cells
	{AvgPool, Config{Tokens: 1, GridH: 3, GridW: 3, InDim: 2, OutDim: 3}},
	{AttnPool, Config{Tokens: 3, GridH: 3, GridW: 3, InDim: 4, OutDim: 5, Heads: 2}},
	{AttnPool, Config{Tokens: 6, GridH: 2, GridW: 3, InDim: 4, OutDim: 3, Heads: 1}},
	{CAbstractor, Config{Tokens: 4, Depth: 1, GridH: 4, GridW: 4, InDim: 3, OutDim: 5}},
	{CAbstractor, Config{Tokens: 4, Depth: 2, GridH: 3, GridW: 3, InDim: 4, OutDim: 3}},
	{CAbstractor, Config{Tokens: 1, Depth: 1, GridH: 2, GridW: 3, InDim: 3, OutDim: 2}},
	{MLP, Config{Tokens: 6, GridH: 2, GridW: 3, InDim: 3, OutDim: 4}},
}

// build returns an initialised, perturbed float64 connector for maxImages.
func build(t *testing.T, kind string, cfg Config, rng *rand.Rand, maxImages int) (Connector[float64], *engine.Params[float64]) {
	t.Helper()
	ps := engine.NewParams[float64]()
	c, err := New(kind, ps, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Init(rng)
	enginetest.PerturbParams(rng, ps, 0.3)
	c.Build(engine.NewArena[float64](), maxImages)
	return c, ps
}

func TestShapesAndCounts(t *testing.T) {
	for _, tc := range shapeCases {
		rng := rand.New(rand.NewPCG(1, 1))
		const B = 3
		c, ps := build(t, tc.kind, tc.cfg, rng, B)
		cfg := tc.cfg
		if c.Kind() != tc.kind || c.NumTokens() != cfg.Tokens || c.Config() != cfg {
			t.Errorf("%s: Kind %q, NumTokens %d, Config %+v", tc.kind, c.Kind(), c.NumTokens(), c.Config())
		}
		if n, err := NumParams(tc.kind, cfg); err != nil || n != ps.Len() || c.NumParams() != ps.Len() {
			t.Errorf("%s %+v: registered %d scalars; NumParams %d (%v), method %d", tc.kind, cfg, ps.Len(), n, err, c.NumParams())
		}
		for _, p := range ps.All() {
			if !strings.HasPrefix(p.Name, Prefix+".") {
				t.Errorf("%s: tensor %s lacks the %s. prefix", tc.kind, p.Name, Prefix)
			}
		}
		f, b, err := FLOPs(tc.kind, cfg, B)
		mf, mb := c.FLOPs(B)
		if err != nil || f <= 0 || b != 2*f || mf != f || mb != b {
			t.Errorf("%s: FLOPs %d, %d (%v); method %d, %d", tc.kind, f, b, err, mf, mb)
		}
		grid := enginetest.Randn(rng, B*cfg.GridH*cfg.GridW*cfg.InDim, 1)
		out := make([]float64, B*cfg.Tokens*cfg.OutDim)
		c.Forward(out, grid)
		if err := engine.CheckFinite(tc.kind+" out", out); err != nil {
			t.Error(err)
		}
	}
}

func TestGradCheck(t *testing.T) {
	for i, tc := range shapeCases {
		rng := rand.New(rand.NewPCG(2, uint64(i)))
		const B = 2
		c, ps := build(t, tc.kind, tc.cfg, rng, B)
		cfg := tc.cfg
		grid := enginetest.Randn(rng, B*cfg.GridH*cfg.GridW*cfg.InDim, 1)
		dgrid := make([]float64, len(grid))
		out := make([]float64, B*cfg.Tokens*cfg.OutDim)
		fwd := func() []float64 { c.Forward(out, grid); return out }
		bwd := func(g []float64) {
			ps.ZeroGrad()
			c.Forward(out, grid)
			c.Backward(dgrid, g, grid)
		}
		inputs := append(enginetest.ParamInputs(ps), enginetest.Input{Name: "grid", X: grid, DX: dgrid})
		worst, where := enginetest.GradCheck(rng, fwd, bwd, inputs)
		if !(worst < enginetest.GradBound) {
			t.Errorf("%s %+v: worst relative gradient error %.3g in %s, want < %g", tc.kind, cfg, worst, where, enginetest.GradBound)
		}
		t.Logf("%s %dx%d→%d: worst %.2g (%s)", tc.kind, cfg.GridH, cfg.GridW, cfg.Tokens, worst, where)
	}
}

// TestNilGridGradient: without dgrid (a frozen encoder) the parameter
// gradients are the same as with it.
func TestNilGridGradient(t *testing.T) {
	for _, tc := range shapeCases {
		rng := rand.New(rand.NewPCG(3, 3))
		c, ps := build(t, tc.kind, tc.cfg, rng, 2)
		cfg := tc.cfg
		grid := enginetest.Randn(rng, 2*cfg.GridH*cfg.GridW*cfg.InDim, 1)
		out := make([]float64, 2*cfg.Tokens*cfg.OutDim)
		dout := enginetest.Randn(rng, len(out), 1)
		c.Forward(out, grid)
		ps.ZeroGrad()
		c.Backward(make([]float64, len(grid)), dout, grid)
		with := slices.Clone(ps.Grad())
		ps.ZeroGrad()
		c.Backward(nil, dout, grid)
		if d := enginetest.MaxDiff(with, ps.Grad()); d > 1e-12 {
			t.Errorf("%s: parameter gradients differ by %g without dgrid", tc.kind, d)
		}
	}
}

// TestBatchIndependence: a batch smaller than the Build size works, images
// do not interact, and batch gradients are sums of per-image ones.
func TestBatchIndependence(t *testing.T) {
	for _, tc := range shapeCases {
		rng := rand.New(rand.NewPCG(4, 4))
		c, ps := build(t, tc.kind, tc.cfg, rng, 3)
		cfg := tc.cfg
		per, outPer := cfg.GridH*cfg.GridW*cfg.InDim, cfg.Tokens*cfg.OutDim
		grid := enginetest.Randn(rng, 2*per, 1)
		dout := enginetest.Randn(rng, 2*outPer, 1)
		out := make([]float64, 2*outPer)
		dgrid := make([]float64, 2*per)
		ps.ZeroGrad()
		c.Forward(out, grid)
		c.Backward(dgrid, dout, grid)
		batchGrad := slices.Clone(ps.Grad())

		ps.ZeroGrad()
		for i := range 2 {
			one, done := make([]float64, outPer), make([]float64, per)
			g := grid[i*per : (i+1)*per]
			c.Forward(one, g)
			c.Backward(done, dout[i*outPer:(i+1)*outPer], g)
			if d := enginetest.MaxDiff(one, out[i*outPer:(i+1)*outPer]); d > 1e-12 {
				t.Errorf("%s image %d: output differs from the batched one by %g", tc.kind, i, d)
			}
			if d := enginetest.MaxDiff(done, dgrid[i*per:(i+1)*per]); d > 1e-12 {
				t.Errorf("%s image %d: dgrid differs from the batched one by %g", tc.kind, i, d)
			}
		}
		if d := enginetest.MaxDiff(batchGrad, ps.Grad()); d > 1e-10 {
			t.Errorf("%s: batch gradient differs from the per-image sum by %g", tc.kind, d)
		}
	}
}

// TestAvgPoolByHand: one channel, identity projection, a 3×3 grid pooled to
// 2×2 has overlapping cells rows/cols [0,2) and [1,3).
func TestAvgPoolByHand(t *testing.T) {
	ps := engine.NewParams[float64]()
	c, err := New(AvgPool, ps, Config{Tokens: 4, GridH: 3, GridW: 3, InDim: 1, OutDim: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := ps.Lookup("connector.proj.weight")
	w.Fill(1)
	b, _ := ps.Lookup("connector.proj.bias")
	b.Fill(0.5)
	c.Build(engine.NewArena[float64](), 1)
	grid := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	out := make([]float64, 4)
	c.Forward(out, grid)
	want := []float64{(1+2+4+5)/4.0 + 0.5, (2+3+5+6)/4.0 + 0.5, (4+5+7+8)/4.0 + 0.5, (5+6+8+9)/4.0 + 0.5}
	if d := enginetest.MaxDiff(out, want); d > 1e-12 {
		t.Errorf("got %v, want %v", out, want)
	}
}

func TestFLOPsByHand(t *testing.T) {
	cfg := Config{Tokens: 4, Depth: 1, GridH: 4, GridW: 4, InDim: 8, OutDim: 16, Heads: 2}
	for _, tc := range []struct {
		kind string
		want int64
	}{
		{AvgPool, 2 * 4 * 8 * 16},
		{MLP, 2*16*8*16 + 2*16*16*16},
		{AttnPool, 2*4*8*8 + 2*2*16*8*8 + 2*2*4*16*8 + 2*4*8*8 + 2*4*8*16},
		{CAbstractor, 2*(2*16*72*8) + 2*(2*4*72*8) + 2*4*8*16},
	} {
		c := cfg
		if tc.kind == MLP {
			c.Tokens = 16
		}
		f, b, err := FLOPs(tc.kind, c, 1)
		if err != nil || f != tc.want || b != 2*tc.want {
			t.Errorf("%s: FLOPs %d, %d (%v); want %d, %d", tc.kind, f, b, err, tc.want, 2*tc.want)
		}
	}
}

func TestTensorNames(t *testing.T) {
	cfg := Config{Tokens: 4, Depth: 2, GridH: 4, GridW: 4, InDim: 8, OutDim: 6, Heads: 2}
	for _, tc := range []struct {
		kind   string
		shapes map[string][]int
	}{
		{AvgPool, map[string][]int{"connector.proj.weight": {6, 8}, "connector.proj.bias": {6}}},
		{AttnPool, map[string][]int{
			"connector.queries": {4, 8}, "connector.norm.weight": {8}, "connector.norm.bias": {8},
			"connector.attn.wq.weight": {8, 8}, "connector.attn.wq.bias": {8},
			"connector.attn.wk.weight": {8, 8}, "connector.attn.wk.bias": {8},
			"connector.attn.wv.weight": {8, 8}, "connector.attn.wv.bias": {8},
			"connector.attn.wo.weight": {8, 8}, "connector.attn.wo.bias": {8},
			"connector.proj.weight": {6, 8}, "connector.proj.bias": {6},
		}},
		{CAbstractor, map[string][]int{
			"connector.blocks.0.norm1.weight": {8}, "connector.blocks.0.conv1.weight": {8, 8, 3, 3},
			"connector.blocks.3.norm2.bias": {8}, "connector.blocks.3.conv2.weight": {8, 8, 3, 3},
			"connector.blocks.3.conv2.bias": {8}, "connector.proj.weight": {6, 8}, "connector.proj.bias": {6},
		}},
		{MLP, map[string][]int{
			"connector.fc1.weight": {6, 8}, "connector.fc1.bias": {6},
			"connector.fc2.weight": {6, 6}, "connector.fc2.bias": {6},
		}},
	} {
		c := cfg
		if tc.kind == MLP {
			c.Tokens = 16
		}
		ps := engine.NewParams[float32]()
		if _, err := New(tc.kind, ps, c, nil); err != nil {
			t.Fatal(err)
		}
		for name, shape := range tc.shapes {
			p, ok := ps.Lookup(name)
			if !ok || !slices.Equal(p.Shape, shape) {
				t.Errorf("%s: %s registered %v, want shape %v", tc.kind, name, ok, shape)
			}
		}
		if tc.kind != CAbstractor && len(ps.All()) != len(tc.shapes) {
			t.Errorf("%s: %d tensors, want %d", tc.kind, len(ps.All()), len(tc.shapes))
		}
		if tc.kind == CAbstractor && len(ps.All()) != 4*8+2 {
			t.Errorf("cabstractor depth 2: %d tensors, want %d", len(ps.All()), 4*8+2)
		}
	}
}

// TestWrongLengthsPanic: shape errors are programming errors and panic with
// the sizes named, before anything is computed.
func TestWrongLengthsPanic(t *testing.T) {
	cfg := Config{Tokens: 4, Depth: 1, GridH: 4, GridW: 4, InDim: 3, OutDim: 5, Heads: 1}
	for _, kind := range []string{AvgPool, AttnPool, CAbstractor} {
		c, err := New(kind, engine.NewParams[float64](), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		grid := make([]float64, 2*16*3)
		enginetest.MustPanic(t, kind+" unbuilt", "before Build", func() { c.Forward(make([]float64, 2*4*5), grid) })
		c.Build(engine.NewArena[float64](), 2)
		enginetest.MustPanic(t, kind+" backward first", "before Forward", func() { c.Backward(nil, make([]float64, 2*4*5), grid) })
		enginetest.MustPanic(t, kind+" short out", "out has 39 values", func() { c.Forward(make([]float64, 39), grid) })
		enginetest.MustPanic(t, kind+" ragged grid", "not a whole batch", func() { c.Forward(make([]float64, 40), grid[1:]) })
		enginetest.MustPanic(t, kind+" batch over Build", "at most 2", func() { c.Forward(make([]float64, 60), make([]float64, 3*16*3)) })
		c.Forward(make([]float64, 2*4*5), grid)
		enginetest.MustPanic(t, kind+" dgrid", "Backward", func() { c.Backward(make([]float64, 3), make([]float64, 40), grid) })
	}
}

// TestEmptyBatch: a batch without images is valid and changes nothing.
func TestEmptyBatch(t *testing.T) {
	for _, tc := range shapeCases {
		c, ps := build(t, tc.kind, tc.cfg, rand.New(rand.NewPCG(5, 5)), 2)
		ps.ZeroGrad()
		c.Forward([]float64{}, []float64{})
		c.Backward([]float64{}, []float64{}, []float64{})
		for i, g := range ps.Grad() {
			if g != 0 {
				t.Fatalf("%s: empty batch left gradient %g at %d", tc.kind, g, i)
			}
		}
	}
}
