package connector

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

// "A fifth connector touches one file plus a registry line": this file is
// that one file for a toy connector, "first" (the first N patches of the
// grid through Linear(Dv → D)), and TestFifthConnector adds the registry
// line. Validation, counting, both element types and the gradient check
// then work through the registry with nothing else changed.

type firstKind struct{}

func (firstKind) validate(c Config) error {
	if c.Tokens > c.patches() {
		return fmt.Errorf("model.connector.tokens %d is more than the %d patches", c.Tokens, c.patches())
	}
	return nil
}

func (firstKind) numParams(c Config) int { return c.OutDim*c.InDim + c.OutDim }

func (firstKind) flops(c Config, images int) int64 {
	return 2 * int64(images) * int64(c.Tokens) * int64(c.InDim) * int64(c.OutDim)
}

type first[T engine.Float] struct {
	base
	Proj  *engine.Linear[T]
	x, dx []T // [B·N, Dv] the kept patches and their gradient
}

func newFirst[T engine.Float](ps *engine.Params[T], c Config, _ *engine.Pool) Connector[T] {
	return &first[T]{base: base{name: "first", cfg: c, kind: firstKind{}},
		Proj: engine.NewLinear(ps, Prefix+".proj", c.InDim, c.OutDim, true)}
}

func (m *first[T]) Init(rng *rand.Rand) { m.Proj.Init(rng, initStd) }

func (m *first[T]) Build(a *engine.Arena[T], maxImages int) {
	m.build(maxImages)
	k := maxImages * m.cfg.Tokens * m.cfg.InDim
	m.x, m.dx = a.Take(k), a.Take(k)
}

func (m *first[T]) Forward(out, grid []T) {
	c := m.cfg
	B := forwardBatch(&m.base, out, grid)
	per, keep := c.patches()*c.InDim, c.Tokens*c.InDim
	for b := range B {
		copy(m.x[b*keep:(b+1)*keep], grid[b*per:])
	}
	m.Proj.Forward(out, m.x[:B*keep])
}

func (m *first[T]) Backward(dgrid, dout, grid []T) {
	c := m.cfg
	B := backwardBatch(&m.base, dgrid, dout, grid)
	per, keep := c.patches()*c.InDim, c.Tokens*c.InDim
	x := m.x[:B*keep]
	if dgrid == nil {
		m.Proj.Backward(nil, dout, x)
		return
	}
	dx := m.dx[:len(x)]
	clear(dx)
	m.Proj.Backward(dx, dout, x)
	for b := range B {
		engine.AddTo(dgrid[b*per:b*per+keep], dx[b*keep:(b+1)*keep])
	}
}

func TestFifthConnector(t *testing.T) {
	registry["first"] = builder{firstKind{}, newFirst[float32], newFirst[float64]} // the registry line
	t.Cleanup(func() { delete(registry, "first") })

	cfg := Config{Tokens: 3, GridH: 2, GridW: 3, InDim: 4, OutDim: 5}
	if got := strings.Join(Kinds(), ","); got != "attnpool,avgpool,cabstractor,first,mlp" {
		t.Errorf("Kinds() = %s", got)
	}
	bad := cfg
	bad.Tokens = 7
	if err := Validate("first", bad); err == nil || !strings.Contains(err.Error(), "model.connector.tokens 7") {
		t.Errorf("Validate(tokens 7) = %v, want an error naming model.connector.tokens", err)
	}
	if _, err := New("first", engine.NewParams[float32](), cfg, nil); err != nil {
		t.Fatalf("float32: %v", err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	const B = 2
	c, ps := build(t, "first", cfg, rng, B)
	if n, err := NumParams("first", cfg); err != nil || n != ps.Len() {
		t.Errorf("NumParams %d (%v), registered %d", n, err, ps.Len())
	}
	if f, b, err := FLOPs("first", cfg, B); err != nil || f != 2*B*3*4*5 || b != 2*f {
		t.Errorf("FLOPs %d, %d (%v)", f, b, err)
	}
	grid := enginetest.Randn(rng, B*cfg.GridH*cfg.GridW*cfg.InDim, 1)
	dgrid := make([]float64, len(grid))
	out := make([]float64, B*cfg.Tokens*cfg.OutDim)
	fwd := func() []float64 { c.Forward(out, grid); return out }
	bwd := func(g []float64) { ps.ZeroGrad(); c.Forward(out, grid); c.Backward(dgrid, g, grid) }
	inputs := append(enginetest.ParamInputs(ps), enginetest.Input{Name: "grid", X: grid, DX: dgrid})
	if worst, where := enginetest.GradCheck(rng, fwd, bwd, inputs); !(worst < enginetest.GradBound) {
		t.Errorf("worst relative gradient error %.3g in %s, want < %g", worst, where, enginetest.GradBound)
	}
}
