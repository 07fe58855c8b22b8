package engine_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

// layerCase builds one layer with its inputs; fwd/bwd as in
// enginetest.GradCheck.
type layerCase struct {
	name  string
	build func(rng *rand.Rand) (fwd func() []float64, bwd func(g []float64), inputs []enginetest.Input)
}

func TestGradCheck(t *testing.T) {
	for _, tc := range gradCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			fwd, bwd, inputs := tc.build(rng)
			worst, where := enginetest.GradCheck(rng, fwd, bwd, inputs)
			if !(worst < enginetest.GradBound) {
				t.Errorf("worst relative gradient error %.3g in %s, want < %g", worst, where, enginetest.GradBound)
			}
			t.Logf("worst %.2g (%s)", worst, where)
		})
	}
}

// TestGradCheckCatchesWrongGradient is the negative control: RMSNorm with a
// deliberately wrong backward (the x̂·mean(g⊙x̂) term doubled, the kind of
// factor-2 slip a norm derivative invites) must fail the checker clearly.
func TestGradCheckCatchesWrongGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ps := engine.NewParams[float64]()
	l := engine.NewRMSNorm(ps, "norm", 6, 1e-5)
	enginetest.PerturbParams(rng, ps, 0.5)
	n := 4
	x, dx := enginetest.Randn(rng, n*6, 1), make([]float64, n*6)
	out, rstd := make([]float64, n*6), make([]float64, n)
	fwd := func() []float64 { l.Forward(out, rstd, x); return out }
	bwd := func(g []float64) {
		l.Backward(dx, g, x, rstd)
		// Wrong on purpose: subtract the projection term a second time.
		w := l.W.Data()
		for i := range n {
			var dot float64
			for j := range 6 {
				dot += g[i*6+j] * w[j] * x[i*6+j] * rstd[i]
			}
			for j := range 6 {
				dx[i*6+j] -= rstd[i] * x[i*6+j] * rstd[i] * dot / 6
			}
		}
	}
	worst, where := enginetest.GradCheck(rng, fwd, bwd, []enginetest.Input{{Name: "x", X: x, DX: dx}, {Name: "w", X: l.W.Data(), DX: l.W.Grad()}})
	if worst < 0.1 {
		t.Fatalf("checker passed a wrong gradient: worst %.3g in %s", worst, where)
	}
	t.Logf("wrong gradient caught: worst %.2g in %s", worst, where)
}

func gradCases() []layerCase {
	cases := []layerCase{
		{"Linear/bias", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return linearCase(rng, true)
		}},
		{"Linear/nobias", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return linearCase(rng, false)
		}},
		{"Embedding", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			ps := engine.NewParams[float64]()
			e := engine.NewEmbedding(ps, "emb", 7, 5)
			enginetest.PerturbParams(rng, ps, 0.5)
			ids := []int32{3, 0, 6, 3, 2}
			out := make([]float64, len(ids)*5)
			return func() []float64 { e.Forward(out, ids); return out },
				func(g []float64) { ps.ZeroGrad(); e.Backward(g, ids) },
				enginetest.ParamInputs(ps)
		}},
		{"RMSNorm", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			ps := engine.NewParams[float64]()
			l := engine.NewRMSNorm(ps, "norm", 8, 1e-5)
			enginetest.PerturbParams(rng, ps, 0.5)
			n := 5
			x, dx := enginetest.Randn(rng, n*8, 1), make([]float64, n*8)
			out, rstd := make([]float64, n*8), make([]float64, n)
			return func() []float64 { l.Forward(out, rstd, x); return out },
				func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x, rstd) },
				append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
		}},
		{"LayerNorm", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			ps := engine.NewParams[float64]()
			l := engine.NewLayerNorm(ps, "ln", 8, 1e-5)
			enginetest.PerturbParams(rng, ps, 0.5)
			n := 5
			x, dx := enginetest.Randn(rng, n*8, 1), make([]float64, n*8)
			out, mean, rstd := make([]float64, n*8), make([]float64, n), make([]float64, n)
			return func() []float64 { l.Forward(out, mean, rstd, x); return out },
				func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x, mean, rstd) },
				append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
		}},
		{"LayerNorm2d", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			// The C-Abstractor's normalisation: channels at each position of
			// an NHWC grid [B=2, H=3, W=2, C=4].
			ps := engine.NewParams[float64]()
			l := engine.NewLayerNorm2d(ps, "ln2d", 4, 1e-5)
			enginetest.PerturbParams(rng, ps, 0.5)
			pos := 2 * 3 * 2
			x, dx := enginetest.Randn(rng, pos*4, 1), make([]float64, pos*4)
			out, mean, rstd := make([]float64, pos*4), make([]float64, pos), make([]float64, pos)
			return func() []float64 { l.Forward(out, mean, rstd, x); return out },
				func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x, mean, rstd) },
				append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
		}},
		{"RoPE", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			r := engine.NewRoPE[float64](6, 10000, 32)
			pos := []int32{0, 5, 1, 31}
			heads := 3
			x, dx := enginetest.Randn(rng, len(pos)*heads*6, 1), make([]float64, len(pos)*heads*6)
			out := make([]float64, len(x))
			return func() []float64 { r.Forward(out, x, pos, heads); return out },
				func(g []float64) { r.Backward(dx, g, pos, heads) },
				[]enginetest.Input{{Name: "x", X: x, DX: dx}}
		}},
		{"SiLU", elementwiseCase(engine.SiLUForward[float64], engine.SiLUBackward[float64])},
		{"GELU", elementwiseCase(engine.GELUForward[float64], engine.GELUBackward[float64])},
		{"SwiGLUFn", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			a, b := enginetest.Randn(rng, 12, 2), enginetest.Randn(rng, 12, 1)
			da, db, out := make([]float64, 12), make([]float64, 12), make([]float64, 12)
			return func() []float64 { engine.SwiGLUForward(out, a, b); return out },
				func(g []float64) { engine.SwiGLUBackward(da, db, g, a, b) },
				[]enginetest.Input{{Name: "a", X: a, DX: da}, {Name: "b", X: b, DX: db}}
		}},
		{"SwiGLU", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			ps := engine.NewParams[float64]()
			m := engine.NewSwiGLU(ps, "mlp", 6, 10)
			enginetest.PerturbParams(rng, ps, 0.5)
			n := 4
			acts := m.NewActs(engine.NewArena[float64](), n)
			x, dx, out := enginetest.Randn(rng, n*6, 1), make([]float64, n*6), make([]float64, n*6)
			return func() []float64 { m.Forward(out, x, acts); return out },
				func(g []float64) { ps.ZeroGrad(); m.Backward(dx, g, x, acts) },
				append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
		}},
		{"MLP", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			ps := engine.NewParams[float64]()
			m := engine.NewMLP(ps, "mlp", 6, 12, 5)
			enginetest.PerturbParams(rng, ps, 0.5)
			n := 4
			acts := m.NewActs(engine.NewArena[float64](), n)
			x, dx, out := enginetest.Randn(rng, n*6, 1), make([]float64, n*6), make([]float64, n*5)
			return func() []float64 { m.Forward(out, x, acts); return out },
				func(g []float64) { ps.ZeroGrad(); m.Backward(dx, g, x, acts) },
				append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
		}},
		{"Conv2d/3x3pad1", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return convCase(rng, 3, 1, 1, true)
		}},
		{"Conv2d/3x3stride2", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return convCase(rng, 3, 2, 1, false)
		}},
		{"Conv2d/2x2nopad", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return convCase(rng, 2, 1, 0, true)
		}},
		{"AdaptiveAvgPool2d", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			B, H, W, C, oh, ow := 2, 5, 4, 3, 3, 3
			x, dx := enginetest.Randn(rng, B*H*W*C, 1), make([]float64, B*H*W*C)
			out := make([]float64, B*oh*ow*C)
			return func() []float64 { engine.AdaptiveAvgPool2d(out, x, B, H, W, C, oh, ow); return out },
				func(g []float64) { engine.AdaptiveAvgPool2dBackward(dx, g, B, H, W, C, oh, ow) },
				[]enginetest.Input{{Name: "x", X: x, DX: dx}}
		}},
		{"AddBroadcast", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			x, row := enginetest.Randn(rng, 12, 1), enginetest.Randn(rng, 4, 1)
			dx, drow, out := make([]float64, 12), make([]float64, 4), make([]float64, 12)
			return func() []float64 { copy(out, x); engine.AddBroadcast(out, row); return out },
				func(g []float64) { engine.AddTo(dx, g); engine.SumBroadcast(drow, g) },
				[]enginetest.Input{{Name: "x", X: x, DX: dx}, {Name: "row", X: row, DX: drow}}
		}},
		{"CrossEntropy", func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			n, V := 6, 7
			logits, dlogits := enginetest.Randn(rng, n*V, 2), make([]float64, n*V)
			targets := []int32{0, 6, -1, 3, 3, 1}
			mask := []float64{1, 1, 0, 0.5, 1, 2}
			stats, out := make([]float64, 2*n), make([]float64, 1)
			return func() []float64 { out[0] = engine.CrossEntropyForward(stats, logits, targets, mask, V); return out },
				func(g []float64) { engine.CrossEntropyBackward(dlogits, logits, stats, targets, mask, V, g[0]) },
				[]enginetest.Input{{Name: "logits", X: logits, DX: dlogits}}
		}},
	}
	for _, ac := range attentionConfigs() {
		cases = append(cases, layerCase{"Attention/" + ac.name, func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
			return attentionCase(rng, ac)
		}})
	}
	return cases
}

func linearCase(rng *rand.Rand, bias bool) (func() []float64, func([]float64), []enginetest.Input) {
	ps := engine.NewParams[float64]()
	l := engine.NewLinear(ps, "lin", 5, 3, bias)
	enginetest.PerturbParams(rng, ps, 0.5)
	n := 4
	x, dx, out := enginetest.Randn(rng, n*5, 1), make([]float64, n*5), make([]float64, n*3)
	return func() []float64 { l.Forward(out, x); return out },
		func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x) },
		append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
}

func elementwiseCase(fwd func(out, x []float64), bwd func(dx, dout, x []float64)) func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
	return func(rng *rand.Rand) (func() []float64, func([]float64), []enginetest.Input) {
		x := enginetest.Randn(rng, 20, 2)
		dx, out := make([]float64, 20), make([]float64, 20)
		return func() []float64 { fwd(out, x); return out },
			func(g []float64) { bwd(dx, g, x) },
			[]enginetest.Input{{Name: "x", X: x, DX: dx}}
	}
}

func convCase(rng *rand.Rand, k, stride, pad int, bias bool) (func() []float64, func([]float64), []enginetest.Input) {
	ps := engine.NewParams[float64]()
	ps.Pool = engine.NewPool(2) // images in parallel in im2col
	c := engine.NewConv2d(ps, "conv", 3, 4, k, stride, pad, bias)
	enginetest.PerturbParams(rng, ps, 0.5)
	B, H, W := 2, 5, 4
	ho, wo := c.OutSize(H, W)
	x, dx := enginetest.Randn(rng, B*H*W*3, 1), make([]float64, B*H*W*3)
	cols, dcols := make([]float64, c.ColsLen(B, H, W)), make([]float64, c.ColsLen(B, H, W))
	out := make([]float64, B*ho*wo*4)
	return func() []float64 { c.Forward(out, cols, x, B, H, W); return out },
		func(g []float64) { ps.ZeroGrad(); c.Backward(dx, g, cols, dcols, B, H, W) },
		append(enginetest.ParamInputs(ps), enginetest.Input{Name: "x", X: x, DX: dx})
}

type attnConfig struct {
	name                     string
	heads, kv, hd, B, Tq, Tk int
	causal, docs, fused      bool
	workers                  int
}

func attentionConfigs() []attnConfig {
	return []attnConfig{
		{name: "causal-docs-gqa", heads: 4, kv: 2, hd: 4, B: 2, Tq: 6, Tk: 6, causal: true, docs: true, workers: 3},
		{name: "causal-mqa", heads: 3, kv: 1, hd: 4, B: 1, Tq: 5, Tk: 5, causal: true},
		{name: "bidirectional-fused-qkv", heads: 2, kv: 2, hd: 3, B: 2, Tq: 5, Tk: 5, fused: true, workers: 2},
		{name: "bidirectional-docs", heads: 2, kv: 2, hd: 3, B: 1, Tq: 6, Tk: 6, docs: true},
		// T > causalBlock: the blocked causal products (70 = 2 full blocks + 6).
		{name: "causal-blocked-docs", heads: 2, kv: 1, hd: 2, B: 1, Tq: 70, Tk: 70, causal: true, docs: true, workers: 2},
		{name: "cross", heads: 2, kv: 2, hd: 4, B: 2, Tq: 3, Tk: 7, workers: 2},
	}
}

func attentionCase(rng *rand.Rand, c attnConfig) (func() []float64, func([]float64), []enginetest.Input) {
	pool := engine.NewPool(c.workers)
	a := engine.NewAttention[float64](c.heads, c.kv, c.hd, c.causal, pool)
	var q, k, v, dq, dk, dv []float64
	var inputs []enginetest.Input
	if c.fused {
		d := c.heads * c.hd
		qkv, dqkv := enginetest.Randn(rng, c.B*c.Tq*3*d, 1), make([]float64, c.B*c.Tq*3*d)
		a.QStride, a.KVStride = 3*d, 3*d
		q, k, v = qkv, qkv[d:], qkv[2*d:]
		dq, dk, dv = dqkv, dqkv[d:], dqkv[2*d:]
		inputs = []enginetest.Input{{Name: "qkv", X: qkv, DX: dqkv}}
	} else {
		q, dq = enginetest.Randn(rng, c.B*c.Tq*c.heads*c.hd, 1), make([]float64, c.B*c.Tq*c.heads*c.hd)
		k, dk = enginetest.Randn(rng, c.B*c.Tk*c.kv*c.hd, 1), make([]float64, c.B*c.Tk*c.kv*c.hd)
		v, dv = enginetest.Randn(rng, c.B*c.Tk*c.kv*c.hd, 1), make([]float64, c.B*c.Tk*c.kv*c.hd)
		inputs = []enginetest.Input{{Name: "q", X: q, DX: dq}, {Name: "k", X: k, DX: dk}, {Name: "v", X: v, DX: dv}}
	}
	var docs []int32
	if c.docs {
		docs = make([]int32, c.B*c.Tq)
		for i := range docs {
			docs[i] = int32(i % c.Tq / 2) // documents of two tokens each
		}
		if c.B > 1 {
			docs[c.Tq+1] = 9 // a document of one token inside a longer one
		}
	}
	out := make([]float64, c.B*c.Tq*c.heads*c.hd)
	probs := make([]float64, c.B*c.heads*c.Tq*c.Tk)
	scratch := make([]float64, len(probs))
	return func() []float64 { a.Forward(out, probs, q, k, v, docs, c.B, c.Tq, c.Tk); return out },
		func(g []float64) { a.Backward(dq, dk, dv, scratch, g, q, k, v, probs, c.B, c.Tq, c.Tk) },
		inputs
}

// TestGradCheckComposite checks a decoder attention path end to end, as the
// model composes it: per-head QK RMSNorm, then RoPE, then causal GQA.
func TestGradCheckComposite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ps := engine.NewParams[float64]()
	H, KV, hd, B, T := 4, 2, 4, 2, 5
	qn := engine.NewRMSNorm(ps, "q_norm", hd, 1e-5)
	kn := engine.NewRMSNorm(ps, "k_norm", hd, 1e-5)
	enginetest.PerturbParams(rng, ps, 0.5)
	rope := engine.NewRoPE[float64](hd, 500000, 16)
	att := engine.NewAttention[float64](H, KV, hd, true, nil)
	n := B * T
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	q, k, v := enginetest.Randn(rng, n*H*hd, 1), enginetest.Randn(rng, n*KV*hd, 1), enginetest.Randn(rng, n*KV*hd, 1)
	dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
	qh, kh := make([]float64, len(q)), make([]float64, len(k))
	qr, kr := make([]float64, len(q)), make([]float64, len(k))
	qrs, krs := make([]float64, n*H), make([]float64, n*KV)
	out, probs := make([]float64, n*H*hd), make([]float64, B*H*T*T)
	scratch := make([]float64, len(probs))
	dqr, dkr := make([]float64, len(q)), make([]float64, len(k))
	dqh, dkh := make([]float64, len(q)), make([]float64, len(k))
	fwd := func() []float64 {
		qn.Forward(qh, qrs, q)
		kn.Forward(kh, krs, k)
		rope.Forward(qr, qh, pos, H)
		rope.Forward(kr, kh, pos, KV)
		att.Forward(out, probs, qr, kr, v, nil, B, T, T)
		return out
	}
	bwd := func(g []float64) {
		ps.ZeroGrad()
		for _, b := range [][]float64{dqr, dkr, dqh, dkh} {
			clear(b)
		}
		att.Backward(dqr, dkr, dv, scratch, g, qr, kr, v, probs, B, T, T)
		rope.Backward(dqh, dqr, pos, H)
		rope.Backward(dkh, dkr, pos, KV)
		qn.Backward(dq, dqh, q, qrs)
		kn.Backward(dk, dkh, k, krs)
	}
	inputs := append(enginetest.ParamInputs(ps), enginetest.Input{Name: "q", X: q, DX: dq}, enginetest.Input{Name: "k", X: k, DX: dk}, enginetest.Input{Name: "v", X: v, DX: dv})
	worst, where := enginetest.GradCheck(rng, fwd, bwd, inputs)
	if !(worst < enginetest.GradBound) {
		t.Errorf("worst relative gradient error %.3g in %s, want < %g", worst, where, enginetest.GradBound)
	}
}

func ExampleCheckFinite() {
	err := engine.CheckFinite("llm.layers.2.attn out", []float32{1, 2, float32(math.NaN())})
	fmt.Println(err)
	// Output: engine: non-finite value NaN in llm.layers.2.attn out at element 2
}
