package engine

// SwiGLU is the decoder MLP: out = (silu(x·W1ᵀ) ⊙ (x·W3ᵀ))·W2ᵀ.
type SwiGLU[T Float] struct {
	Dim, Hidden int
	W1, W3, W2  *Linear[T] // W1, W3 [Hidden, Dim]; W2 [Dim, Hidden]; no biases
	ew          elementwiseJob[T]
}

// SwiGLUActs holds one SwiGLU application's saved activations and backward
// scratch, each [n, Hidden].
type SwiGLUActs[T Float] struct {
	N            int
	H1, H3, S, G []T // saved: x·W1ᵀ, x·W3ᵀ, σ(H1), silu(H1)⊙H3
	dG, dH3      []T // backward scratch
}

// NewSwiGLU registers name.w1.weight, name.w3.weight [hidden, dim] and
// name.w2.weight [dim, hidden].
func NewSwiGLU[T Float](ps *Params[T], name string, dim, hidden int) *SwiGLU[T] {
	m := &SwiGLU[T]{Dim: dim, Hidden: hidden,
		W1: NewLinear(ps, name+".w1", dim, hidden, false),
		W2: NewLinear(ps, name+".w2", hidden, dim, false),
		W3: NewLinear(ps, name+".w3", dim, hidden, false)}
	m.ew.init()
	return m
}

// NewActs takes the buffers for n rows from a.
func (m *SwiGLU[T]) NewActs(a *Arena[T], n int) *SwiGLUActs[T] {
	k := n * m.Hidden
	return &SwiGLUActs[T]{N: n, H1: a.Take(k), H3: a.Take(k), S: a.Take(k), G: a.Take(k), dG: a.Take(k), dH3: a.Take(k)}
}

// Forward computes out [n, Dim] from x [n, Dim].
func (m *SwiGLU[T]) Forward(out, x []T, s *SwiGLUActs[T]) {
	m.W1.Forward(s.H1, x)
	m.W3.Forward(s.H3, x)
	m.ew.do(m.W1.W.arena.Pool, ewSwiGLU, s.G, s.H1, s.H3, s.S, nil)
	m.W2.Forward(out, s.G)
}

// Backward adds dx (may be nil) and the three weight gradients.
func (m *SwiGLU[T]) Backward(dx, dout, x []T, s *SwiGLUActs[T]) {
	clear(s.dG)
	m.W2.Backward(s.dG, dout, s.G)
	m.ew.do(m.W1.W.arena.Pool, ewSwiGLUGrad, s.dG, s.H1, s.H3, s.dH3, s.S) // dG becomes dH1 in place
	m.W1.Backward(dx, s.dG, x)
	m.W3.Backward(dx, s.dH3, x)
}

// MLP is the ViT / LLaVA MLP: out = GELU(x·fc1ᵀ + b1)·fc2ᵀ + b2.
type MLP[T Float] struct {
	Dim, Hidden, OutDim int
	FC1, FC2            *Linear[T]
	ew                  elementwiseJob[T]
}

// MLPActs holds one MLP application's saved activations and scratch.
type MLPActs[T Float] struct {
	N    int
	H, A []T // [n, Hidden]: pre- and post-GELU
	DA   []T // scratch [n, Hidden]: the gradient of A, then of H
}

// NewMLP registers name.fc1.weight [hidden, dim], name.fc1.bias,
// name.fc2.weight [out, hidden], name.fc2.bias.
func NewMLP[T Float](ps *Params[T], name string, dim, hidden, out int) *MLP[T] {
	m := &MLP[T]{Dim: dim, Hidden: hidden, OutDim: out,
		FC1: NewLinear(ps, name+".fc1", dim, hidden, true),
		FC2: NewLinear(ps, name+".fc2", hidden, out, true)}
	m.ew.init()
	return m
}

// NewActs takes the buffers for n rows from a.
func (m *MLP[T]) NewActs(a *Arena[T], n int) *MLPActs[T] {
	k := n * m.Hidden
	return &MLPActs[T]{N: n, H: a.Take(k), A: a.Take(k), DA: a.Take(k)}
}

// Forward computes out [n, OutDim] from x [n, Dim].
func (m *MLP[T]) Forward(out, x []T, s *MLPActs[T]) {
	m.FC1.Forward(s.H, x)
	m.ew.do(m.FC1.W.arena.Pool, ewGELU, s.A, s.H, nil, nil, nil)
	m.FC2.Forward(out, s.A)
}

// Backward adds dx (may be nil) and the weight and bias gradients.
func (m *MLP[T]) Backward(dx, dout, x []T, s *MLPActs[T]) {
	clear(s.DA)
	m.FC2.Backward(s.DA, dout, s.A)
	m.ew.do(m.FC1.W.arena.Pool, ewGELUGrad, s.DA, s.H, nil, nil, nil)
	m.FC1.Backward(dx, s.DA, x)
}

// elementwiseJob runs one of the MLPs' elementwise steps in chunks over a
// pool; its task is bound once so a step allocates nothing.
type elementwiseJob[T Float] struct {
	op            int
	a, b, c, d, e []T
	task          func(int)
}

const (
	ewSwiGLU     = iota // a = silu(b) ⊙ c, d = σ(b)
	ewSwiGLUGrad        // a = a·c·silu'(b) in place, d = a·silu(b); e = σ(b)
	ewGELU              // a = gelu(b)
	ewGELUGrad          // a = a ⊙ gelu'(b) in place
)

// ewChunk is the number of elements per task: large enough to amortise
// scheduling, small enough to balance two to eight workers on a [1024, 704]
// activation.
const ewChunk = 1 << 14

func (j *elementwiseJob[T]) init() { j.task = j.run }

func (j *elementwiseJob[T]) do(p *Pool, op int, a, b, c, d, e []T) {
	j.op, j.a, j.b, j.c, j.d, j.e = op, a, b, c, d, e
	p.For(blocks(len(a), ewChunk), j.task)
	j.a, j.b, j.c, j.d, j.e = nil, nil, nil, nil, nil
}

func (j *elementwiseJob[T]) run(i int) {
	lo, hi := i*ewChunk, min((i+1)*ewChunk, len(j.a))
	a, b := j.a[lo:hi], j.b[lo:hi]
	switch j.op {
	case ewSwiGLU:
		if is32[T]() {
			swigluF32(as32(a), as32(b), as32(j.c[lo:hi]), as32(j.d[lo:hi]))
			return
		}
		c, sg := j.c[lo:hi][:len(b)], j.d[lo:hi][:len(b)]
		a := a[:len(b)]
		for i, v := range b {
			s := sigmoidT(v)
			sg[i] = s
			a[i] = v * s * c[i]
		}
	case ewSwiGLUGrad:
		c, db, sg := j.c[lo:hi][:len(b)], j.d[lo:hi][:len(b)], j.e[lo:hi][:len(b)]
		a := a[:len(b)]
		for i, v := range b {
			s, d := sg[i], a[i]
			db[i] = d * v * s
			a[i] = d * c[i] * s * (1 + v*(1-s))
		}
	case ewGELU:
		GELUForward(a, b)
	case ewGELUGrad:
		geluGrad(a, a, b, false)
	}
}
