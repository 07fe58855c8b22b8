package engine

import "math"

// RoPE rotates each head's pairs (i, i+hd/2) by angle pos·θ_i with
// θ_i = Base^(−2i/hd) (rotate-half, the GPT-NeoX / LLaMA convention). It has
// no parameters; cos/sin tables are precomputed in float64 up to MaxPos.
type RoPE[T Float] struct {
	HeadDim int
	Base    float64
	MaxPos  int
	Pool    *Pool // optional: spreads rows over its workers
	cos     []T   // [MaxPos, HeadDim/2]
	sin     []T

	c    ropeCall[T]
	task func(int)
}

type ropeCall[T Float] struct {
	out, x     []T
	pos        []int32
	heads      int
	sign       T
	accumulate bool
}

// ropeRows is the number of positions per pool task.
const ropeRows = 64

// NewRoPE builds the tables for positions [0, maxPos). headDim must be even.
func NewRoPE[T Float](headDim int, base float64, maxPos int) *RoPE[T] {
	if headDim%2 != 0 || headDim <= 0 {
		panic("engine: RoPE head dim " + itoa(headDim) + " is not positive and even")
	}
	half := headDim / 2
	r := &RoPE[T]{HeadDim: headDim, Base: base, MaxPos: maxPos,
		cos: make([]T, maxPos*half), sin: make([]T, maxPos*half)}
	r.task = r.rows
	for p := range maxPos {
		for i := range half {
			theta := math.Pow(base, -2*float64(i)/float64(headDim))
			s, c := math.Sincos(float64(p) * theta)
			r.cos[p*half+i], r.sin[p*half+i] = T(c), T(s)
		}
	}
	return r
}

// Forward rotates x into out (out may alias x). x, out [n, heads·HeadDim];
// pos [n] position ids in [0, MaxPos).
//
//	out[i]      = x[i]·cos − x[i+h]·sin
//	out[i+h]    = x[i+h]·cos + x[i]·sin        (h = HeadDim/2)
func (r *RoPE[T]) Forward(out, x []T, pos []int32, heads int) {
	r.apply(out, x, pos, heads, 1, false)
}

// Backward adds the inverse rotation of dout: dx += Rᵀ·dout.
func (r *RoPE[T]) Backward(dx, dout []T, pos []int32, heads int) {
	r.apply(dx, dout, pos, heads, -1, true)
}

func (r *RoPE[T]) apply(out, x []T, pos []int32, heads int, sign T, accumulate bool) {
	row := heads * r.HeadDim
	checkLen("RoPE x", x, len(pos)*row)
	checkLen("RoPE out", out, len(pos)*row)
	for t, p := range pos {
		if p < 0 || int(p) >= r.MaxPos {
			panic("engine: RoPE: position " + itoa(int(p)) + " at " + itoa(t) + " outside [0, " + itoa(r.MaxPos) + ")")
		}
	}
	r.c = ropeCall[T]{out: out, x: x, pos: pos, heads: heads, sign: sign, accumulate: accumulate}
	r.Pool.For(blocks(len(pos), ropeRows), r.task)
	r.c = ropeCall[T]{}
}

func (r *RoPE[T]) rows(b int) {
	c := &r.c
	hd, half := r.HeadDim, r.HeadDim/2
	row := c.heads * hd
	for t := b * ropeRows; t < min((b+1)*ropeRows, len(c.pos)); t++ {
		p := int(c.pos[t])
		cs := r.cos[p*half : p*half+half]
		sn := r.sin[p*half : p*half+half]
		for h := range c.heads {
			off := t*row + h*hd
			xa, xb := c.x[off:off+half], c.x[off+half:off+hd]
			oa, ob := c.out[off:off+half], c.out[off+half:off+hd]
			for i := range half {
				a, b := xa[i], xb[i]
				co, s := cs[i], c.sign*sn[i]
				if c.accumulate {
					oa[i] += a*co - b*s
					ob[i] += b*co + a*s
				} else {
					oa[i] = a*co - b*s
					ob[i] = b*co + a*s
				}
			}
		}
	}
}
