package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gradBound is the largest accepted gradient-check error in float64. The error
// of a tensor is max|analytic − numeric| / max(|numeric|, |analytic|) over its
// elements; central differences with h = 1e-6 are accurate to ~1e-9 here,
// while a wrong factor of 2 anywhere gives ~0.5 (see TestGradCheckCatchesWrongGradient).
const gradBound = 1e-6

// gradInput is a tensor the check perturbs and the analytic gradient
// Backward accumulated for it.
type gradInput struct {
	name  string
	x, dx []float64
}

// gradCheck compares the analytic gradients of loss = Σ fwd()·g with central
// finite differences, for a random upstream gradient g. fwd recomputes the
// output from the inputs' current values; bwd adds gradients for upstream g
// into every input's dx (zeroed here first). It returns the worst error and
// the tensor it occurred in.
func gradCheck(rng *rand.Rand, fwd func() []float64, bwd func(g []float64), inputs []gradInput) (float64, string) {
	out := fwd()
	g := randn(rng, len(out), 1)
	for _, in := range inputs {
		clear(in.dx)
	}
	bwd(g)
	loss := func() float64 {
		var s float64
		for i, v := range fwd() {
			s += v * g[i]
		}
		return s
	}
	const h = 1e-6
	worst, where := 0.0, ""
	for _, in := range inputs {
		var maxDiff, scale float64
		for e := range in.x {
			orig := in.x[e]
			in.x[e] = orig + h
			lp := loss()
			in.x[e] = orig - h
			lm := loss()
			in.x[e] = orig
			num := (lp - lm) / (2 * h)
			maxDiff = max(maxDiff, math.Abs(num-in.dx[e]))
			scale = max(scale, math.Abs(num), math.Abs(in.dx[e]))
		}
		if scale < 1e-12 {
			continue
		}
		if err := maxDiff / scale; err > worst || math.IsNaN(err) {
			worst, where = err, in.name
		}
	}
	return worst, where
}

func randn(rng *rand.Rand, n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * std
	}
	return x
}

// paramInputs lists every parameter of ps as a gradient-check input.
func paramInputs(ps *Params[float64]) []gradInput {
	var ins []gradInput
	for _, p := range ps.All() {
		ins = append(ins, gradInput{p.Name, p.Data(), p.Grad()})
	}
	return ins
}

func randomizeParams(rng *rand.Rand, ps *Params[float64]) {
	for _, p := range ps.All() {
		d := p.Data()
		for i := range d {
			d[i] += rng.NormFloat64() * 0.5
		}
	}
}

// layerCase builds one layer with its inputs; fwd/bwd as in gradCheck.
type layerCase struct {
	name  string
	build func(rng *rand.Rand) (fwd func() []float64, bwd func(g []float64), inputs []gradInput)
}

func TestGradCheck(t *testing.T) {
	for _, tc := range gradCases() {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			fwd, bwd, inputs := tc.build(rng)
			worst, where := gradCheck(rng, fwd, bwd, inputs)
			if !(worst < gradBound) {
				t.Errorf("worst relative gradient error %.3g in %s, want < %g", worst, where, gradBound)
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
	ps := NewParams[float64]()
	l := NewRMSNorm(ps, "norm", 6, 1e-5)
	randomizeParams(rng, ps)
	n := 4
	x, dx := randn(rng, n*6, 1), make([]float64, n*6)
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
	worst, where := gradCheck(rng, fwd, bwd, []gradInput{{"x", x, dx}, {"w", l.W.Data(), l.W.Grad()}})
	if worst < 0.1 {
		t.Fatalf("checker passed a wrong gradient: worst %.3g in %s", worst, where)
	}
	t.Logf("wrong gradient caught: worst %.2g in %s", worst, where)
}

func gradCases() []layerCase {
	cases := []layerCase{
		{"Linear/bias", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			return linearCase(rng, true)
		}},
		{"Linear/nobias", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			return linearCase(rng, false)
		}},
		{"Embedding", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			ps := NewParams[float64]()
			e := NewEmbedding(ps, "emb", 7, 5)
			randomizeParams(rng, ps)
			ids := []int32{3, 0, 6, 3, 2}
			out := make([]float64, len(ids)*5)
			return func() []float64 { e.Forward(out, ids); return out },
				func(g []float64) { ps.ZeroGrad(); e.Backward(g, ids) },
				paramInputs(ps)
		}},
		{"RMSNorm", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			ps := NewParams[float64]()
			l := NewRMSNorm(ps, "norm", 8, 1e-5)
			randomizeParams(rng, ps)
			n := 5
			x, dx := randn(rng, n*8, 1), make([]float64, n*8)
			out, rstd := make([]float64, n*8), make([]float64, n)
			return func() []float64 { l.Forward(out, rstd, x); return out },
				func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x, rstd) },
				append(paramInputs(ps), gradInput{"x", x, dx})
		}},
		{"LayerNorm", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			ps := NewParams[float64]()
			l := NewLayerNorm(ps, "ln", 8, 1e-5)
			randomizeParams(rng, ps)
			n := 5
			x, dx := randn(rng, n*8, 1), make([]float64, n*8)
			out, mean, rstd := make([]float64, n*8), make([]float64, n), make([]float64, n)
			return func() []float64 { l.Forward(out, mean, rstd, x); return out },
				func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x, mean, rstd) },
				append(paramInputs(ps), gradInput{"x", x, dx})
		}},
		{"RoPE", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			r := NewRoPE[float64](6, 10000, 32)
			pos := []int32{0, 5, 1, 31}
			heads := 3
			x, dx := randn(rng, len(pos)*heads*6, 1), make([]float64, len(pos)*heads*6)
			out := make([]float64, len(x))
			return func() []float64 { r.Forward(out, x, pos, heads); return out },
				func(g []float64) { r.Backward(dx, g, pos, heads) },
				[]gradInput{{"x", x, dx}}
		}},
		{"SiLU", elementwiseCase(SiLUForward[float64], SiLUBackward[float64])},
		{"GELU", elementwiseCase(GELUForward[float64], GELUBackward[float64])},
		{"SwiGLUFn", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			a, b := randn(rng, 12, 2), randn(rng, 12, 1)
			da, db, out := make([]float64, 12), make([]float64, 12), make([]float64, 12)
			return func() []float64 { SwiGLUForward(out, a, b); return out },
				func(g []float64) { SwiGLUBackward(da, db, g, a, b) },
				[]gradInput{{"a", a, da}, {"b", b, db}}
		}},
		{"SwiGLU", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			ps := NewParams[float64]()
			m := NewSwiGLU(ps, "mlp", 6, 10)
			randomizeParams(rng, ps)
			n := 4
			acts := m.NewActs(NewArena[float64](), n)
			x, dx, out := randn(rng, n*6, 1), make([]float64, n*6), make([]float64, n*6)
			return func() []float64 { m.Forward(out, x, acts); return out },
				func(g []float64) { ps.ZeroGrad(); m.Backward(dx, g, x, acts) },
				append(paramInputs(ps), gradInput{"x", x, dx})
		}},
		{"MLP", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			ps := NewParams[float64]()
			m := NewMLP(ps, "mlp", 6, 12, 5)
			randomizeParams(rng, ps)
			n := 4
			acts := m.NewActs(NewArena[float64](), n)
			x, dx, out := randn(rng, n*6, 1), make([]float64, n*6), make([]float64, n*5)
			return func() []float64 { m.Forward(out, x, acts); return out },
				func(g []float64) { ps.ZeroGrad(); m.Backward(dx, g, x, acts) },
				append(paramInputs(ps), gradInput{"x", x, dx})
		}},
		{"Conv2d/3x3pad1", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			return convCase(rng, 3, 1, 1, true)
		}},
		{"Conv2d/3x3stride2", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			return convCase(rng, 3, 2, 1, false)
		}},
		{"Conv2d/2x2nopad", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			return convCase(rng, 2, 1, 0, true)
		}},
		{"AdaptiveAvgPool2d", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			B, H, W, C, oh, ow := 2, 5, 4, 3, 3, 3
			x, dx := randn(rng, B*H*W*C, 1), make([]float64, B*H*W*C)
			out := make([]float64, B*oh*ow*C)
			return func() []float64 { AdaptiveAvgPool2d(out, x, B, H, W, C, oh, ow); return out },
				func(g []float64) { AdaptiveAvgPool2dBackward(dx, g, B, H, W, C, oh, ow) },
				[]gradInput{{"x", x, dx}}
		}},
		{"AddBroadcast", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			x, row := randn(rng, 12, 1), randn(rng, 4, 1)
			dx, drow, out := make([]float64, 12), make([]float64, 4), make([]float64, 12)
			return func() []float64 { copy(out, x); AddBroadcast(out, row); return out },
				func(g []float64) { AddTo(dx, g); SumBroadcast(drow, g) },
				[]gradInput{{"x", x, dx}, {"row", row, drow}}
		}},
		{"CrossEntropy", func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			n, V := 6, 7
			logits, dlogits := randn(rng, n*V, 2), make([]float64, n*V)
			targets := []int32{0, 6, -1, 3, 3, 1}
			mask := []float64{1, 1, 0, 0.5, 1, 2}
			stats, out := make([]float64, 2*n), make([]float64, 1)
			return func() []float64 { out[0] = CrossEntropyForward(stats, logits, targets, mask, V); return out },
				func(g []float64) { CrossEntropyBackward(dlogits, logits, stats, targets, mask, V, g[0]) },
				[]gradInput{{"logits", logits, dlogits}}
		}},
	}
	for _, ac := range attentionConfigs() {
		cases = append(cases, layerCase{"Attention/" + ac.name, func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
			return attentionCase(rng, ac)
		}})
	}
	return cases
}

func linearCase(rng *rand.Rand, bias bool) (func() []float64, func([]float64), []gradInput) {
	ps := NewParams[float64]()
	l := NewLinear(ps, "lin", 5, 3, bias)
	randomizeParams(rng, ps)
	n := 4
	x, dx, out := randn(rng, n*5, 1), make([]float64, n*5), make([]float64, n*3)
	return func() []float64 { l.Forward(out, x); return out },
		func(g []float64) { ps.ZeroGrad(); l.Backward(dx, g, x) },
		append(paramInputs(ps), gradInput{"x", x, dx})
}

func elementwiseCase(fwd func(out, x []float64), bwd func(dx, dout, x []float64)) func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
	return func(rng *rand.Rand) (func() []float64, func([]float64), []gradInput) {
		x := randn(rng, 20, 2)
		dx, out := make([]float64, 20), make([]float64, 20)
		return func() []float64 { fwd(out, x); return out },
			func(g []float64) { bwd(dx, g, x) },
			[]gradInput{{"x", x, dx}}
	}
}

func convCase(rng *rand.Rand, k, stride, pad int, bias bool) (func() []float64, func([]float64), []gradInput) {
	ps := NewParams[float64]()
	ps.Pool = NewPool(2) // images in parallel in im2col
	c := NewConv2d(ps, "conv", 3, 4, k, stride, pad, bias)
	randomizeParams(rng, ps)
	B, H, W := 2, 5, 4
	ho, wo := c.OutSize(H, W)
	x, dx := randn(rng, B*H*W*3, 1), make([]float64, B*H*W*3)
	cols, dcols := make([]float64, c.ColsLen(B, H, W)), make([]float64, c.ColsLen(B, H, W))
	out := make([]float64, B*ho*wo*4)
	return func() []float64 { c.Forward(out, cols, x, B, H, W); return out },
		func(g []float64) { ps.ZeroGrad(); c.Backward(dx, g, cols, dcols, B, H, W) },
		append(paramInputs(ps), gradInput{"x", x, dx})
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

func attentionCase(rng *rand.Rand, c attnConfig) (func() []float64, func([]float64), []gradInput) {
	pool := NewPool(c.workers)
	a := NewAttention[float64](c.heads, c.kv, c.hd, c.causal, pool)
	var q, k, v, dq, dk, dv []float64
	var inputs []gradInput
	if c.fused {
		d := c.heads * c.hd
		qkv, dqkv := randn(rng, c.B*c.Tq*3*d, 1), make([]float64, c.B*c.Tq*3*d)
		a.QStride, a.KVStride = 3*d, 3*d
		q, k, v = qkv, qkv[d:], qkv[2*d:]
		dq, dk, dv = dqkv, dqkv[d:], dqkv[2*d:]
		inputs = []gradInput{{"qkv", qkv, dqkv}}
	} else {
		q, dq = randn(rng, c.B*c.Tq*c.heads*c.hd, 1), make([]float64, c.B*c.Tq*c.heads*c.hd)
		k, dk = randn(rng, c.B*c.Tk*c.kv*c.hd, 1), make([]float64, c.B*c.Tk*c.kv*c.hd)
		v, dv = randn(rng, c.B*c.Tk*c.kv*c.hd, 1), make([]float64, c.B*c.Tk*c.kv*c.hd)
		inputs = []gradInput{{"q", q, dq}, {"k", k, dk}, {"v", v, dv}}
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
	ps := NewParams[float64]()
	H, KV, hd, B, T := 4, 2, 4, 2, 5
	qn := NewRMSNorm(ps, "q_norm", hd, 1e-5)
	kn := NewRMSNorm(ps, "k_norm", hd, 1e-5)
	randomizeParams(rng, ps)
	rope := NewRoPE[float64](hd, 500000, 16)
	att := NewAttention[float64](H, KV, hd, true, nil)
	n := B * T
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i % T)
	}
	q, k, v := randn(rng, n*H*hd, 1), randn(rng, n*KV*hd, 1), randn(rng, n*KV*hd, 1)
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
	inputs := append(paramInputs(ps), gradInput{"q", q, dq}, gradInput{"k", k, dk}, gradInput{"v", v, dv})
	worst, where := gradCheck(rng, fwd, bwd, inputs)
	if !(worst < gradBound) {
		t.Errorf("worst relative gradient error %.3g in %s, want < %g", worst, where, gradBound)
	}
}

func ExampleCheckFinite() {
	err := CheckFinite("llm.layers.2.attn out", []float32{1, 2, float32(math.NaN())})
	fmt.Println(err)
	// Output: engine: non-finite value NaN in llm.layers.2.attn out at element 2
}
