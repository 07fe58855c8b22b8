package engine

import "math"

// float32 kernels of the activations, the bulk of the elementwise work in a
// training step: expf's fast path (expIn) is inlined into each loop, and the
// GELU gradient evaluates one exponential per element where erf and the
// normal density share e^(−x²/2). Each loop spells out
// `if u in [expInLo, expInHi] { e = expIn(u) } else { e = expf(u) }`
// (NaN and the tails take expf), so results equal expf's. The float64 paths
// (gradient checks) stay on math.Exp and math.Erf.

// A&S 7.1.26 coefficients (erfT's float32 form).
const (
	erfP  = 0.3275911
	erfA1 = 0.254829592
	erfA2 = -0.284496736
	erfA3 = 1.421413741
	erfA4 = -1.453152027
	erfA5 = 1.061405429
)

// erfPoly is 1 − erf(a)/e^(−a²) for a ≥ 0 (A&S 7.1.26 without its exponential).
func erfPoly(a float32) float32 {
	t := 1 / (1 + erfP*a)
	return ((((erfA5*t+erfA4)*t+erfA3)*t+erfA2)*t + erfA1) * t
}

func geluF32(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		z := v * math.Sqrt2 / 2
		a := abs32(z)
		u := -a * a
		var e float32
		if u >= expInLo {
			e = expIn(u)
		} else {
			e = expf(u)
		}
		y := 1 - erfPoly(a)*e
		if z < 0 {
			y = -y
		}
		out[i] = 0.5 * v * (1 + y)
	}
}

// geluGradF32 writes (acc false; dx may alias dout) or adds dout·GELU'(x),
// GELU'(x) = Φ(x) + x·φ(x).
func geluGradF32(dx, dout, x []float32, acc bool) {
	const invSqrt2Pi = 0.3989422804014327
	dx, dout = dx[:len(x)], dout[:len(x)]
	for i, v := range x {
		z := v * math.Sqrt2 / 2
		a := abs32(z)
		u := -a * a // −x²/2: erf's exponential is the density's too
		var e float32
		if u >= expInLo {
			e = expIn(u)
		} else {
			e = expf(u)
		}
		y := 1 - erfPoly(a)*e
		if z < 0 {
			y = -y
		}
		g := 0.5*(1+y) + v*invSqrt2Pi*e
		if acc {
			dx[i] += dout[i] * g
		} else {
			dx[i] = dout[i] * g
		}
	}
}

func siluF32(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		u := -v
		var e float32
		if u >= expInLo && u <= expInHi {
			e = expIn(u)
		} else {
			e = expf(u)
		}
		out[i] = v * (1 / (1 + e))
	}
}

func siluGradF32(dx, dout, x []float32) {
	dx, dout = dx[:len(x)], dout[:len(x)]
	for i, v := range x {
		u := -v
		var e float32
		if u >= expInLo && u <= expInHi {
			e = expIn(u)
		} else {
			e = expf(u)
		}
		s := 1 / (1 + e)
		dx[i] += dout[i] * s * (1 + v*(1-s))
	}
}

// swigluF32 sets a = silu(b) ⊙ c and sg = σ(b) (the SwiGLU forward, saving
// σ for the backward).
func swigluF32(a, b, c, sg []float32) {
	a, c, sg = a[:len(b)], c[:len(b)], sg[:len(b)]
	for i, v := range b {
		u := -v
		var e float32
		if u >= expInLo && u <= expInHi {
			e = expIn(u)
		} else {
			e = expf(u)
		}
		s := 1 / (1 + e)
		sg[i] = s
		a[i] = v * s * c[i]
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
