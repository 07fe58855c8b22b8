package engine

import "math"

// normRows is the number of rows per pool task in the norms. The weight
// gradients are summed per block of rows and the blocks are then added in
// order, so results do not depend on the number of workers.
const normRows = 32

// RMSNorm is y = x / sqrt(mean(x²) + Eps) ⊙ w over the last dimension.
type RMSNorm[T Float] struct {
	Dim int
	Eps float64
	W   *Param[T] // [Dim], ones

	c       normCall[T]
	partial []T // [blocks, Dim] weight-gradient partial sums
	fwd     func(int)
	bwd     func(int)
}

// normCall holds one Forward or Backward call's arguments for the pool tasks.
type normCall[T Float] struct {
	out, x, dx, dout, mean, rstd []T
}

// NewRMSNorm registers name.weight [dim], initialised to ones.
func NewRMSNorm[T Float](ps *Params[T], name string, dim int, eps float64) *RMSNorm[T] {
	l := &RMSNorm[T]{Dim: dim, Eps: eps, W: ps.Add(name+".weight", dim)}
	l.W.Fill(1)
	l.fwd, l.bwd = l.forwardBlock, l.backwardBlock
	return l
}

// Forward normalises each row. x, out [n, Dim]; rstd [n] saved for Backward.
// Per-head QK norm is the same call with Dim = head dim and n = tokens·heads.
func (l *RMSNorm[T]) Forward(out, rstd, x []T) {
	n := len(rstd)
	checkLen("RMSNorm.Forward x", x, n*l.Dim)
	checkLen("RMSNorm.Forward out", out, n*l.Dim)
	l.c = normCall[T]{out: out, x: x, rstd: rstd}
	l.W.arena.Pool.For(blocks(n, normRows), l.fwd)
	l.c = normCall[T]{}
}

func (l *RMSNorm[T]) forwardBlock(b int) {
	d, c, w := l.Dim, &l.c, l.W.Data()
	for i := b * normRows; i < min((b+1)*normRows, len(c.rstd)); i++ {
		xs := c.x[i*d : (i+1)*d]
		os, w := c.out[i*d : (i+1)*d][:len(xs)], w[:len(xs)]
		var ss float64
		for _, v := range xs {
			ss += float64(v) * float64(v)
		}
		r := T(1 / math.Sqrt(ss/float64(d)+l.Eps))
		c.rstd[i] = r
		for j, v := range xs {
			os[j] = v * r * w[j]
		}
	}
}

// Backward adds dx += ∂L/∂x and dw += Σ dout ⊙ x·rstd.
// With x̂ = x·r: dx = r·(g − x̂·mean(g ⊙ x̂)), g = dout ⊙ w.
func (l *RMSNorm[T]) Backward(dx, dout, x, rstd []T) {
	n := len(rstd)
	checkLen("RMSNorm.Backward x", x, n*l.Dim)
	checkLen("RMSNorm.Backward dout", dout, n*l.Dim)
	if dx != nil {
		checkLen("RMSNorm.Backward dx", dx, n*l.Dim)
	}
	nb := blocks(n, normRows)
	l.partial = grow(l.partial, nb*l.Dim)
	l.c = normCall[T]{dx: dx, dout: dout, x: x, rstd: rstd}
	l.W.arena.Pool.For(nb, l.bwd)
	l.c = normCall[T]{}
	if !l.W.Frozen {
		dw := l.W.Grad()
		for b := range nb {
			AddTo(dw, l.partial[b*l.Dim:(b+1)*l.Dim])
		}
	}
}

func (l *RMSNorm[T]) backwardBlock(b int) {
	d, c, w := l.Dim, &l.c, l.W.Data()
	dw := l.partial[b*d : (b+1)*d]
	clear(dw)
	for i := b * normRows; i < min((b+1)*normRows, len(c.rstd)); i++ {
		xs := c.x[i*d : (i+1)*d]
		gs, w, dw := c.dout[i*d : (i+1)*d][:len(xs)], w[:len(xs)], dw[:len(xs)]
		r := c.rstd[i]
		var dot T
		for j, v := range xs {
			dot += gs[j] * w[j] * v * r
		}
		dot /= T(d)
		for j, v := range xs {
			dw[j] += gs[j] * v * r
		}
		if c.dx != nil {
			ds := c.dx[i*d : (i+1)*d][:len(xs)]
			for j, v := range xs {
				ds[j] += r * (gs[j]*w[j] - v*r*dot)
			}
		}
	}
}

// LayerNorm is y = (x − mean) / sqrt(var + Eps) ⊙ w + b over the last
// dimension (biased variance, as PyTorch).
type LayerNorm[T Float] struct {
	Dim  int
	Eps  float64
	W, B *Param[T] // [Dim]: ones, zeros

	c       normCall[T]
	partial []T // [blocks, 2·Dim]: dw then db partial sums
	fwd     func(int)
	bwd     func(int)
}

// LayerNorm2d normalises the channels at each position of an NHWC grid:
// channels-last, that is LayerNorm over the last dimension.
type LayerNorm2d[T Float] = LayerNorm[T]

// NewLayerNorm registers name.weight [dim] (ones) and name.bias [dim] (zeros).
func NewLayerNorm[T Float](ps *Params[T], name string, dim int, eps float64) *LayerNorm[T] {
	l := &LayerNorm[T]{Dim: dim, Eps: eps, W: ps.Add(name+".weight", dim), B: ps.Add(name+".bias", dim)}
	l.W.Fill(1)
	l.fwd, l.bwd = l.forwardBlock, l.backwardBlock
	return l
}

// NewLayerNorm2d is NewLayerNorm for the channels of an NHWC grid.
func NewLayerNorm2d[T Float](ps *Params[T], name string, channels int, eps float64) *LayerNorm2d[T] {
	return NewLayerNorm(ps, name, channels, eps)
}

// Forward normalises each row. x, out [n, Dim]; mean, rstd [n] saved.
func (l *LayerNorm[T]) Forward(out, mean, rstd, x []T) {
	n := len(rstd)
	checkLen("LayerNorm.Forward x", x, n*l.Dim)
	checkLen("LayerNorm.Forward out", out, n*l.Dim)
	checkLen("LayerNorm.Forward mean", mean, n)
	l.c = normCall[T]{out: out, x: x, mean: mean, rstd: rstd}
	l.W.arena.Pool.For(blocks(n, normRows), l.fwd)
	l.c = normCall[T]{}
}

func (l *LayerNorm[T]) forwardBlock(bl int) {
	d, c := l.Dim, &l.c
	w, b := l.W.Data(), l.B.Data()
	for i := bl * normRows; i < min((bl+1)*normRows, len(c.rstd)); i++ {
		xs := c.x[i*d : (i+1)*d]
		os, w, b := c.out[i*d : (i+1)*d][:len(xs)], w[:len(xs)], b[:len(xs)]
		var s float64
		for _, v := range xs {
			s += float64(v)
		}
		mu := s / float64(d)
		var ss float64
		for _, v := range xs {
			e := float64(v) - mu
			ss += e * e
		}
		r := T(1 / math.Sqrt(ss/float64(d)+l.Eps))
		m := T(mu)
		c.mean[i], c.rstd[i] = m, r
		for j, v := range xs {
			os[j] = (v-m)*r*w[j] + b[j]
		}
	}
}

// Backward adds dx, dw, db. With x̂ = (x−mean)·r and g = dout ⊙ w:
// dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)).
func (l *LayerNorm[T]) Backward(dx, dout, x, mean, rstd []T) {
	n := len(rstd)
	checkLen("LayerNorm.Backward x", x, n*l.Dim)
	checkLen("LayerNorm.Backward dout", dout, n*l.Dim)
	checkLen("LayerNorm.Backward mean", mean, n)
	if dx != nil {
		checkLen("LayerNorm.Backward dx", dx, n*l.Dim)
	}
	d := l.Dim
	nb := blocks(n, normRows)
	l.partial = grow(l.partial, nb*2*d)
	l.c = normCall[T]{dx: dx, dout: dout, x: x, mean: mean, rstd: rstd}
	l.W.arena.Pool.For(nb, l.bwd)
	l.c = normCall[T]{}
	for b := range nb {
		if !l.W.Frozen {
			AddTo(l.W.Grad(), l.partial[2*b*d:(2*b+1)*d])
		}
		if !l.B.Frozen {
			AddTo(l.B.Grad(), l.partial[(2*b+1)*d:(2*b+2)*d])
		}
	}
}

func (l *LayerNorm[T]) backwardBlock(bl int) {
	d, c, w := l.Dim, &l.c, l.W.Data()
	dw, db := l.partial[2*bl*d:(2*bl+1)*d], l.partial[(2*bl+1)*d:(2*bl+2)*d]
	clear(dw)
	clear(db)
	for i := bl * normRows; i < min((bl+1)*normRows, len(c.rstd)); i++ {
		xs := c.x[i*d : (i+1)*d]
		gs, w, dw, db := c.dout[i*d : (i+1)*d][:len(xs)], w[:len(xs)], dw[:len(xs)], db[:len(xs)]
		m, r := c.mean[i], c.rstd[i]
		var sg, sgx T
		for j, v := range xs {
			g := gs[j] * w[j]
			sg += g
			sgx += g * (v - m) * r
		}
		sg /= T(d)
		sgx /= T(d)
		for j, v := range xs {
			xh := (v - m) * r
			dw[j] += gs[j] * xh
			db[j] += gs[j]
		}
		if c.dx != nil {
			ds := c.dx[i*d : (i+1)*d][:len(xs)]
			for j, v := range xs {
				ds[j] += r * (gs[j]*w[j] - sg - (v-m)*r*sgx)
			}
		}
	}
}

// blocks is ⌈n/size⌉.
func blocks(n, size int) int { return (n + size - 1) / size }

// grow returns buf with length n, reallocating only when it is too small
// (the first call for a batch shape), so steady-state steps do not allocate.
func grow[T Float](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}
