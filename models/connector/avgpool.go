package connector

import (
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// avgpool: adaptive average pooling of the patch grid to n×n (n = √N), then
// a per-token Linear(Dv → D). Tensors:
//
//	connector.proj.weight [D, Dv]
//	connector.proj.bias   [D]
type avgPoolKind struct{}

func (avgPoolKind) validate(c Config) error {
	_, err := c.poolSide(AvgPool)
	return err
}

func (avgPoolKind) numParams(c Config) int { return c.OutDim*c.InDim + c.OutDim }

func (avgPoolKind) flops(c Config, images int) int64 {
	return 2 * int64(images) * int64(c.Tokens) * int64(c.InDim) * int64(c.OutDim)
}

type avgPool[T engine.Float] struct {
	base
	Proj *engine.Linear[T]

	pooled, dpooled []T // [B·N, Dv]
}

func newAvgPool[T engine.Float](ps *engine.Params[T], c Config, _ *engine.Pool) Connector[T] {
	return &avgPool[T]{
		base: base{name: AvgPool, cfg: c, kind: avgPoolKind{}},
		Proj: engine.NewLinear(ps, Prefix+".proj", c.InDim, c.OutDim, true),
	}
}

func (m *avgPool[T]) Init(rng *rand.Rand) { m.Proj.Init(rng, initStd) }

func (m *avgPool[T]) Build(a *engine.Arena[T], maxImages int) {
	m.build(maxImages)
	k := maxImages * m.cfg.Tokens * m.cfg.InDim
	m.pooled, m.dpooled = a.Take(k), a.Take(k)
}

func (m *avgPool[T]) Forward(out, grid []T) {
	c := m.cfg
	B := forwardBatch(&m.base, out, grid)
	n := c.side()
	pooled := m.pooled[:B*c.Tokens*c.InDim]
	engine.AdaptiveAvgPool2d(pooled, grid, B, c.GridH, c.GridW, c.InDim, n, n)
	m.Proj.Forward(out, pooled)
}

func (m *avgPool[T]) Backward(dgrid, dout, grid []T) {
	c := m.cfg
	B := backwardBatch(&m.base, dgrid, dout, grid)
	pooled := m.pooled[:B*c.Tokens*c.InDim]
	if dgrid == nil {
		m.Proj.Backward(nil, dout, pooled)
		return
	}
	dpooled := m.dpooled[:len(pooled)]
	clear(dpooled)
	m.Proj.Backward(dpooled, dout, pooled)
	n := c.side()
	engine.AdaptiveAvgPool2dBackward(dgrid, dpooled, B, c.GridH, c.GridW, c.InDim, n, n)
}
