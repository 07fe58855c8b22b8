package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/mmablate/mmablate/internal/allocs"
)

// refDecoder is the reference text-only decoder of MODEL-SPEC.md built from
// engine layers, used here to measure a whole training step and to prove the
// step allocates nothing. models/ owns the real model; this one stays small.
type refDecoder struct {
	V, D, L, H, KV, hd, F, B, T int

	ps     *Params[float32]
	opt    *AdamW[float32]
	emb    *Embedding[float32]
	head   *Linear[float32]
	blocks []refBlock
	norm   *RMSNorm[float32]
	rope   *RoPE[float32]
	ce     *CrossEntropy[float32]

	tokens, targets, pos, docs []int32
	mask                       []float32

	x, dx, xf, dxf, rstdF, logits, dlogits, stats, scratch []float32
}

type refBlock struct {
	attnNorm, mlpNorm, qn, kn *RMSNorm[float32]
	wq, wk, wv, wo            *Linear[float32]
	att                       *Attention[float32]
	mlp                       *SwiGLU[float32]
	acts                      *SwiGLUActs[float32]

	xin, h                                            []float32 // block input, mid residual
	xa, ra, q, k, v, qh, kh, rq, rk, qr, kr, ao, prob []float32
	xm, rm                                            []float32
	dh, dxa, dq, dk, dv, dqh, dkh, dqr, dkr, dao, dxm []float32
}

func newRefDecoder(B, T int, pool *Pool) *refDecoder {
	m := &refDecoder{V: 512, D: 256, L: 4, H: 4, KV: 4, hd: 64, F: 704, B: B, T: T}
	rng := rand.New(rand.NewPCG(1, 1))
	m.ps = NewParams[float32]()
	m.ps.Pool = pool
	m.emb = NewEmbedding(m.ps, "llm.tok_embed", m.V, m.D)
	m.emb.W.Normal(rng, 0.02)
	m.head = LinearOf(m.emb.W, nil)
	m.rope = NewRoPE[float32](m.hd, 500000, T)
	m.rope.Pool = pool
	m.ce = NewCrossEntropy[float32](m.V, pool)
	n := B * T
	a := NewArena[float32]()
	for i := range m.L {
		p := "llm.layers." + itoa(i)
		b := refBlock{
			attnNorm: NewRMSNorm(m.ps, p+".attn_norm", m.D, 1e-5),
			wq:       NewLinear(m.ps, p+".attn.wq", m.D, m.H*m.hd, false),
			wk:       NewLinear(m.ps, p+".attn.wk", m.D, m.KV*m.hd, false),
			wv:       NewLinear(m.ps, p+".attn.wv", m.D, m.KV*m.hd, false),
			wo:       NewLinear(m.ps, p+".attn.wo", m.H*m.hd, m.D, false),
			qn:       NewRMSNorm(m.ps, p+".attn.q_norm", m.hd, 1e-5),
			kn:       NewRMSNorm(m.ps, p+".attn.k_norm", m.hd, 1e-5),
			mlpNorm:  NewRMSNorm(m.ps, p+".mlp_norm", m.D, 1e-5),
			mlp:      NewSwiGLU(m.ps, p+".mlp", m.D, m.F),
			att:      NewAttention[float32](m.H, m.KV, m.hd, true, pool),
		}
		for _, l := range []*Linear[float32]{b.wq, b.wk, b.wv, b.wo, b.mlp.W1, b.mlp.W2, b.mlp.W3} {
			l.W.Normal(rng, 0.02)
		}
		qd, kd := n*m.H*m.hd, n*m.KV*m.hd
		b.xin, b.h = a.Take(n*m.D), a.Take(n*m.D)
		b.xa, b.ra, b.xm, b.rm = a.Take(n*m.D), a.Take(n), a.Take(n*m.D), a.Take(n)
		b.q, b.k, b.v, b.qh, b.kh = a.Take(qd), a.Take(kd), a.Take(kd), a.Take(qd), a.Take(kd)
		b.rq, b.rk, b.qr, b.kr, b.ao = a.Take(n*m.H), a.Take(n*m.KV), a.Take(qd), a.Take(kd), a.Take(qd)
		b.prob = a.Take(B * m.H * T * T)
		b.acts = b.mlp.NewActs(a, n)
		b.dh, b.dxa, b.dxm = a.Take(n*m.D), a.Take(n*m.D), a.Take(n*m.D)
		b.dq, b.dk, b.dv, b.dqh, b.dkh = a.Take(qd), a.Take(kd), a.Take(kd), a.Take(qd), a.Take(kd)
		b.dqr, b.dkr, b.dao = a.Take(qd), a.Take(kd), a.Take(qd)
		m.blocks = append(m.blocks, b)
	}
	m.norm = NewRMSNorm(m.ps, "llm.norm", m.D, 1e-5)
	m.opt = NewAdamW(m.ps, AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
	m.x, m.dx, m.xf, m.dxf, m.rstdF = a.Take(n*m.D), a.Take(n*m.D), a.Take(n*m.D), a.Take(n*m.D), a.Take(n)
	m.logits, m.dlogits, m.stats = a.Take(n*m.V), a.Take(n*m.V), a.Take(2*n)
	m.scratch = a.Take(B * m.H * T * T)
	m.tokens, m.targets, m.pos, m.docs = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	m.mask = make([]float32, n)
	for i := range n {
		m.tokens[i] = int32(rng.IntN(m.V))
		m.targets[i] = int32(rng.IntN(m.V))
		t := i % T
		m.docs[i] = int32(t / 50) // documents of 50 tokens packed in each row
		m.pos[i] = int32(t % 50)
		m.mask[i] = 1
	}
	return m
}

// step runs forward, backward, clipping and AdamW; it returns the loss.
func (m *refDecoder) step() float64 {
	B, T := m.B, m.T
	m.emb.Forward(m.x, m.tokens)
	for i := range m.blocks {
		b := &m.blocks[i]
		copy(b.xin, m.x)
		b.attnNorm.Forward(b.xa, b.ra, b.xin)
		b.wq.Forward(b.q, b.xa)
		b.wk.Forward(b.k, b.xa)
		b.wv.Forward(b.v, b.xa)
		b.qn.Forward(b.qh, b.rq, b.q)
		b.kn.Forward(b.kh, b.rk, b.k)
		m.rope.Forward(b.qr, b.qh, m.pos, m.H)
		m.rope.Forward(b.kr, b.kh, m.pos, m.KV)
		b.att.Forward(b.ao, b.prob, b.qr, b.kr, b.v, m.docs, B, T, T)
		b.wo.Forward(b.h, b.ao)
		AddTo(b.h, b.xin)
		b.mlpNorm.Forward(b.xm, b.rm, b.h)
		b.mlp.Forward(m.x, b.xm, b.acts)
		AddTo(m.x, b.h)
	}
	m.norm.Forward(m.xf, m.rstdF, m.x)
	m.head.Forward(m.logits, m.xf)
	loss := m.ce.Forward(m.stats, m.logits, m.targets, m.mask)

	m.ps.ZeroGrad()
	clear(m.dlogits)
	m.ce.Backward(m.dlogits, m.logits, m.stats, m.targets, m.mask, 1)
	clear(m.dxf)
	m.head.Backward(m.dxf, m.dlogits, m.xf)
	clear(m.dx)
	m.norm.Backward(m.dx, m.dxf, m.x, m.rstdF)
	for i := len(m.blocks) - 1; i >= 0; i-- {
		b := &m.blocks[i]
		copy(b.dh, m.dx) // residual
		clear(b.dxm)
		b.mlp.Backward(b.dxm, m.dx, b.xm, b.acts)
		b.mlpNorm.Backward(b.dh, b.dxm, b.h, b.rm)
		copy(m.dx, b.dh) // residual into the block input
		clear(b.dao)
		b.wo.Backward(b.dao, b.dh, b.ao)
		for _, s := range [][]float32{b.dqr, b.dkr, b.dv, b.dqh, b.dkh, b.dxa} {
			clear(s)
		}
		b.att.Backward(b.dqr, b.dkr, b.dv, m.scratch, b.dao, b.qr, b.kr, b.v, b.prob, B, T, T)
		m.rope.Backward(b.dqh, b.dqr, m.pos, m.H)
		m.rope.Backward(b.dkh, b.dkr, m.pos, m.KV)
		clear(b.dq)
		clear(b.dk)
		b.qn.Backward(b.dq, b.dqh, b.q, b.rq)
		b.kn.Backward(b.dk, b.dkh, b.k, b.rk)
		b.wq.Backward(b.dxa, b.dq, b.xa)
		b.wk.Backward(b.dxa, b.dk, b.xa)
		b.wv.Backward(b.dxa, b.dv, b.xa)
		b.attnNorm.Backward(m.dx, b.dxa, b.xin, b.ra)
	}
	m.emb.Backward(m.dx, m.tokens)
	m.ps.ClipGradNorm(1)
	m.opt.Step(1e-3)
	return loss
}

// TestStepAllocatesNothing runs a whole small decoder training step with a
// worker pool and checks it makes no heap allocation.
func TestStepAllocatesNothing(t *testing.T) {
	if BLASName() != "openblas" {
		t.Skip("gonum's pure-Go Sgemm starts goroutines of its own for large products")
	}
	pool := NewPool(2)
	defer pool.Close()
	m := newRefDecoder(2, 16, pool)
	m.step()
	if c := allocs.PerRun(3, func() { m.step() }); c.PerRun != 0 {
		t.Fatalf("a training step made %v allocations, want 0; most at:%s", c.PerRun, c.Site)
	}
}

// TestRefDecoderLearns: a few steps on a fixed batch must lower the loss
// (a smoke test that the composed backward points downhill).
func TestRefDecoderLearns(t *testing.T) {
	m := newRefDecoder(2, 16, nil)
	first := m.step()
	var last float64
	for range 10 {
		last = m.step()
	}
	if !(last < first-0.5) {
		t.Fatalf("loss went from %v to %v in 10 steps", first, last)
	}
}
