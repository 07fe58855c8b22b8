package ifprune

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

func TestSoftTopKSumsToK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		F, k  int
		temp  float64
		scale float64
	}{
		{"uniform-ish", 16, 4, 0.5, 0.01},
		{"spread", 64, 10, 0.1, 3},
		{"cold", 32, 8, 1e-3, 1},
		{"k=F-1", 8, 7, 1, 1},
		{"k=1", 8, 1, 0.05, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := enginetest.Randn(rng, tc.F, tc.scale)
			m := make([]float64, tc.F)
			SoftTopK(m, s, tc.k, tc.temp)
			var sum float64
			for _, v := range m {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("mask value %v outside [0, 1]", v)
				}
				sum += v
			}
			if math.Abs(sum-float64(tc.k)) > 1e-9 {
				t.Errorf("mask sums to %.12f, want %d", sum, tc.k)
			}
		})
	}
}

// TestSoftTopKTendsToHard: at a low temperature the soft mask is the hard
// top-k indicator.
func TestSoftTopKTendsToHard(t *testing.T) {
	s := []float64{0.3, -1, 2, 0.9, 0.1, 1.5}
	soft, hard := make([]float64, 6), make([]float64, 6)
	SoftTopK(soft, s, 3, 1e-3)
	HardMask(hard, s, 3, nil)
	if d := enginetest.MaxDiff(soft, hard); d > 1e-6 {
		t.Errorf("soft %v vs hard %v: max diff %g", soft, hard, d)
	}
	if want := []int{2, 3, 5}; !slices.Equal(HardTopK(nil, s, 3), want) {
		t.Errorf("HardTopK = %v, want %v", HardTopK(nil, s, 3), want)
	}
	// Ties go to the lower index.
	if got := HardTopK(nil, []float32{1, 1, 1, 0}, 2); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("HardTopK with ties = %v, want [0 1]", got)
	}
}

func TestSoftTopKFullWidthIsOnes(t *testing.T) {
	s := []float32{0.3, -1, 2}
	m := make([]float32, 3)
	SoftTopK(m, s, 3, 0.1)
	if !slices.Equal(m, []float32{1, 1, 1}) {
		t.Fatalf("k = F mask %v, want all ones", m)
	}
	ds := make([]float32, 3)
	SoftTopKBackward(ds, []float32{1, 2, 3}, m, 0.1)
	if !slices.Equal(ds, []float32{0, 0, 0}) {
		t.Errorf("k = F score gradient %v, want zeros", ds)
	}
}

func TestGradCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input)
	}{
		{"SoftTopK/warm", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return softTopKCase(rng, 12, 5, 0.7)
		}},
		{"SoftTopK/cool", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return softTopKCase(rng, 12, 3, 0.2)
		}},
		{"MaskedSwiGLU", maskedCase},
		{"Predictor/instruction", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return predictorCase(rng, ModeInstruction)
		}},
		{"Predictor/static", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return predictorCase(rng, ModeStatic)
		}},
		{"Predictor+SoftTopK", chainCase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(len(tc.name))))
			fwd, bwd, inputs := tc.build(rng)
			worst, where := enginetest.GradCheck(rng, fwd, bwd, inputs)
			if !(worst < enginetest.GradBound) {
				t.Errorf("worst relative gradient error %.3g in %s, want < %g", worst, where, enginetest.GradBound)
			}
			t.Logf("worst %.2g (%s)", worst, where)
		})
	}
}

// TestGradCheckCatchesWrongSoftTopK is the negative control: dropping the
// implicit-differentiation correction (treating τ as a constant) must fail.
func TestGradCheckCatchesWrongSoftTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	s := enginetest.Randn(rng, 10, 1)
	ds, m := make([]float64, 10), make([]float64, 10)
	fwd := func() []float64 { SoftTopK(m, s, 4, 0.5); return m }
	bwd := func(g []float64) {
		for i, v := range m {
			ds[i] += v * (1 - v) / 0.5 * g[i]
		}
	}
	worst, _ := enginetest.GradCheck(rng, fwd, bwd, []enginetest.Input{{Name: "scores", X: s, DX: ds}})
	if worst < 100*enginetest.GradBound {
		t.Fatalf("checker passed a gradient without the τ term: worst %.3g", worst)
	}
}

func softTopKCase(rng *rand.Rand, F, k int, temp float64) (func() []float64, func([]float64), []enginetest.Input) {
	s := enginetest.Randn(rng, F, 1)
	ds, m := make([]float64, F), make([]float64, F)
	fwd := func() []float64 { SoftTopK(m, s, k, temp); return m }
	bwd := func(g []float64) { SoftTopKBackward(ds, g, m, temp) }
	return fwd, bwd, []enginetest.Input{{Name: "scores", X: s, DX: ds}}
}

func maskedCase(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
	const D, F, n, G = 5, 7, 6, 2
	ps := engine.NewParams[float64]()
	m := MaskedSwiGLU[float64]{engine.NewSwiGLU(ps, "mlp", D, F)}
	enginetest.PerturbParams(rng, ps, 0.5)
	a := engine.NewArena[float64]()
	acts := m.NewActs(a, n, NewMaskedScratch(a, n, F))
	x, dx := enginetest.Randn(rng, n*D, 1), make([]float64, n*D)
	masks, dmasks := enginetest.Randn(rng, G*F, 1), make([]float64, G*F)
	group := []int32{0, 0, 1, 1, 0, 1}
	out := make([]float64, n*D)
	fwd := func() []float64 { m.Forward(out, x, masks, group, acts); return out }
	bwd := func(g []float64) { m.Backward(dx, dmasks, g, x, masks, group, acts) }
	inputs := append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx}, enginetest.Input{Name: "masks", X: masks, DX: dmasks})
	return fwd, bwd, inputs
}

func newTestPredictor(rng *rand.Rand, mode string) (*engine.Params[float64], *Predictor[float64]) {
	ps := engine.NewParams[float64]()
	p, err := NewPredictor(ps, PredictorConfig{Mode: mode, Vocab: 9, Layers: 2, Hidden: 5, Width: 4, MLP: 6})
	if err != nil {
		panic(err)
	}
	p.Init(rng)
	enginetest.PerturbParams(rng, ps, 0.5)
	p.Build(16, 4)
	return ps, p
}

// predictorCase: three groups, one with an empty instruction, one token
// repeated (its embedding row gets two contributions).
var (
	predIDs    = []int32{3, 1, 4, 1, 5, 8, 0}
	predStarts = []int{0, 3, 3, 7}
)

func predictorCase(rng *rand.Rand, mode string) (func() []float64, func([]float64), []enginetest.Input) {
	ps, p := newTestPredictor(rng, mode)
	G := len(predStarts) - 1
	scores := make([]float64, G*2*5)
	fwd := func() []float64 { p.Forward(scores, predIDs, predStarts); return scores }
	bwd := func(g []float64) { p.Backward(g) }
	return fwd, bwd, enginetest.ParamInputs(ps)
}

// chainCase checks predictor → per-(group, layer) SoftTopK end to end, as
// the decoder composes them.
func chainCase(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
	ps, p := newTestPredictor(rng, ModeInstruction)
	G, LF, F := len(predStarts)-1, 10, 5
	scores, dscores, masks := make([]float64, G*LF), make([]float64, G*LF), make([]float64, G*LF)
	fwd := func() []float64 {
		p.Forward(scores, predIDs, predStarts)
		for r := 0; r < G*LF; r += F {
			SoftTopK(masks[r:r+F], scores[r:r+F], 2, 0.3)
		}
		return masks
	}
	bwd := func(g []float64) {
		clear(dscores)
		for r := 0; r < G*LF; r += F {
			SoftTopKBackward(dscores[r:r+F], g[r:r+F], masks[r:r+F], 0.3)
		}
		p.Backward(dscores)
	}
	return fwd, bwd, enginetest.ParamInputs(ps)
}

// TestMaskedOnesEqualsDense: with every mask entry 1 the masked FFN is the
// dense SwiGLU (same output, same weight and input gradients).
func TestMaskedOnesEqualsDense(t *testing.T) {
	const D, F, n = 6, 10, 5
	rng := rand.New(rand.NewPCG(4, 4))
	ps := engine.NewParams[float64]()
	dense := engine.NewSwiGLU(ps, "mlp", D, F)
	enginetest.PerturbParams(rng, ps, 0.5)
	a := engine.NewArena[float64]()
	x, dout := enginetest.Randn(rng, n*D, 1), enginetest.Randn(rng, n*D, 1)
	out1, dx1 := make([]float64, n*D), make([]float64, n*D)
	s := dense.NewActs(a, n)
	dense.Forward(out1, x, s)
	dense.Backward(dx1, dout, x, s)
	g1 := slices.Clone(ps.Grad())
	ps.ZeroGrad()

	m := MaskedSwiGLU[float64]{dense}
	ma := m.NewActs(a, n, NewMaskedScratch(a, n, F))
	ones, dm := make([]float64, F), make([]float64, F)
	for i := range ones {
		ones[i] = 1
	}
	group := make([]int32, n)
	out2, dx2 := make([]float64, n*D), make([]float64, n*D)
	m.Forward(out2, x, ones, group, ma)
	m.Backward(dx2, dm, dout, x, ones, group, ma)
	for _, c := range []struct {
		name      string
		got, want []float64
	}{{"out", out2, out1}, {"dx", dx2, dx1}, {"weight grads", ps.Grad(), g1}} {
		if d := enginetest.MaxDiff(c.got, c.want); d > 1e-12 {
			t.Errorf("%s: max diff %g", c.name, d)
		}
	}
}

// TestGatheredEqualsHardMasked: the gathered dense FFN of the top-k
// channels computes what the masked training FFN computes with the hard
// 0/1 mask of those channels.
func TestGatheredEqualsHardMasked(t *testing.T) {
	for _, k := range []int{1, 4, 12, 16} {
		const D, F, n = 8, 16, 7
		rng := rand.New(rand.NewPCG(5, uint64(k)))
		ps := engine.NewParams[float32]()
		m := MaskedSwiGLU[float32]{engine.NewSwiGLU(ps, "mlp", D, F)}
		for _, p := range ps.All() {
			p.Normal(rng, 0.3)
		}
		a := engine.NewArena[float32]()
		x := make([]float32, n*D)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		scores := make([]float32, F)
		for i := range scores {
			scores[i] = float32(rng.NormFloat64())
		}
		mask := make([]float32, F)
		HardMask(mask, scores, k, nil)
		want := make([]float32, n*D)
		m.Forward(want, x, mask, make([]int32, n), m.NewActs(a, n, nil))

		g := NewGathered[float32](D, F)
		g.Gather(m.SwiGLU, HardTopK(nil, scores, k))
		got := make([]float32, n*D)
		g.Forward(nil, got, x, make([]float32, n*F), make([]float32, n*F))
		var worst float64
		for i := range got {
			worst = max(worst, math.Abs(float64(got[i]-want[i]))/(1+math.Abs(float64(want[i]))))
		}
		if worst > 1e-5 {
			t.Errorf("k = %d: gathered vs masked max relative diff %g", k, worst)
		}
	}
}
