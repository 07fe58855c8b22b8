package engine

import "math"

// SiLUForward sets out = x·σ(x); out may alias x.
func SiLUForward[T Float](out, x []T) {
	checkLen("SiLUForward out", out, len(x))
	if is32[T]() {
		siluF32(as32(out), as32(x))
		return
	}
	out = out[:len(x)]
	for i, v := range x {
		out[i] = v * sigmoidT(v)
	}
}

// SiLUBackward adds dx += dout·σ(x)·(1 + x·(1 − σ(x))).
func SiLUBackward[T Float](dx, dout, x []T) {
	checkLen("SiLUBackward dx", dx, len(x))
	checkLen("SiLUBackward dout", dout, len(x))
	if is32[T]() {
		siluGradF32(as32(dx), as32(dout), as32(x))
		return
	}
	dx, dout = dx[:len(x)], dout[:len(x)]
	for i, v := range x {
		s := sigmoidT(v)
		dx[i] += dout[i] * s * (1 + v*(1-s))
	}
}

// GELUForward sets out = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the exact form
// (PyTorch's default, not the tanh approximation); out may alias x.
func GELUForward[T Float](out, x []T) {
	checkLen("GELUForward out", out, len(x))
	if is32[T]() {
		geluF32(as32(out), as32(x))
		return
	}
	out = out[:len(x)]
	for i, v := range x {
		out[i] = 0.5 * v * (1 + erfT(v*math.Sqrt2/2))
	}
}

// erfT is erf in T's precision: for float32 Abramowitz & Stegun 7.1.26
// (absolute error under 1.5e-7, below float32's resolution of 1 + erf), for
// float64 math.Erf.
func erfT[T Float](x T) T {
	if !is32[T]() {
		return T(math.Erf(float64(x)))
	}
	a := x
	if a < 0 {
		a = -a
	}
	t := 1 / (1 + 0.3275911*a)
	y := 1 - ((((1.061405429*t-1.453152027)*t+1.421413741)*t-0.284496736)*t+0.254829592)*t*expT(-a*a)
	if x < 0 {
		return -y
	}
	return y
}

// GELUBackward adds dx += dout·(Φ(x) + x·φ(x)).
func GELUBackward[T Float](dx, dout, x []T) {
	checkLen("GELUBackward dx", dx, len(x))
	checkLen("GELUBackward dout", dout, len(x))
	geluGrad(dx, dout, x, true)
}

// geluGrad writes (acc false, dx may alias dout) or adds dout·GELU'(x).
func geluGrad[T Float](dx, dout, x []T, acc bool) {
	const invSqrt2Pi = 0.3989422804014327
	if is32[T]() {
		geluGradF32(as32(dx), as32(dout), as32(x), acc)
		return
	}
	dx, dout = dx[:len(x)], dout[:len(x)]
	for i, v := range x {
		g := 0.5*(1+erfT(v*math.Sqrt2/2)) + v*invSqrt2Pi*expT(-0.5*v*v)
		if acc {
			dx[i] += dout[i] * g
		} else {
			dx[i] = dout[i] * g
		}
	}
}

// SwiGLUForward sets out = silu(a) ⊙ b. a, b, out [n]; out may alias either.
func SwiGLUForward[T Float](out, a, b []T) {
	checkLen("SwiGLUForward a", a, len(out))
	checkLen("SwiGLUForward b", b, len(out))
	a, b = a[:len(out)], b[:len(out)]
	for i, v := range a {
		out[i] = v * sigmoidT(v) * b[i]
	}
}

// SwiGLUBackward adds da += dout·b·silu'(a) and db += dout·silu(a); either
// gradient may be nil.
func SwiGLUBackward[T Float](da, db, dout, a, b []T) {
	checkLen("SwiGLUBackward dout", dout, len(a))
	checkLen("SwiGLUBackward b", b, len(a))
	for i, v := range a {
		s := sigmoidT(v)
		if da != nil {
			da[i] += dout[i] * b[i] * s * (1 + v*(1-s))
		}
		if db != nil {
			db[i] += dout[i] * v * s
		}
	}
}
