package vision

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

func tinyConfig(depth int) Config {
	return Config{Resolution: 8, Patch: 4, Width: 8, Depth: depth, Heads: 2}
}

func TestValidate(t *testing.T) {
	ok := Config{Resolution: 128, Patch: 16, Width: 256, Depth: 2, Heads: 4}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // substring of the error; "" for valid
	}{
		{"reference", func(c *Config) {}, ""},
		{"resolution not a multiple", func(c *Config) { c.Resolution = 100 },
			"model.vision.resolution 100 is not a multiple of model.vision.patch 16"},
		{"heads do not divide width", func(c *Config) { c.Heads = 3 },
			"model.vision.heads 3 does not divide model.vision.width 256"},
		{"zero patch", func(c *Config) { c.Patch = 0 }, "model.vision.patch must be positive, got 0"},
		{"negative resolution", func(c *Config) { c.Resolution = -8 }, "model.vision.resolution must be positive"},
		{"zero depth", func(c *Config) { c.Depth = 0 }, "model.vision.depth must be positive, got 0"},
		{"zero width", func(c *Config) { c.Width = 0 }, "model.vision.width must be positive"},
		{"zero heads", func(c *Config) { c.Heads = 0 }, "model.vision.heads must be positive"},
		{"negative mlp ratio", func(c *Config) { c.MLPRatio = -1 }, "model.vision.mlp_ratio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			_, err := New(engine.NewParams[float32](), c, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParamNamesAndCount(t *testing.T) {
	for _, c := range []Config{tinyConfig(1), tinyConfig(2), {Resolution: 128, Patch: 16, Width: 256, Depth: 2, Heads: 4}} {
		ps := engine.NewParams[float32]()
		if _, err := New(ps, c, nil); err != nil {
			t.Fatal(err)
		}
		if ps.Len() != c.NumParams() {
			t.Errorf("%+v: registered %d scalars, NumParams says %d", c, ps.Len(), c.NumParams())
		}
		d, f := c.Width, 4*c.Width
		want := map[string][]int{
			"vit.patch_embed.weight":        {d, 3 * c.Patch * c.Patch},
			"vit.patch_embed.bias":          {d},
			"vit.pos_embed":                 {c.NumPatches(), d},
			"vit.blocks.0.ln1.weight":       {d},
			"vit.blocks.0.attn.qkv.weight":  {3 * d, d},
			"vit.blocks.0.attn.qkv.bias":    {3 * d},
			"vit.blocks.0.attn.proj.weight": {d, d},
			"vit.blocks.0.ln2.bias":         {d},
			"vit.blocks.0.mlp.fc1.weight":   {f, d},
			"vit.blocks.0.mlp.fc2.weight":   {d, f},
			"vit.blocks.0.mlp.fc2.bias":     {d},
			"vit.norm.weight":               {d},
			"vit.norm.bias":                 {d},
		}
		for name, shape := range want {
			p, ok := ps.Lookup(name)
			if !ok {
				t.Errorf("%s not registered", name)
				continue
			}
			if !equalInts(p.Shape, shape) {
				t.Errorf("%s shape %v, want %v", name, p.Shape, shape)
			}
		}
		if got := len(ps.All()); got != 3+12*c.Depth+2 {
			t.Errorf("%d tensors, want %d", got, 3+12*c.Depth+2)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFLOPs(t *testing.T) {
	// R 8, P 4, D 8, depth 1, one image: Np = 4, patch rows of 48.
	c := tinyConfig(1)
	patch := 2 * 4 * 48 * 8
	qkv, attn, proj, mlp := 2*4*8*24, 2*2*4*4*8, 2*4*8*8, 2*(2*4*8*32)
	want := int64(patch + qkv + attn + proj + mlp)
	fwd, bwd := c.FLOPs(1)
	if fwd != want || bwd != 2*want {
		t.Errorf("FLOPs(1) = %d, %d; want %d, %d", fwd, bwd, want, 2*want)
	}
	if f3, _ := c.FLOPs(3); f3 != 3*want {
		t.Errorf("FLOPs(3) forward %d, want %d", f3, 3*want)
	}
	c.Freeze = true
	if _, bwd := c.FLOPs(2); bwd != 0 {
		t.Errorf("frozen backward FLOPs %d, want 0", bwd)
	}
}

// newTiny builds an initialised, perturbed float64 encoder for B images.
func newTiny(t *testing.T, c Config, rng *rand.Rand, maxImages int) (*ViT[float64], *engine.Params[float64]) {
	t.Helper()
	ps := engine.NewParams[float64]()
	v, err := New(ps, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Init(rng)
	enginetest.PerturbParams(rng, ps, 0.3)
	v.Build(engine.NewArena[float64](), maxImages)
	return v, ps
}

func TestGradCheck(t *testing.T) {
	for depth := 1; depth <= 2; depth++ {
		rng := rand.New(rand.NewPCG(3, uint64(depth)))
		c := tinyConfig(depth)
		const B = 2
		v, ps := newTiny(t, c, rng, B)
		images := enginetest.Randn(rng, B*3*8*8, 1)
		out := make([]float64, B*c.NumPatches()*c.Width)
		fwd := func() []float64 { v.Forward(out, images); return out }
		bwd := func(g []float64) {
			ps.ZeroGrad()
			v.Forward(out, images)
			v.Backward(g)
		}
		worst, where := enginetest.GradCheck(rng, fwd, bwd, enginetest.ParamInputs(ps))
		if !(worst < enginetest.GradBound) {
			t.Errorf("depth %d: worst relative gradient error %.3g in %s, want < %g", depth, worst, where, enginetest.GradBound)
		}
		t.Logf("depth %d: worst %.2g (%s)", depth, worst, where)
	}
}

func TestFrozenHasNoGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	c := tinyConfig(2)
	c.Freeze = true
	ps := engine.NewParams[float64]()
	v, err := New(ps, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Init(rng)
	frozen := engine.NewArena[float64]()
	v.Build(frozen, 2)
	for _, p := range ps.All() {
		if !p.Frozen {
			t.Errorf("%s not frozen", p.Name)
		}
	}
	images := enginetest.Randn(rng, 2*3*8*8, 1)
	out := make([]float64, 2*c.NumPatches()*c.Width)
	v.Forward(out, images)
	v.Backward(enginetest.Randn(rng, len(out), 1))
	for i, g := range ps.Grad() {
		if g != 0 {
			t.Fatalf("frozen encoder: gradient element %d is %g", i, g)
		}
	}

	c.Freeze = false
	trainable := engine.NewArena[float64]()
	tv, err := New(engine.NewParams[float64](), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	tv.Build(trainable, 2)
	if frozen.Len() >= trainable.Len() {
		t.Errorf("frozen encoder took %d activation scalars, trainable %d: want fewer (no gradient buffers)",
			frozen.Len(), trainable.Len())
	}
}

// TestBatchIndependence checks that a smaller batch than the Build size
// works and that images do not interact: each image of a batch encodes as it
// does alone, and the batch's parameter gradients are the sum of the
// single-image ones.
func TestBatchIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	c := tinyConfig(2)
	v, ps := newTiny(t, c, rng, 3)
	per, outPer := 3*8*8, c.NumPatches()*c.Width
	images := enginetest.Randn(rng, 2*per, 1)
	dout := enginetest.Randn(rng, 2*outPer, 1)

	out := make([]float64, 2*outPer)
	ps.ZeroGrad()
	v.Forward(out, images)
	v.Backward(dout)
	batchGrad := append([]float64(nil), ps.Grad()...)

	ps.ZeroGrad()
	for i := range 2 {
		one := make([]float64, outPer)
		v.Forward(one, images[i*per:(i+1)*per])
		v.Backward(dout[i*outPer : (i+1)*outPer])
		if d := enginetest.MaxDiff(one, out[i*outPer:(i+1)*outPer]); d > 1e-12 {
			t.Errorf("image %d: batched output differs from single by %g", i, d)
		}
	}
	if d := enginetest.MaxDiff(batchGrad, ps.Grad()); d > 1e-10 {
		t.Errorf("batched gradient differs from the sum of single-image gradients by %g", d)
	}
}

// TestFloat32MatchesFloat64 runs the training precision against the
// gradient-checked float64 path on the same weights and images.
func TestFloat32MatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	c := tinyConfig(2)
	v64, ps64 := newTiny(t, c, rng, 2)
	ps32 := engine.NewParams[float32]()
	v32, err := New(ps32, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range ps64.Data() {
		ps32.Data()[i] = float32(x)
	}
	v32.Build(engine.NewArena[float32](), 2)
	images := enginetest.Randn(rng, 2*3*8*8, 1)
	images32 := make([]float32, len(images))
	for i, x := range images {
		images32[i] = float32(x)
	}
	out64 := make([]float64, 2*c.NumPatches()*c.Width)
	out32 := make([]float32, len(out64))
	v64.Forward(out64, images)
	v32.Forward(out32, images32)
	worst := 0.0
	for i := range out64 {
		worst = max(worst, math.Abs(out64[i]-float64(out32[i])))
	}
	if worst > 1e-4 {
		t.Errorf("float32 output differs from float64 by %g", worst)
	}
}

func TestPosEmbedGrid(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		want  int
		err   bool
	}{
		{[]int{64, 8}, 8, false},
		{[]int{1, 8}, 1, false},
		{[]int{63, 8}, 0, true},
		{[]int{64, 16}, 0, true},
		{[]int{64}, 0, true},
		{[]int{0, 8}, 0, true},
	} {
		g, err := PosEmbedGrid(tc.shape, 8)
		if (err != nil) != tc.err || g != tc.want {
			t.Errorf("PosEmbedGrid(%v) = %d, %v; want %d, error %v", tc.shape, g, err, tc.want, tc.err)
		}
	}
}

// TestWrongLengthsPanic: shape errors are programming errors and panic with
// the sizes named, before anything is computed.
func TestWrongLengthsPanic(t *testing.T) {
	c := tinyConfig(1)
	v, err := New(engine.NewParams[float64](), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, out := make([]float64, 2*3*8*8), make([]float64, 2*4*8)
	enginetest.MustPanic(t, "unbuilt", "before Build", func() { v.Forward(out, img) })
	v.Build(engine.NewArena[float64](), 2)
	enginetest.MustPanic(t, "backward first", "before Forward", func() { v.Backward(out) })
	enginetest.MustPanic(t, "ragged images", "not a whole batch", func() { v.Forward(out, img[1:]) })
	enginetest.MustPanic(t, "batch over Build", "at most 2", func() { v.Forward(make([]float64, 3*4*8), make([]float64, 3*3*8*8)) })
	enginetest.MustPanic(t, "short out", "out has 63 values", func() { v.Forward(out[1:], img) })
	v.Forward(out, img)
	enginetest.MustPanic(t, "short dout", "dout has 63 values", func() { v.Backward(out[1:]) })
}

// TestEmptyBatch: a batch without images is valid and changes nothing.
func TestEmptyBatch(t *testing.T) {
	v, ps := newTiny(t, tinyConfig(1), rand.New(rand.NewPCG(9, 9)), 2)
	ps.ZeroGrad()
	v.Forward([]float64{}, []float64{})
	v.Backward([]float64{})
	for i, g := range ps.Grad() {
		if g != 0 {
			t.Fatalf("empty batch left gradient %g at %d", g, i)
		}
	}
}
