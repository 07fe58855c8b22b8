package models

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/ifprune"
)

// normEps is MODEL-SPEC's epsilon for every RMSNorm and LayerNorm.
const normEps = 1e-5

// decoder is the language model of MODEL-SPEC "Decoder": L pre-norm blocks
// of grouped-query attention and SwiGLU, final RMSNorm, tied embedding.
type decoder struct {
	cfg    DecoderConfig
	embed  *engine.Embedding[float32]
	blocks []*block
	norm   *engine.RMSNorm[float32]
	head   *engine.Linear[float32] // tied: LinearOf(embed.W)
	rope   *engine.RoPE[float32]
	ce     *engine.CrossEntropy[float32]
	prune  *pruner // nil unless model.decoder.ffn_pruning is static or instruction
}

type block struct {
	attnNorm, mlpNorm *engine.RMSNorm[float32]
	wq, wk, wv, wo    *engine.Linear[float32]
	qNorm, kNorm      *engine.RMSNorm[float32] // nil without qk_norm
	attn              *engine.Attention[float32]
	mlp               *engine.SwiGLU[float32]
}

func newDecoder(ps *engine.Params[float32], c DecoderConfig, pool *engine.Pool) *decoder {
	hd := c.HeadDim()
	d := &decoder{cfg: c,
		embed: engine.NewEmbedding(ps, "llm.tok_embed", c.Vocab, c.Width),
		rope:  engine.NewRoPE[float32](hd, c.RopeBase, c.MaxSeq),
		ce:    engine.NewCrossEntropy[float32](c.Vocab, pool),
	}
	d.rope.Pool = pool
	for i := range c.Layers {
		pre := fmt.Sprintf("llm.layers.%d.", i)
		b := &block{
			attnNorm: engine.NewRMSNorm(ps, pre+"attn_norm", c.Width, normEps),
			wq:       engine.NewLinear(ps, pre+"attn.wq", c.Width, c.Heads*hd, false),
			wk:       engine.NewLinear(ps, pre+"attn.wk", c.Width, c.KVHeads*hd, false),
			wv:       engine.NewLinear(ps, pre+"attn.wv", c.Width, c.KVHeads*hd, false),
			wo:       engine.NewLinear(ps, pre+"attn.wo", c.Heads*hd, c.Width, false),
			attn:     engine.NewAttention[float32](c.Heads, c.KVHeads, hd, true, pool),
		}
		if c.QKNorm {
			b.qNorm = engine.NewRMSNorm(ps, pre+"attn.q_norm", hd, normEps)
			b.kNorm = engine.NewRMSNorm(ps, pre+"attn.k_norm", hd, normEps)
		}
		b.mlpNorm = engine.NewRMSNorm(ps, pre+"mlp_norm", c.Width, normEps)
		b.mlp = engine.NewSwiGLU(ps, pre+"mlp", c.Width, c.FFNHidden)
		d.blocks = append(d.blocks, b)
	}
	d.norm = engine.NewRMSNorm(ps, "llm.norm", c.Width, normEps)
	d.head = engine.LinearOf(d.embed.W, nil)
	d.prune = newPruner(ps, c, d.blocks)
	return d
}

// init draws MODEL-SPEC's initial weights: normal(0, 0.02), output
// projections (wo, w2) scaled by 1/sqrt(2·layers); norms are already ones.
func (d *decoder) init(rng *rand.Rand) {
	out := 0.02 / math.Sqrt(2*float64(d.cfg.Layers))
	d.embed.W.Normal(rng, 0.02)
	for _, b := range d.blocks {
		b.wq.W.Normal(rng, 0.02)
		b.wk.W.Normal(rng, 0.02)
		b.wv.W.Normal(rng, 0.02)
		b.wo.W.Normal(rng, out)
		b.mlp.W1.W.Normal(rng, 0.02)
		b.mlp.W3.W.Normal(rng, 0.02)
		b.mlp.W2.W.Normal(rng, out)
	}
}

// decoderActs are one (B, T)'s activations, saved for backward, and the
// backward scratch. n = B·T rows; qd = H·hd, kvd = KV·hd.
type decoderActs struct {
	B, T    int
	xs      [][]float32 // [L+1][n, D]: xs[0] the embeddings, xs[l+1] block l's output
	blocks  []blockActs
	fn      []float32 // [n, D] final norm output
	frstd   []float32 // [n]
	logits  []float32 // [n, V]
	ceStats []float32 // [2n] cross-entropy row statistics
	branch  []float32 // [n, D] a residual branch's output before it is added (forward scratch)

	dx, dh, dnorm       []float32 // [n, D]
	dlogits             []float32 // [n, V]
	datt                []float32 // [n, qd]
	dq, dqRot, dqNormed []float32 // [n, qd]
	dk, dkRot, dkNormed []float32 // [n, kvd]
	dv                  []float32 // [n, kvd]
	scratch             []float32 // [B, H, T, T]
}

type blockActs struct {
	an, arstd        []float32 // [n, D], [n]
	q, k, v          []float32 // projections: [n, qd], [n, kvd], [n, kvd]
	qRot, kRot       []float32 // after QK-norm and RoPE
	qNormed, kNormed []float32 // after QK-norm, before RoPE (nil without qk_norm)
	qrstd, krstd     []float32 // [n·H], [n·KV]
	probs            []float32 // [B, H, T, T]
	att              []float32 // [n, qd] attention output before wo
	h                []float32 // [n, D] residual after attention
	mn, mrstd        []float32 // [n, D], [n]
	mlp              *engine.SwiGLUActs[float32]
	pmlp             *ifprune.MaskedActs[float32] // instead of mlp when the FFN is masked
}

func (d *decoder) newActs(a *engine.Arena[float32], B, T int) *decoderActs {
	c := d.cfg
	n, D, hd := B*T, c.Width, c.HeadDim()
	qd, kvd := c.Heads*hd, c.KVHeads*hd
	s := &decoderActs{B: B, T: T}
	for range c.Layers + 1 {
		s.xs = append(s.xs, a.Take(n*D))
	}
	for _, b := range d.blocks {
		ba := blockActs{
			an: a.Take(n * D), arstd: a.Take(n),
			q: a.Take(n * qd), k: a.Take(n * kvd), v: a.Take(n * kvd),
			qRot: a.Take(n * qd), kRot: a.Take(n * kvd),
			probs: a.Take(B * c.Heads * T * T),
			att:   a.Take(n * qd), h: a.Take(n * D),
			mn: a.Take(n * D), mrstd: a.Take(n),
		}
		if d.prune.masked() {
			ba.pmlp = d.prune.ffn[len(s.blocks)].NewActs(a, n, nil)
		} else {
			ba.mlp = b.mlp.NewActs(a, n)
		}
		if c.QKNorm {
			ba.qNormed, ba.kNormed = a.Take(n*qd), a.Take(n*kvd)
			ba.qrstd, ba.krstd = a.Take(n*c.Heads), a.Take(n*c.KVHeads)
		}
		s.blocks = append(s.blocks, ba)
	}
	s.fn, s.frstd, s.branch = a.Take(n*D), a.Take(n), a.Take(n*D)
	s.logits, s.ceStats = a.Take(n*c.Vocab), a.Take(2*n)
	s.dx, s.dh, s.dnorm = a.Take(n*D), a.Take(n*D), a.Take(n*D)
	s.dlogits = a.Take(n * c.Vocab)
	s.datt, s.dq, s.dqRot = a.Take(n*qd), a.Take(n*qd), a.Take(n*qd)
	s.dk, s.dkRot, s.dv = a.Take(n*kvd), a.Take(n*kvd), a.Take(n*kvd)
	if c.QKNorm {
		s.dqNormed, s.dkNormed = a.Take(n*qd), a.Take(n*kvd)
	}
	s.scratch = a.Take(B * c.Heads * T * T)
	if d.prune != nil {
		d.prune.build(a, n, c.MaxSeq)
		for i := range s.blocks {
			if s.blocks[i].pmlp != nil {
				s.blocks[i].pmlp.Scratch = d.prune.scratch
			}
		}
	}
	return s
}

// forward runs the blocks on s.xs[0] (already holding the input embeddings)
// and returns the masked mean cross-entropy.
func (d *decoder) forward(s *decoderActs, pos, docs, targets []int32, mask []float32) float64 {
	c := d.cfg
	for l, b := range d.blocks {
		x, ba := s.xs[l], &s.blocks[l]
		b.attnNorm.Forward(ba.an, ba.arstd, x)
		b.wq.Forward(ba.q, ba.an)
		b.wk.Forward(ba.k, ba.an)
		b.wv.Forward(ba.v, ba.an)
		qIn, kIn := ba.q, ba.k
		if b.qNorm != nil {
			b.qNorm.Forward(ba.qNormed, ba.qrstd, ba.q)
			b.kNorm.Forward(ba.kNormed, ba.krstd, ba.k)
			qIn, kIn = ba.qNormed, ba.kNormed
		}
		d.rope.Forward(ba.qRot, qIn, pos, c.Heads)
		d.rope.Forward(ba.kRot, kIn, pos, c.KVHeads)
		b.attn.Forward(ba.att, ba.probs, ba.qRot, ba.kRot, ba.v, docs, s.B, s.T, s.T)
		b.wo.Forward(s.branch, ba.att)
		engine.Add(ba.h, x, s.branch)
		b.mlpNorm.Forward(ba.mn, ba.mrstd, ba.h)
		if p := d.prune; p.masked() {
			p.ffn[l].Forward(s.branch, ba.mn, p.masks[l], p.group, ba.pmlp)
		} else {
			b.mlp.Forward(s.branch, ba.mn, ba.mlp)
		}
		engine.Add(s.xs[l+1], ba.h, s.branch)
	}
	d.norm.Forward(s.fn, s.frstd, s.xs[c.Layers])
	d.head.Forward(s.logits, s.fn)
	return d.ce.Forward(s.ceStats, s.logits, targets, mask)
}

// backward adds every decoder parameter's gradient and leaves the gradient
// of the input embeddings (s.xs[0]) in s.dx.
func (d *decoder) backward(s *decoderActs, pos, targets []int32, mask []float32) {
	c := d.cfg
	clear(s.dlogits)
	d.ce.Backward(s.dlogits, s.logits, s.ceStats, targets, mask, 1)
	clear(s.dnorm)
	d.head.Backward(s.dnorm, s.dlogits, s.fn)
	clear(s.dx)
	d.norm.Backward(s.dx, s.dnorm, s.xs[c.Layers], s.frstd)
	for l := c.Layers - 1; l >= 0; l-- {
		b, ba, x := d.blocks[l], &s.blocks[l], s.xs[l]
		// s.dx holds ∂L/∂xs[l+1]; the residual passes it to h unchanged.
		copy(s.dh, s.dx)
		clear(s.dnorm)
		if p := d.prune; p.masked() {
			p.ffn[l].Backward(s.dnorm, p.dmasks[l], s.dx, ba.mn, p.masks[l], p.group, ba.pmlp)
		} else {
			b.mlp.Backward(s.dnorm, s.dx, ba.mn, ba.mlp)
		}
		b.mlpNorm.Backward(s.dh, s.dnorm, ba.h, ba.mrstd)
		// s.dh holds ∂L/∂h; the residual passes it to x unchanged.
		copy(s.dx, s.dh)
		clear(s.datt)
		b.wo.Backward(s.datt, s.dh, ba.att)
		clear(s.dqRot)
		clear(s.dkRot)
		clear(s.dv)
		b.attn.Backward(s.dqRot, s.dkRot, s.dv, s.scratch, s.datt, ba.qRot, ba.kRot, ba.v, ba.probs, s.B, s.T, s.T)
		clear(s.dq)
		clear(s.dk)
		if b.qNorm != nil {
			clear(s.dqNormed)
			clear(s.dkNormed)
			d.rope.Backward(s.dqNormed, s.dqRot, pos, c.Heads)
			d.rope.Backward(s.dkNormed, s.dkRot, pos, c.KVHeads)
			b.qNorm.Backward(s.dq, s.dqNormed, ba.q, ba.qrstd)
			b.kNorm.Backward(s.dk, s.dkNormed, ba.k, ba.krstd)
		} else {
			d.rope.Backward(s.dq, s.dqRot, pos, c.Heads)
			d.rope.Backward(s.dk, s.dkRot, pos, c.KVHeads)
		}
		clear(s.dnorm)
		b.wq.Backward(s.dnorm, s.dq, ba.an)
		b.wk.Backward(s.dnorm, s.dk, ba.an)
		b.wv.Backward(s.dnorm, s.dv, ba.an)
		b.attnNorm.Backward(s.dx, s.dnorm, x, ba.arstd)
	}
	if d.prune != nil {
		d.prune.backward()
	}
}
