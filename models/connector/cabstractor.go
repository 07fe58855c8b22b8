package connector

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// cabstractor (Honeybee's C-Abstractor, simplified to pre-activation ResNet
// blocks): Depth ResBlocks on the h×w grid, adaptive average pooling to n×n
// (n = √N), Depth ResBlocks on the n×n grid, then a per-position
// Linear(Dv → D). ResBlock(x) = x + Conv3x3(SiLU(LN2d(Conv3x3(SiLU(LN2d(x)))))),
// convolutions Dv → Dv with padding 1 and bias, LN2d a LayerNorm over the
// channels at each position. Blocks are numbered 0 … 2·Depth−1 across both
// stages. Tensors:
//
//	connector.blocks.{i}.norm1.weight/.bias [Dv]
//	connector.blocks.{i}.conv1.weight       [Dv, Dv, 3, 3]
//	connector.blocks.{i}.conv1.bias         [Dv]
//	connector.blocks.{i}.norm2.weight/.bias [Dv]
//	connector.blocks.{i}.conv2.weight       [Dv, Dv, 3, 3]
//	connector.blocks.{i}.conv2.bias         [Dv]
//	connector.proj.weight                   [D, Dv]
//	connector.proj.bias                     [D]
type cAbstractorKind struct{}

func (cAbstractorKind) validate(c Config) error {
	if c.Depth <= 0 {
		return fmt.Errorf("model.connector.depth must be positive for cabstractor, got %d", c.Depth)
	}
	_, err := c.poolSide(CAbstractor)
	return err
}

func (cAbstractorKind) numParams(c Config) int {
	dv := c.InDim
	block := 2*2*dv + 2*(9*dv*dv+dv)
	return 2*c.Depth*block + c.OutDim*dv + c.OutDim
}

func (cAbstractorKind) flops(c Config, images int) int64 {
	b, dv, d := int64(images), int64(c.InDim), int64(c.OutDim)
	conv := func(positions int) int64 { return 2 * b * int64(positions) * 9 * dv * dv }
	perBlock := func(positions int) int64 { return 2 * conv(positions) }
	return int64(c.Depth)*(perBlock(c.patches())+perBlock(c.Tokens)) + 2*b*int64(c.Tokens)*dv*d
}

// resBlock is one pre-activation ResNet block.
type resBlock[T engine.Float] struct {
	Norm1, Norm2 *engine.LayerNorm2d[T]
	Conv1, Conv2 *engine.Conv2d[T]
}

// resActs is one block's saved activations for up to maxB grids of h×w;
// x, the block input, is the previous stage's output.
type resActs[T engine.Float] struct {
	a1, mean1, rstd1 []T // LN2d(x) [B·h·w, Dv], stats [B·h·w]
	s1, cols1        []T // SiLU(a1), its im2col [B·h·w, 9Dv]
	c1               []T // Conv1 out
	a2, mean2, rstd2 []T
	s2, cols2        []T
	out              []T // x + Conv2(s2)
}

type cAbstractor[T engine.Float] struct {
	base
	Blocks []*resBlock[T] // 0 … Depth−1 before pooling, Depth … 2·Depth−1 after
	Proj   *engine.Linear[T]

	acts        []resActs[T]
	pooled      []T // [B·N, Dv]
	dPre, dPost []T // residual-stream gradients [B·h·w, Dv], [B·N, Dv]
	g1, g2      []T // branch-gradient scratch [B·h·w, Dv]
	dcols       []T // [B·h·w, 9Dv]
}

func newCAbstractor[T engine.Float](ps *engine.Params[T], c Config, _ *engine.Pool) Connector[T] {
	m := &cAbstractor[T]{base: base{name: CAbstractor, cfg: c, kind: cAbstractorKind{}}}
	dv := c.InDim
	for i := range 2 * c.Depth {
		name := fmt.Sprintf("%s.blocks.%d", Prefix, i)
		m.Blocks = append(m.Blocks, &resBlock[T]{
			Norm1: engine.NewLayerNorm2d(ps, name+".norm1", dv, normEps),
			Conv1: engine.NewConv2d(ps, name+".conv1", dv, dv, 3, 1, 1, true),
			Norm2: engine.NewLayerNorm2d(ps, name+".norm2", dv, normEps),
			Conv2: engine.NewConv2d(ps, name+".conv2", dv, dv, 3, 1, 1, true),
		})
	}
	m.Proj = engine.NewLinear(ps, Prefix+".proj", dv, c.OutDim, true)
	return m
}

// Init scales conv2, the residual branch's output, by 1/sqrt(2·blocks) as
// the ViT and decoder do, so the stream's variance does not grow with depth.
func (m *cAbstractor[T]) Init(rng *rand.Rand) {
	out := initStd / math.Sqrt(2*float64(len(m.Blocks)))
	for _, b := range m.Blocks {
		b.Norm1.Reset()
		b.Conv1.W.Normal(rng, initStd)
		b.Conv1.B.Fill(0)
		b.Norm2.Reset()
		b.Conv2.W.Normal(rng, out)
		b.Conv2.B.Fill(0)
	}
	m.Proj.Init(rng, initStd)
}

// stage is the grid size block i runs on.
func (m *cAbstractor[T]) stage(i int) (h, w int) {
	if i < m.cfg.Depth {
		return m.cfg.GridH, m.cfg.GridW
	}
	n := m.cfg.side()
	return n, n
}

func (m *cAbstractor[T]) Build(a *engine.Arena[T], maxImages int) {
	m.build(maxImages)
	dv := m.cfg.InDim
	m.acts = make([]resActs[T], len(m.Blocks))
	for i := range m.Blocks {
		h, w := m.stage(i)
		rows := maxImages * h * w
		m.acts[i] = resActs[T]{
			a1: a.Take(rows * dv), mean1: a.Take(rows), rstd1: a.Take(rows),
			s1: a.Take(rows * dv), cols1: a.Take(rows * 9 * dv), c1: a.Take(rows * dv),
			a2: a.Take(rows * dv), mean2: a.Take(rows), rstd2: a.Take(rows),
			s2: a.Take(rows * dv), cols2: a.Take(rows * 9 * dv), out: a.Take(rows * dv),
		}
	}
	pre, post := maxImages*m.cfg.patches()*dv, maxImages*m.cfg.Tokens*dv
	m.pooled = a.Take(post)
	m.dPre, m.dPost = a.Take(pre), a.Take(post)
	m.g1, m.g2 = a.Take(pre), a.Take(pre)
	m.dcols = a.Take(pre * 9)
}

// blockInput is the input of block i for a batch of B: the grid, the pooled
// grid, or the previous block's output.
func (m *cAbstractor[T]) blockInput(i, B int, grid []T) []T {
	switch {
	case i == 0:
		return grid
	case i == m.cfg.Depth:
		return m.pooled[:B*m.cfg.Tokens*m.cfg.InDim]
	}
	h, w := m.stage(i)
	return m.acts[i-1].out[:B*h*w*m.cfg.InDim]
}

func (m *cAbstractor[T]) Forward(out, grid []T) {
	c := m.cfg
	B := forwardBatch(&m.base, out, grid)
	n := c.side()
	for i, b := range m.Blocks {
		if i == c.Depth {
			last := m.acts[i-1].out[:B*c.patches()*c.InDim]
			engine.AdaptiveAvgPool2d(m.pooled[:B*c.Tokens*c.InDim], last, B, c.GridH, c.GridW, c.InDim, n, n)
		}
		h, w := m.stage(i)
		m.blockForward(b, &m.acts[i], m.blockInput(i, B, grid), B, h, w)
	}
	m.Proj.Forward(out, m.acts[len(m.Blocks)-1].out[:B*c.Tokens*c.InDim])
}

func (m *cAbstractor[T]) blockForward(b *resBlock[T], s *resActs[T], x []T, B, h, w int) {
	dv := m.cfg.InDim
	rows := B * h * w
	a1, s1, c1 := s.a1[:rows*dv], s.s1[:rows*dv], s.c1[:rows*dv]
	a2, s2, out := s.a2[:rows*dv], s.s2[:rows*dv], s.out[:rows*dv]
	b.Norm1.Forward(a1, s.mean1[:rows], s.rstd1[:rows], x)
	engine.SiLUForward(s1, a1)
	b.Conv1.Forward(c1, s.cols1[:rows*9*dv], s1, B, h, w)
	b.Norm2.Forward(a2, s.mean2[:rows], s.rstd2[:rows], c1)
	engine.SiLUForward(s2, a2)
	b.Conv2.Forward(out, s.cols2[:rows*9*dv], s2, B, h, w)
	engine.AddTo(out, x)
}

func (m *cAbstractor[T]) Backward(dgrid, dout, grid []T) {
	c := m.cfg
	B := backwardBatch(&m.base, dgrid, dout, grid)
	dPost, dPre := m.dPost[:B*c.Tokens*c.InDim], m.dPre[:B*c.patches()*c.InDim]
	clear(dPost)
	m.Proj.Backward(dPost, dout, m.acts[len(m.Blocks)-1].out[:len(dPost)])
	for i := len(m.Blocks) - 1; i >= 0; i-- {
		d := dPost
		if i < c.Depth {
			d = dPre
		}
		if i == c.Depth-1 {
			n := c.side()
			clear(dPre)
			engine.AdaptiveAvgPool2dBackward(dPre, dPost, B, c.GridH, c.GridW, c.InDim, n, n)
		}
		h, w := m.stage(i)
		m.blockBackward(m.Blocks[i], &m.acts[i], d, m.blockInput(i, B, grid), B, h, w)
	}
	if dgrid != nil {
		engine.AddTo(dgrid, dPre)
	}
}

// blockBackward turns dx, the gradient of the block's output, into the
// gradient of its input x in place (the residual passes dx through; the
// branch adds its part) and adds the block's parameter gradients.
func (m *cAbstractor[T]) blockBackward(b *resBlock[T], s *resActs[T], dx []T, x []T, B, h, w int) {
	dv := m.cfg.InDim
	rows := B * h * w
	n := rows * dv
	g1, g2, dcols := m.g1[:n], m.g2[:n], m.dcols[:n*9]
	clear(g1)
	b.Conv2.Backward(g1, dx, s.cols2[:n*9], dcols, B, h, w) // d s2
	clear(g2)
	engine.SiLUBackward(g2, g1, s.a2[:n]) // d a2
	clear(g1)
	b.Norm2.Backward(g1, g2, s.c1[:n], s.mean2[:rows], s.rstd2[:rows]) // d c1
	clear(g2)
	b.Conv1.Backward(g2, g1, s.cols1[:n*9], dcols, B, h, w) // d s1
	clear(g1)
	engine.SiLUBackward(g1, g2, s.a1[:n]) // d a1
	b.Norm1.Backward(dx, g1, x, s.mean1[:rows], s.rstd1[:rows])
}
