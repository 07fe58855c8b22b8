package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func randn(rng *rand.Rand, n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * std
	}
	return x
}

// randomizeParams moves every parameter off its initial value, as
// enginetest.PerturbParams does for the external tests (this file's
// internal tests cannot import enginetest, which imports engine).
func randomizeParams(rng *rand.Rand, ps *Params[float64]) {
	for _, p := range ps.All() {
		d := p.Data()
		for i := range d {
			d[i] += rng.NormFloat64() * 0.5
		}
	}
}

func randn32(rng *rand.Rand, n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * std)
	}
	return x
}

// naiveGemm is the definition C = alpha·op(A)·op(B) + beta·C.
func naiveGemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				ai, bi := i*lda+p, p*ldb+j
				if tA {
					ai = p*lda + i
				}
				if tB {
					bi = j*ldb + p
				}
				av, bv := a[ai], b[bi]
				s += av * bv
			}
			c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
		}
	}
}

func TestGemmMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, n, k := 5, 7, 3
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			ar, ac := m, k
			if tA {
				ar, ac = k, m
			}
			br, bc := k, n
			if tB {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+2, bc+1, n+3 // strided views
			a, b := randn(rng, ar*lda, 1), randn(rng, br*ldb, 1)
			c := randn(rng, m*ldc, 1)
			want := slices.Clone(c)
			naiveGemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, ldc)
			got := slices.Clone(c)
			Gemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, got, ldc)
			got32 := make([]float32, len(c))
			for i, v := range c {
				got32[i] = float32(v)
			}
			Gemm(tA, tB, m, n, k, 0.7, f32(a), lda, f32(b), ldb, 0.3, got32, ldc)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12 || math.Abs(float64(got32[i])-want[i]) > 1e-5 {
					t.Fatalf("tA=%v tB=%v: element %d = %v (float64), %v (float32), want %v", tA, tB, i, got[i], got32[i], want[i])
				}
			}
		}
	}
}

func TestParallelGemmMatchesGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 2))
	pool := NewPool(3)
	defer pool.Close()
	m, n, k := 70, 64, 80 // m·n·k above minSplitWork, rows not divisible by 3
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			lda, ldb := k, n
			if tA {
				lda = m
			}
			if tB {
				ldb = k
			}
			a, b, c := randn(rng, m*k, 1), randn(rng, k*n, 1), randn(rng, m*n, 1)
			want := slices.Clone(c)
			Gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, want, n)
			ParallelGemm(pool, tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, c, n)
			for i := range c {
				if math.Abs(c[i]-want[i]) > 1e-12 {
					t.Fatalf("tA=%v tB=%v: element %d = %v, want %v", tA, tB, i, c[i], want[i])
				}
			}
		}
	}
}

func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// runAttention runs a forward pass of causal/bidirectional self-attention on
// B sequences of length T and returns out.
func runAttention(a *Attention[float64], q, k, v []float64, docs []int32, B, T int) []float64 {
	out := make([]float64, B*T*a.Heads*a.HeadDim)
	probs := make([]float64, B*a.Heads*T*T)
	a.Forward(out, probs, q, k, v, docs, B, T, T)
	return out
}

// TestAttentionDocsEqualSeparate packs three documents into one row and
// checks every position's output equals running its document alone, for
// causal and bidirectional masks.
func TestAttentionDocsEqualSeparate(t *testing.T) {
	for _, causal := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(5, 6))
		H, KV, hd := 4, 2, 3
		a := NewAttention[float64](H, KV, hd, causal, NewPool(2))
		lens := []int{3, 5, 2}
		T := 10
		q, k, v := randn(rng, T*H*hd, 1), randn(rng, T*KV*hd, 1), randn(rng, T*KV*hd, 1)
		docs := make([]int32, 0, T)
		for d, l := range lens {
			for range l {
				docs = append(docs, int32(d))
			}
		}
		packed := runAttention(a, q, k, v, docs, 1, T)
		start := 0
		for _, l := range lens {
			sep := runAttention(a, q[start*H*hd:(start+l)*H*hd], k[start*KV*hd:(start+l)*KV*hd], v[start*KV*hd:(start+l)*KV*hd], nil, 1, l)
			for i, want := range sep {
				if got := packed[start*H*hd+i]; math.Abs(got-want) > 1e-12 {
					t.Fatalf("causal=%v: document at %d, element %d: packed %v, separate %v", causal, start, i, got, want)
				}
			}
			start += l
		}
	}
}

// TestAttentionCausalEqualsTruncated: with a causal mask, position t's output
// equals that of the last position of the sequence truncated after t.
func TestAttentionCausalEqualsTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	H, KV, hd, T := 2, 1, 4, 2*causalBlock+7 // several causal blocks
	a := NewAttention[float64](H, KV, hd, true, nil)
	q, k, v := randn(rng, T*H*hd, 1), randn(rng, T*KV*hd, 1), randn(rng, T*KV*hd, 1)
	full := runAttention(a, q, k, v, nil, 1, T)
	for l := 1; l <= T; l++ {
		tr := runAttention(a, q[:l*H*hd], k[:l*KV*hd], v[:l*KV*hd], nil, 1, l)
		for i, want := range tr {
			if got := full[i]; math.Abs(got-want) > 1e-12 {
				t.Fatalf("truncated to %d: element %d: full %v, truncated %v", l, i, got, want)
			}
		}
	}
}

// TestAttentionPoolDeterministic: the pool changes scheduling, not results.
func TestAttentionPoolDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	H, KV, hd, B, T := 4, 2, 8, 3, 9
	q, k, v := randn32(rng, B*T*H*hd, 1), randn32(rng, B*T*KV*hd, 1), randn32(rng, B*T*KV*hd, 1)
	g := randn32(rng, B*T*H*hd, 1)
	run := func(pool *Pool) [][]float32 {
		a := NewAttention[float32](H, KV, hd, true, pool)
		out, probs := make([]float32, len(q)), make([]float32, B*H*T*T)
		dq, dk, dv, scratch := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v)), make([]float32, len(probs))
		a.Forward(out, probs, q, k, v, nil, B, T, T)
		a.Backward(dq, dk, dv, scratch, g, q, k, v, probs, B, T, T)
		return [][]float32{out, dq, dk, dv}
	}
	pool := NewPool(4)
	defer pool.Close()
	serial, parallel := run(nil), run(pool)
	for i := range serial {
		if !slices.Equal(serial[i], parallel[i]) {
			t.Fatalf("tensor %d differs between serial and pooled runs", i)
		}
	}
}

func TestAdamWHandStep(t *testing.T) {
	ps := NewParams[float64]()
	w := ps.Add("w", 1, 2) // decays
	b := ps.Add("b", 2)    // no decay
	f := ps.Add("f", 1)
	f.Frozen = true
	copy(w.Data(), []float64{1, -2})
	copy(b.Data(), []float64{0.5, 3})
	f.Data()[0] = 7
	opt := NewAdamW(ps, AdamWConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1})
	lr := 0.01
	grads := [][]float64{{0.2, -0.4, 1, 0, 5}, {-0.1, 0.3, 2, 0.5, 5}}
	// Hand computation for w[0] = 1 with g = 0.2, then −0.1:
	// t=1: p = 1·(1−0.001) = 0.999; m = 0.02, v = 0.0004; m̂ = 0.2, v̂ = 0.04;
	//      p = 0.999 − 0.01·0.2/(0.2+1e-8) = 0.989000000049999...
	// t=2: p = 0.989000000049999·0.999; m = 0.018 − 0.01 = 0.008; v = 0.000396 + 0.0001 = 0.000496;
	//      m̂ = 0.008/0.19, v̂ = 0.000496/0.0199; p −= 0.01·m̂/(√v̂ + 1e-8).
	p1 := 0.999 - 0.01*0.2/(0.2+1e-8)
	mhat, vhat := 0.008/0.19, 0.000496/(1-0.99*0.99)
	p2 := p1*0.999 - 0.01*mhat/(math.Sqrt(vhat)+1e-8)
	// b[1] = 3 (no decay) with g = 0, then 0.5: t=1 leaves it; t=2: m = 0.05, v = 0.01·0.25 = 0.0025.
	bm, bv := 0.05/0.19, 0.0025/(1-0.99*0.99)
	b2 := 3 - 0.01*bm/(math.Sqrt(bv)+1e-8)
	for _, g := range grads {
		copy(ps.Grad(), g)
		opt.Step(lr)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"w[0]", w.Data()[0], p2},
		{"b[1]", b.Data()[1], b2},
		{"frozen f", f.Data()[0], 7},
		{"m[w0]", opt.M()[0], 0.008},
		{"v[w0]", opt.V()[0], 0.000496},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %.15g, want %.15g", c.name, c.got, c.want)
		}
	}
	if opt.T() != 2 {
		t.Errorf("T() = %d, want 2", opt.T())
	}
}

// TestAdamWLRScale checks that a tensor's LRScale acts as its own
// parameter group's learning rate, decay included: scaled tensors track a
// second optimiser run at lr·scale, and the unscaled one is untouched by
// its neighbours' scales.
func TestAdamWLRScale(t *testing.T) {
	const lr, steps = 0.01, 4
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1}
	grads := func(step, n int) []float64 {
		g := make([]float64, n)
		for i := range g {
			g[i] = math.Sin(float64(7*step+3*i)) + 0.1*float64(i)
		}
		return g
	}
	init := []float64{1, -2, 0.5, 3, -0.25}
	run := func(scales []float64, lr float64) [][]float64 {
		ps := NewParams[float64]()
		w := []*Param[float64]{ps.Add("w", 1, 2), ps.Add("b", 1), ps.Add("v", 2, 1)} // decays, not, decays
		for i, p := range w {
			p.LRScale = scales[i]
		}
		copy(ps.Data(), init)
		opt := NewAdamW(ps, cfg)
		for s := range steps {
			copy(ps.Grad(), grads(s, len(init)))
			opt.Step(lr)
		}
		out := make([][]float64, len(w))
		for i, p := range w {
			out[i] = slices.Clone(p.Data())
		}
		return out
	}
	mixed := run([]float64{0.1, 1, 3}, lr)
	for i, scale := range []float64{0.1, 1, 3} {
		want := run([]float64{1, 1, 1}, lr*scale)[i]
		for j := range want {
			if d := math.Abs(mixed[i][j] - want[j]); d > 1e-15 {
				t.Errorf("tensor %d [%d] with LRScale %v: %.17g, lr·scale run gives %.17g", i, j, scale, mixed[i][j], want[j])
			}
		}
	}
	if plain := run([]float64{1, 1, 1}, lr); slices.Equal(plain[0], mixed[0]) {
		t.Error("LRScale 0.1 left tensor 0 as an unscaled run leaves it")
	}
}

func TestClipGradNorm(t *testing.T) {
	ps := NewParams[float32]()
	a, b, fr := ps.Add("a", 2), ps.Add("b", 1), ps.Add("frozen", 1)
	fr.Frozen = true
	copy(a.Grad(), []float32{3, 0})
	b.Grad()[0] = 4
	fr.Grad()[0] = 100 // frozen: ignored by the norm and untouched
	if norm := ps.ClipGradNorm(10); norm != 5 {
		t.Fatalf("norm = %v, want 5", norm)
	}
	if a.Grad()[0] != 3 || b.Grad()[0] != 4 {
		t.Fatalf("clipping below the limit changed gradients: %v %v", a.Grad(), b.Grad())
	}
	if norm := ps.ClipGradNorm(1); norm != 5 {
		t.Fatalf("norm = %v, want 5", norm)
	}
	s := 1 / (5 + 1e-6)
	if math.Abs(float64(a.Grad()[0])-3*s) > 1e-6 || math.Abs(float64(b.Grad()[0])-4*s) > 1e-6 || fr.Grad()[0] != 100 {
		t.Fatalf("clipped grads %v %v %v, want %v %v 100", a.Grad(), b.Grad(), fr.Grad(), 3*s, 4*s)
	}
	b.Grad()[0] = float32(math.Inf(1))
	if norm := ps.ClipGradNorm(1); !math.IsInf(norm, 1) {
		t.Fatalf("norm with an Inf = %v", norm)
	}
	err := ps.CheckGrads()
	if nf, ok := err.(*NonFiniteError); !ok || nf.Name != "b (grad)" || nf.Index != 0 {
		t.Fatalf("CheckGrads = %v, want the Inf in b", err)
	}
}

func TestCrossEntropyHugeNegative(t *testing.T) {
	logits := []float32{0, -1e9, -1e9, 100, -1e9, -1e9, -3e38, -3e38, -3e38}
	targets := []int32{0, 0, 2}
	mask := []float32{1, 1, 1}
	stats := make([]float32, 6)
	loss := CrossEntropyForward(stats, logits, targets, mask, 3)
	// Rows 1, 2: the target has all the mass, loss 0; row 3: uniform, log 3.
	if want := math.Log(3) / 3; math.Abs(loss-want) > 1e-6 {
		t.Fatalf("loss = %v, want %v", loss, want)
	}
	d := make([]float32, 9)
	CrossEntropyBackward(d, logits, stats, targets, mask, 3, 1)
	if err := CheckFinite("dlogits", d); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(d[6])-1.0/9) > 1e-6 || math.Abs(float64(d[8])+2.0/9) > 1e-6 {
		t.Fatalf("uniform row gradient %v, want [1/9 1/9 -2/9]", d[6:])
	}
}

func TestCrossEntropyMaskedMean(t *testing.T) {
	logits := []float64{1, 2, 3, 0, 0, 0}
	stats := make([]float64, 4)
	lse0 := math.Log(math.Exp(1) + math.Exp(2) + math.Exp(3))
	loss := CrossEntropyForward(stats, logits, []int32{2, -1}, []float64{1, 0}, 3)
	if math.Abs(loss-(lse0-3)) > 1e-12 {
		t.Fatalf("loss = %v, want %v", loss, lse0-3)
	}
	if loss := CrossEntropyForward(stats, logits, []int32{-1, -1}, []float64{0, 0}, 3); loss != 0 {
		t.Fatalf("loss with an empty mask = %v, want 0", loss)
	}
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := -87.0; x <= 88.5; x += 0.001 {
		got, want := float64(expf(float32(x))), math.Exp(float64(float32(x)))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Fatalf("expf worst relative error %.3g", worst)
	}
	if expf(-1e9) != 0 || !math.IsInf(float64(expf(1e9)), 1) || !math.IsNaN(float64(expf(float32(math.NaN())))) || expf(float32(math.Inf(-1))) != 0 {
		t.Fatal("expf special values")
	}
}

func TestAdaptiveAvgPoolCells(t *testing.T) {
	// One channel, 5×1 → 3×1: PyTorch's cells are rows [0,2), [1,4), [3,5).
	x := []float64{1, 2, 4, 8, 16}
	out := make([]float64, 3)
	AdaptiveAvgPool2d(out, x, 1, 5, 1, 1, 3, 1)
	want := []float64{1.5, 14.0 / 3, 12}
	for i := range want {
		if math.Abs(out[i]-want[i]) > 1e-12 {
			t.Fatalf("pool = %v, want %v", out, want)
		}
	}
}

func TestPatchify(t *testing.T) {
	// B=1, C=2, R=4, P=2: value = c·100 + y·10 + x.
	img := make([]float64, 2*4*4)
	for c := range 2 {
		for y := range 4 {
			for x := range 4 {
				img[(c*4+y)*4+x] = float64(c*100 + y*10 + x)
			}
		}
	}
	out := make([]float64, 4*8)
	Patchify(out, img, 1, 2, 4, 2)
	// Patch (gy=0, gx=1): c0 rows (0,2),(0,3),(1,2),(1,3) then c1.
	want := []float64{2, 3, 12, 13, 102, 103, 112, 113}
	if got := out[8:16]; !slices.Equal(got, want) {
		t.Fatalf("patch 1 = %v, want %v", got, want)
	}
}

// TestConv2dMatchesDirect compares the im2col convolution on NHWC data with a
// direct loop over PyTorch's NCHW definition.
func TestConv2dMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	ps := NewParams[float64]()
	cin, cout, k, stride, pad := 3, 2, 3, 2, 1
	c := NewConv2d(ps, "conv", cin, cout, k, stride, pad, true)
	randomizeParams(rng, ps)
	B, H, W := 2, 6, 5
	x := randn(rng, B*H*W*cin, 1) // NHWC
	ho, wo := c.OutSize(H, W)
	out := make([]float64, B*ho*wo*cout)
	c.Forward(out, make([]float64, c.ColsLen(B, H, W)), x, B, H, W)
	w, bias := c.W.Data(), c.B.Data()
	for b := range B {
		for o := range cout {
			for oy := range ho {
				for ox := range wo {
					s := bias[o]
					for ci := range cin {
						for ky := range k {
							for kx := range k {
								y, xx := oy*stride-pad+ky, ox*stride-pad+kx
								if y < 0 || y >= H || xx < 0 || xx >= W {
									continue
								}
								s += w[((o*cin+ci)*k+ky)*k+kx] * x[((b*H+y)*W+xx)*cin+ci]
							}
						}
					}
					if got := out[((b*ho+oy)*wo+ox)*cout+o]; math.Abs(got-s) > 1e-12 {
						t.Fatalf("out[b=%d o=%d y=%d x=%d] = %v, want %v", b, o, oy, ox, got, s)
					}
				}
			}
		}
	}
}

// TestRoPERelative: the score between a rotated query at p and a rotated key
// at s depends only on p − s, which is what RoPE is for; position 0 is the
// identity.
func TestRoPERelative(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	r := NewRoPE[float64](8, 10000, 64)
	q, k := randn(rng, 8, 1), randn(rng, 8, 1)
	score := func(p, s int32) float64 {
		qr, kr := make([]float64, 8), make([]float64, 8)
		r.Forward(qr, q, []int32{p}, 1)
		r.Forward(kr, k, []int32{s}, 1)
		var d float64
		for i := range qr {
			d += qr[i] * kr[i]
		}
		return d
	}
	if a, b := score(10, 3), score(50, 43); math.Abs(a-b) > 1e-9 {
		t.Fatalf("score(10,3) = %v, score(50,43) = %v", a, b)
	}
	id := make([]float64, 8)
	r.Forward(id, q, []int32{0}, 1)
	if !slices.Equal(id, q) {
		t.Fatalf("position 0 changed the vector: %v vs %v", id, q)
	}
	// Pair (0, 4) at position 1 rotates by θ_0 = 1 radian.
	r.Forward(id, []float64{1, 0, 0, 0, 0, 0, 0, 0}, []int32{1}, 1)
	if math.Abs(id[0]-math.Cos(1)) > 1e-15 || math.Abs(id[4]-math.Sin(1)) > 1e-15 {
		t.Fatalf("rotation of e0 at position 1 = %v", id)
	}
}

func TestParams(t *testing.T) {
	ps := NewParams[float32]()
	NewLinear(ps, "vit.blocks.0.attn.qkv", 4, 12, true)
	e := NewEmbedding(ps, "llm.tok_embed", 10, 4)
	n := NewRMSNorm(ps, "llm.norm", 4, 1e-5)
	if p, ok := ps.Lookup("vit.blocks.0.attn.qkv.weight"); !ok || !slices.Equal(p.Shape, []int{12, 4}) || !p.Decay {
		t.Fatalf("qkv weight: %+v %v", p, ok)
	}
	if p, _ := ps.Lookup("vit.blocks.0.attn.qkv.bias"); p.Decay {
		t.Fatal("a bias decays by default")
	}
	if ps.Len() != 12*4+12+10*4+4 {
		t.Fatalf("Len = %d", ps.Len())
	}
	if n.W.Data()[3] != 1 {
		t.Fatal("RMSNorm weight not initialised to ones")
	}
	if got := ps.SetFrozen("vit.", true); got != 2 {
		t.Fatalf("SetFrozen matched %d, want 2", got)
	}
	e.W.Data()[5] = 2 // a view into the arena
	if ps.Data()[e.W.Offset+5] != 2 {
		t.Fatal("Param.Data is not a view into the arena")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a duplicate name did not panic")
		}
	}()
	ps.Add("llm.norm.weight", 4)
}

func TestFrozenGetsNoGradient(t *testing.T) {
	ps := NewParams[float32]()
	l := NewLinear(ps, "vit.proj", 3, 2, true)
	l.W.Fill(1)
	ps.SetFrozen("vit.", true)
	x, out, dx := []float32{1, 2, 3}, make([]float32, 2), make([]float32, 3)
	l.Forward(out, x)
	l.Backward(dx, []float32{1, 1}, x)
	if slices.ContainsFunc(ps.Grad(), func(v float32) bool { return v != 0 }) {
		t.Fatalf("frozen tensors got gradients %v", ps.Grad())
	}
	if !slices.Equal(dx, []float32{2, 2, 2}) {
		t.Fatalf("dx = %v, want [2 2 2] (the input gradient still flows)", dx)
	}
}

// TestPoolNestedFor: a task that uses the pool again (a layer called inside
// another layer's parallel loop) runs inline instead of deadlocking.
func TestPoolNestedFor(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	var hits [4][3]int32
	p.For(4, func(i int) {
		p.For(3, func(j int) { hits[i][j]++ })
	})
	for i := range hits {
		for j := range hits[i] {
			if hits[i][j] != 1 {
				t.Fatalf("inner index (%d, %d) ran %d times", i, j, hits[i][j])
			}
		}
	}
}

func TestPoolCoversEveryIndex(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for _, n := range []int{0, 1, 2, 7, 100} {
		hits := make([]int32, n)
		p.For(n, func(i int) { hits[i]++ })
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: index %d ran %d times", n, i, h)
			}
		}
	}
}

// TestPooledLayersMatchSerial: splitting products and elementwise work over a
// pool (Params.Pool) changes scheduling, not results, for the MLPs and
// Linear. Row blocks may take another BLAS kernel path, so equality is to
// float32 rounding.
func TestPooledLayersMatchSerial(t *testing.T) {
	run := func(pool *Pool) [][]float32 {
		rng := rand.New(rand.NewPCG(20, 21))
		ps := NewParams[float32]()
		ps.Pool = pool
		sw := NewSwiGLU(ps, "sw", 32, 704)
		mlp := NewMLP(ps, "mlp", 32, 704, 32)
		for _, p := range ps.All() {
			p.Normal(rng, 0.1)
		}
		n := 64 // 64·704 elements: several elementwise chunks
		a := NewArena[float32]()
		sa, ma := sw.NewActs(a, n), mlp.NewActs(a, n)
		x, g := randn32(rng, n*32, 1), randn32(rng, n*32, 1)
		o1, o2, dx := make([]float32, n*32), make([]float32, n*32), make([]float32, n*32)
		sw.Forward(o1, x, sa)
		mlp.Forward(o2, x, ma)
		sw.Backward(dx, g, x, sa)
		mlp.Backward(dx, g, x, ma)
		return [][]float32{o1, o2, dx, ps.Grad()}
	}
	pool := NewPool(3)
	defer pool.Close()
	serial, pooled := run(nil), run(pool)
	for i := range serial {
		var scale, diff float64
		for j := range serial[i] {
			scale = max(scale, math.Abs(float64(serial[i][j])))
			diff = max(diff, math.Abs(float64(serial[i][j]-pooled[i][j])))
		}
		if diff > 1e-5*scale {
			t.Fatalf("tensor %d: pooled differs from serial by %g (scale %g)", i, diff, scale)
		}
	}
}

// TestPooledAdamWMatchesSerial: AdamW's chunks (which cut tensors in the
// middle) give bit-identical results to one serial pass.
func TestPooledAdamWMatchesSerial(t *testing.T) {
	run := func(pool *Pool) [][]float32 {
		rng := rand.New(rand.NewPCG(22, 23))
		ps := NewParams[float32]()
		ps.Pool = pool
		ps.Add("big", 300, 200) // spans two chunks
		ps.Add("vec", 5000).Frozen = true
		ps.Add("bias", 40000)
		for _, p := range ps.All() {
			p.Normal(rng, 1)
		}
		opt := NewAdamW(ps, AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
		for range 3 {
			copy(ps.Grad(), randn32(rng, ps.Len(), 1))
			opt.Step(1e-2)
		}
		return [][]float32{ps.Data(), opt.M(), opt.V()}
	}
	pool := NewPool(3)
	defer pool.Close()
	serial, pooled := run(nil), run(pool)
	for i := range serial {
		if !slices.Equal(serial[i], pooled[i]) {
			t.Fatalf("tensor %d differs between serial and pooled AdamW", i)
		}
	}
}

// TestPooledRowLayersBitIdentical: the norms, RoPE, the cross-entropy and
// gradient clipping sum in fixed blocks, so a pool of any size gives exactly
// the serial result.
func TestPooledRowLayersBitIdentical(t *testing.T) {
	run := func(pool *Pool) [][]float32 {
		rng := rand.New(rand.NewPCG(30, 31))
		ps := NewParams[float32]()
		ps.Pool = pool
		rms := NewRMSNorm(ps, "rms", 48, 1e-5)
		ln := NewLayerNorm(ps, "ln", 48, 1e-5)
		for _, p := range ps.All() {
			p.Normal(rng, 1)
		}
		rope := NewRoPE[float32](16, 10000, 300)
		rope.Pool = pool
		ce := NewCrossEntropy[float32](48, pool)
		n := 200 // several blocks of every kind, the last one partial
		x, g := randn32(rng, n*48, 1), randn32(rng, n*48, 1)
		pos := make([]int32, n)
		targets := make([]int32, n)
		mask := make([]float32, n)
		for i := range n {
			pos[i], targets[i], mask[i] = int32(i+i%7), int32(rng.IntN(48)), float32(i%3)
		}
		o1, o2, o3, dx := make([]float32, n*48), make([]float32, n*48), make([]float32, n*48), make([]float32, n*48)
		rstd, mean, rstd2, stats := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, 2*n)
		rms.Forward(o1, rstd, x)
		rms.Backward(dx, g, x, rstd)
		ln.Forward(o2, mean, rstd2, x)
		ln.Backward(dx, g, x, mean, rstd2)
		rope.Forward(o3, x, pos, 3)
		rope.Backward(dx, g, pos, 3)
		loss := ce.Forward(stats, x, targets, mask)
		if want := CrossEntropyForward(stats, x, targets, mask, 48); loss != want {
			t.Fatalf("CrossEntropy layer loss %v, function %v", loss, want)
		}
		ce.Backward(dx, x, stats, targets, mask, 0.5)
		norm := ps.ClipGradNorm(0.1)
		return [][]float32{o1, o2, o3, dx, ps.Grad(), {float32(loss), float32(norm)}}
	}
	pool := NewPool(3)
	defer pool.Close()
	serial, pooled := run(nil), run(pool)
	for i := range serial {
		if !slices.Equal(serial[i], pooled[i]) {
			t.Fatalf("tensor %d differs between serial and pooled runs", i)
		}
	}
}

// TestBadInputsPanicNamingTheProblem: wrong shapes and out-of-range ids are
// programming errors; each panics with an "engine:" message that names the
// offending tensor or index.
func TestBadInputsPanicNamingTheProblem(t *testing.T) {
	ps := NewParams[float32]()
	emb := NewEmbedding(ps, "llm.tok_embed", 4, 2)
	lin := NewLinear(ps, "proj", 3, 2, false)
	rope := NewRoPE[float32](4, 10000, 8)
	att := NewAttention[float32](2, 1, 2, true, nil)
	cases := []struct {
		name, want string
		f          func()
	}{
		{"embedding id", "llm.tok_embed.weight: id 4 at position 1", func() { emb.Forward(make([]float32, 4), []int32{0, 4}) }},
		{"linear shape", "Linear.Forward out", func() { lin.Forward(make([]float32, 3), make([]float32, 6)) }},
		{"rope position", "RoPE: position 8 at 0", func() { rope.Forward(make([]float32, 4), make([]float32, 4), []int32{8}, 1) }},
		{"causal cross", "causal mask needs Tq == Tk", func() {
			att.Forward(make([]float32, 8), make([]float32, 24), make([]float32, 8), make([]float32, 6), make([]float32, 6), nil, 1, 2, 3)
		}},
		{"ce target", "target 7 at row 0", func() {
			CrossEntropyForward(make([]float32, 2), make([]float32, 3), []int32{7}, []float32{1}, 3)
		}},
		{"duplicate param", "proj.weight registered twice", func() { ps.Add("proj.weight", 1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "engine: ") || !strings.Contains(msg, c.want) {
					t.Fatalf("panic %q, want an engine: message containing %q", msg, c.want)
				}
			}()
			c.f()
		})
	}
}

// CheckGrads scans the arena in pool chunks first; a non-finite value in any
// chunk, and only in a trainable tensor, must still be found and named.
func TestCheckGradsPooled(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	ps := NewParams[float32]()
	ps.Pool = pool
	a := ps.Add("a", 100000)
	fz := ps.Add("fz", 40000)
	c := ps.Add("c", 70000)
	fz.Frozen = true
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	for _, tc := range []struct {
		name    string
		set     func()
		want    string // "" = no error
		wantIdx int
	}{
		{"clean", func() {}, "", 0},
		{"frozen NaN ignored", func() { fz.Grad()[123] = nan }, "", 0},
		{"-Inf in a later chunk", func() { c.Grad()[65000] = inf }, "c (grad)", 65000},
		{"first tensor wins", func() { a.Grad()[99999] = nan; c.Grad()[5] = nan }, "a (grad)", 99999},
		{"huge finite values pass", func() { a.Grad()[7] = math.MaxFloat32; c.Grad()[8] = -math.MaxFloat32 }, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps.ZeroGrad()
			tc.set()
			err := ps.CheckGrads()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckGrads = %v, want nil", err)
				}
				return
			}
			if nf, ok := err.(*NonFiniteError); !ok || nf.Name != tc.want || nf.Index != tc.wantIdx {
				t.Fatalf("CheckGrads = %v, want %s at %d", err, tc.want, tc.wantIdx)
			}
		})
	}
}

func TestAllFinite(t *testing.T) {
	for _, tc := range []struct {
		x    []float64
		want bool
	}{
		{nil, true},
		{[]float64{1, -2, 3, 0, math.MaxFloat64, -math.SmallestNonzeroFloat64}, true},
		{[]float64{1, 2, 3, 4, 5, math.NaN()}, false},
		{[]float64{math.Inf(1), 0, 0, 0}, false},
		{[]float64{0, 0, math.Inf(-1)}, false},
	} {
		if got := allFinite(tc.x); got != tc.want {
			t.Errorf("allFinite(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

// The float32 activation kernels (inlined exp, shared GELU exponential)
// against float64 math.Erf/math.Exp, over the body and the tails, plus
// NaN propagation.
func TestActivationsFloat32(t *testing.T) {
	var xs []float32
	for x := -30.0; x <= 30; x += 0.0037 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, -200, -95, -88.5, 88.5, 95, 200)
	n := len(xs)
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	gelu, dgelu, silu, dsilu := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	GELUForward(gelu, xs)
	GELUBackward(dgelu, ones, xs)
	SiLUForward(silu, xs)
	SiLUBackward(dsilu, ones, xs)
	sw, sg := make([]float32, n), make([]float32, n)
	swigluF32(sw, xs, ones, sg)
	for i, x32 := range xs {
		x := float64(x32)
		phi := 0.5 * (1 + math.Erf(x/math.Sqrt2))
		pdf := math.Exp(-x*x/2) / math.Sqrt(2*math.Pi)
		s := 1 / (1 + math.Exp(-x))
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"gelu", float64(gelu[i]), x * phi},
			{"gelu'", float64(dgelu[i]), phi + x*pdf},
			{"silu", float64(silu[i]), x * s},
			{"silu'", float64(dsilu[i]), s * (1 + x*(1-s))},
			{"swiglu", float64(sw[i]), x * s},
			{"sigmoid", float64(sg[i]), s},
		} {
			// erf's A&S form is good to 1.5e-7 absolute; the rest to float32 rounding.
			if d := math.Abs(c.got - c.want); d > 3e-7*max(1, math.Abs(x)) && d > 2e-6*math.Abs(c.want) {
				t.Fatalf("%s(%v) = %v, want %v", c.name, x32, c.got, c.want)
			}
		}
	}
	nan := []float32{float32(math.NaN())}
	out := []float32{0}
	for name, f := range map[string]func(){
		"gelu":  func() { GELUForward(out, nan) },
		"gelu'": func() { GELUBackward(out, []float32{1}, nan) },
		"silu":  func() { SiLUForward(out, nan) },
		"silu'": func() { SiLUBackward(out, []float32{1}, nan) },
	} {
		out[0] = 0
		f()
		if !math.IsNaN(float64(out[0])) {
			t.Errorf("%s(NaN) = %v, want NaN", name, out[0])
		}
	}
}

// TestParallelGemmConcurrent runs split products from several pools at once,
// float32 and float64, with block counts that change from call to call: only
// one product at a time takes the split path, the others run whole, and every
// result must equal Gemm's.
func TestParallelGemmConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			pool := NewPool(2 + g%3)
			defer pool.Close()
			for it := range 40 {
				m, n, k := 64+rng.IntN(60), 40+rng.IntN(50), 70+rng.IntN(40)
				tA, tB := it%2 == 1, it%3 == 0
				lda, ldb := k, n
				if tA {
					lda = m
				}
				if tB {
					ldb = k
				}
				a, b := randn(rng, m*k, 1), randn(rng, k*n, 1)
				if g%2 == 0 {
					want, got := make([]float64, m*n), make([]float64, m*n)
					Gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, want, n)
					ParallelGemm(pool, tA, tB, m, n, k, 1, a, lda, b, ldb, 0, got, n)
					for i := range got {
						if math.Abs(got[i]-want[i]) > 1e-9 {
							errs <- fmt.Errorf("float64 %d×%d×%d tA=%v tB=%v: element %d = %v, want %v", m, n, k, tA, tB, i, got[i], want[i])
							return
						}
					}
					continue
				}
				a32, b32 := f32(a), f32(b)
				want, got := make([]float32, m*n), make([]float32, m*n)
				Gemm(tA, tB, m, n, k, 1, a32, lda, b32, ldb, 0, want, n)
				ParallelGemm(pool, tA, tB, m, n, k, 1, a32, lda, b32, ldb, 0, got, n)
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
						errs <- fmt.Errorf("float32 %d×%d×%d tA=%v tB=%v: element %d = %v, want %v", m, n, k, tA, tB, i, got[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
