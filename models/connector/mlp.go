package connector

import (
	"fmt"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// mlp (LLaVA-1.5's projector): per patch Linear(Dv → D), GELU (erf),
// Linear(D → D); one token per patch, so N = h·w. Tensors:
//
//	connector.fc1.weight [D, Dv]
//	connector.fc1.bias   [D]
//	connector.fc2.weight [D, D]
//	connector.fc2.bias   [D]
type mlpKind struct{}

func (mlpKind) validate(c Config) error {
	if c.Tokens != c.patches() {
		return fmt.Errorf("model.connector.tokens %d must equal the patch count %d×%d = %d for mlp (one token per patch)",
			c.Tokens, c.GridH, c.GridW, c.patches())
	}
	return nil
}

func (mlpKind) numParams(c Config) int {
	return c.OutDim*c.InDim + c.OutDim + c.OutDim*c.OutDim + c.OutDim
}

func (mlpKind) flops(c Config, images int) int64 {
	rows, dv, d := int64(images)*int64(c.patches()), int64(c.InDim), int64(c.OutDim)
	return 2*rows*dv*d + 2*rows*d*d
}

type mlp[T engine.Float] struct {
	base
	MLP *engine.MLP[T]

	hid, act, dact, dhid []T // [B·N, D]: pre- and post-GELU and their gradients
}

func newMLP[T engine.Float](ps *engine.Params[T], c Config, _ *engine.Pool) Connector[T] {
	return &mlp[T]{
		base: base{name: MLP, cfg: c, kind: mlpKind{}},
		MLP:  engine.NewMLP(ps, Prefix, c.InDim, c.OutDim, c.OutDim),
	}
}

// Init leaves fc2 unscaled: it is not a residual branch.
func (m *mlp[T]) Init(rng *rand.Rand) {
	m.MLP.FC1.Init(rng, initStd)
	m.MLP.FC2.Init(rng, initStd)
}

func (m *mlp[T]) Build(a *engine.Arena[T], maxImages int) {
	m.build(maxImages)
	k := maxImages * m.cfg.Tokens * m.cfg.OutDim
	m.hid, m.act, m.dact, m.dhid = a.Take(k), a.Take(k), a.Take(k), a.Take(k)
}

func (m *mlp[T]) Forward(out, grid []T) {
	B := forwardBatch(&m.base, out, grid)
	k := B * m.cfg.Tokens * m.cfg.OutDim
	hid, act := m.hid[:k], m.act[:k]
	m.MLP.FC1.Forward(hid, grid)
	engine.GELUForward(act, hid)
	m.MLP.FC2.Forward(out, act)
}

func (m *mlp[T]) Backward(dgrid, dout, grid []T) {
	B := backwardBatch(&m.base, dgrid, dout, grid)
	k := B * m.cfg.Tokens * m.cfg.OutDim
	hid, act, dact, dhid := m.hid[:k], m.act[:k], m.dact[:k], m.dhid[:k]
	clear(dact)
	m.MLP.FC2.Backward(dact, dout, act)
	clear(dhid)
	engine.GELUBackward(dhid, dact, hid)
	m.MLP.FC1.Backward(dgrid, dhid, grid)
}
