package connector

import (
	"fmt"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// attnpool: N learned queries cross-attend, with Hv heads, to the
// LayerNorm-ed patches; softmax over all h·w patches; then Linear(Dv → D).
// q = Q·Wqᵀ + bq (the same for every image), k = LN(p)·Wkᵀ + bk,
// v = LN(p)·Wvᵀ + bv, o = attention·Woᵀ + bo. Tensors:
//
//	connector.queries          [N, Dv]
//	connector.norm.weight/.bias [Dv]
//	connector.attn.wq.weight   [Dv, Dv]  (.bias [Dv]; likewise wk, wv, wo)
//	connector.proj.weight      [D, Dv]
//	connector.proj.bias        [D]
type attnPoolKind struct{}

func (attnPoolKind) validate(c Config) error {
	if c.Heads <= 0 || c.InDim%c.Heads != 0 {
		return fmt.Errorf("model.vision.heads %d must be positive and divide model.vision.width %d (attnpool uses the encoder's heads)",
			c.Heads, c.InDim)
	}
	if c.Tokens > c.patches() {
		return fmt.Errorf("model.connector.tokens %d is more than the %d×%d = %d patches attnpool pools from",
			c.Tokens, c.GridH, c.GridW, c.patches())
	}
	return nil
}

func (attnPoolKind) numParams(c Config) int {
	dv := c.InDim
	return c.Tokens*dv + 2*dv + 4*(dv*dv+dv) + c.OutDim*dv + c.OutDim
}

func (attnPoolKind) flops(c Config, images int) int64 {
	b, n, p := int64(images), int64(c.Tokens), int64(c.patches())
	dv, d := int64(c.InDim), int64(c.OutDim)
	return 2*n*dv*dv + // q, computed once for the batch
		2*2*b*p*dv*dv + // k, v
		2*2*b*n*p*dv + // q·kᵀ and p·v over all heads
		2*b*n*dv*dv + // wo
		2*b*n*dv*d // proj
}

type attnPool[T engine.Float] struct {
	base
	Queries        *engine.Param[T] // [N, Dv]
	Norm           *engine.LayerNorm[T]
	Wq, Wk, Wv, Wo *engine.Linear[T]
	Attn           *engine.Attention[T]
	Proj           *engine.Linear[T]

	q1, dq1       []T // [N, Dv]: the projected queries, shared by every image
	a, mean, rstd []T // LN(grid) [B·P, Dv], stats [B·P]
	k, v          []T // [B·P, Dv]
	q             []T // q1 repeated per image [B·N, Dv]
	o, y          []T // attention out, after wo [B·N, Dv]
	probs         []T // [B, H, N, P]
	dy, do, dq    []T // [B·N, Dv]
	dk, dv, da    []T // [B·P, Dv]
	scratch       []T // [B, H, N, P]
}

func newAttnPool[T engine.Float](ps *engine.Params[T], c Config, pool *engine.Pool) Connector[T] {
	dv := c.InDim
	m := &attnPool[T]{
		base:    base{name: AttnPool, cfg: c, kind: attnPoolKind{}},
		Queries: ps.Add(Prefix+".queries", c.Tokens, dv),
		Norm:    engine.NewLayerNorm(ps, Prefix+".norm", dv, normEps),
		Wq:      engine.NewLinear(ps, Prefix+".attn.wq", dv, dv, true),
		Wk:      engine.NewLinear(ps, Prefix+".attn.wk", dv, dv, true),
		Wv:      engine.NewLinear(ps, Prefix+".attn.wv", dv, dv, true),
		Wo:      engine.NewLinear(ps, Prefix+".attn.wo", dv, dv, true),
		Attn:    engine.NewAttention[T](c.Heads, c.Heads, dv/c.Heads, false, pool),
		Proj:    engine.NewLinear(ps, Prefix+".proj", dv, c.OutDim, true),
	}
	return m
}

// Init: wo and proj are not residual branches here, so no depth scaling.
func (m *attnPool[T]) Init(rng *rand.Rand) {
	m.Queries.Normal(rng, initStd)
	m.Norm.Reset()
	for _, l := range []*engine.Linear[T]{m.Wq, m.Wk, m.Wv, m.Wo, m.Proj} {
		l.Init(rng, initStd)
	}
}

func (m *attnPool[T]) Build(a *engine.Arena[T], maxImages int) {
	m.build(maxImages)
	c := m.cfg
	dv, n, p := c.InDim, c.Tokens, c.patches()
	rowsN, rowsP := maxImages*n, maxImages*p
	att := maxImages * c.Heads * n * p
	m.q1, m.dq1 = a.Take(n*dv), a.Take(n*dv)
	m.a, m.mean, m.rstd = a.Take(rowsP*dv), a.Take(rowsP), a.Take(rowsP)
	m.k, m.v = a.Take(rowsP*dv), a.Take(rowsP*dv)
	m.q, m.o, m.y = a.Take(rowsN*dv), a.Take(rowsN*dv), a.Take(rowsN*dv)
	m.probs, m.scratch = a.Take(att), a.Take(att)
	m.dy, m.do, m.dq = a.Take(rowsN*dv), a.Take(rowsN*dv), a.Take(rowsN*dv)
	m.dk, m.dv, m.da = a.Take(rowsP*dv), a.Take(rowsP*dv), a.Take(rowsP*dv)
}

func (m *attnPool[T]) Forward(out, grid []T) {
	c := m.cfg
	B := forwardBatch(&m.base, out, grid)
	dv, n, p := c.InDim, c.Tokens, c.patches()
	rowsN, rowsP := B*n*dv, B*p*dv
	a, k, v := m.a[:rowsP], m.k[:rowsP], m.v[:rowsP]
	q, o, y := m.q[:rowsN], m.o[:rowsN], m.y[:rowsN]

	m.Norm.Forward(a, m.mean[:B*p], m.rstd[:B*p], grid)
	m.Wk.Forward(k, a)
	m.Wv.Forward(v, a)
	m.Wq.Forward(m.q1, m.Queries.Data())
	for b := range B {
		copy(q[b*n*dv:(b+1)*n*dv], m.q1)
	}
	m.Attn.Forward(o, m.probs[:B*c.Heads*n*p], q, k, v, nil, B, n, p)
	m.Wo.Forward(y, o)
	m.Proj.Forward(out, y)
}

func (m *attnPool[T]) Backward(dgrid, dout, grid []T) {
	c := m.cfg
	B := backwardBatch(&m.base, dgrid, dout, grid)
	dv, n, p := c.InDim, c.Tokens, c.patches()
	rowsN, rowsP := B*n*dv, B*p*dv
	a, k, v := m.a[:rowsP], m.k[:rowsP], m.v[:rowsP]
	q, o, y := m.q[:rowsN], m.o[:rowsN], m.y[:rowsN]
	dy, do, dq := m.dy[:rowsN], m.do[:rowsN], m.dq[:rowsN]
	dk, dvv, da := m.dk[:rowsP], m.dv[:rowsP], m.da[:rowsP]
	att := B * c.Heads * n * p

	clear(dy)
	m.Proj.Backward(dy, dout, y)
	clear(do)
	m.Wo.Backward(do, dy, o)
	clear(dq)
	clear(dk)
	clear(dvv)
	m.Attn.Backward(dq, dk, dvv, m.scratch[:att], do, q, k, v, m.probs[:att], B, n, p)
	// Every image used the same projected queries: their gradient is the sum.
	clear(m.dq1)
	for b := range B {
		engine.AddTo(m.dq1, dq[b*n*dv:(b+1)*n*dv])
	}
	var dQueries []T
	if !m.Queries.Frozen {
		dQueries = m.Queries.Grad()
	}
	m.Wq.Backward(dQueries, m.dq1, m.Queries.Data())
	clear(da)
	m.Wk.Backward(da, dk, a)
	m.Wv.Backward(da, dvv, a)
	m.Norm.Backward(dgrid, da, grid, m.mean[:B*p], m.rstd[:B*p])
}
