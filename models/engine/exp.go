package engine

import "math"

// expT is exp in T's precision: for float32 a polynomial (Cephes expf,
// relative error below 3e-7 as TestExpf checks, several times faster than
// math.Exp); for float64 math.Exp, so the gradient checks see the exact
// function.
func expT[T Float](x T) T {
	if is32[T]() {
		return T(expf(float32(x)))
	}
	return T(math.Exp(float64(x)))
}

// sigmoidT is 1/(1+e^−x) in T's precision.
func sigmoidT[T Float](x T) T { return 1 / (1 + expT(-x)) }

// expInLo and expInHi bound expIn's domain: there 2^n (n = round(x·log2 e))
// is a normal float32 with n in [-126, 127].
const (
	expInLo = -87.33654
	expInHi = 88.0
)

func expf(x float32) float32 {
	if x >= expInLo && x <= expInHi {
		return expIn(x)
	}
	switch {
	case x != x:
		return x
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < expInLo:
		return 0
	}
	n := int32(x*1.44269504088896341+128.5) - 128 // 127 or 128 here
	return expPoly(x, n) * 2 * math.Float32frombits(uint32(n-1+127)<<23)
}

// expIn is expf for x in [expInLo, expInHi], small enough to be inlined
// into the float32 activation loops (a call per element costs as much as
// the polynomial).
func expIn(x float32) float32 {
	// n = round(x·log2 e) without a data-dependent branch: the argument of
	// the truncating conversion is positive in the domain, so truncation is
	// floor. The rest is expPoly, written out so that expIn inlines.
	n := int32(x*1.44269504088896341+128.5) - 128
	fx := float32(n)
	r := x - fx*0.693359375 - fx*-2.12194440e-4
	r2 := r * r
	return (1 + r + r2*((5.0000001201e-1+1.6666665459e-1*r)+r2*((4.1665795894e-2+8.3334519073e-3*r)+r2*(1.3981999507e-3+1.9875691500e-4*r)))) *
		math.Float32frombits(uint32(n+127)<<23)
}

// expPoly is e^r for r = x − n·ln 2 (Cephes' range reduction and
// polynomial), evaluated in Estrin's form: shorter dependency chains than
// Horner's, so consecutive elements overlap in the pipeline.
func expPoly(x float32, n int32) float32 {
	fx := float32(n)
	r := x - fx*0.693359375 - fx*-2.12194440e-4
	r2 := r * r
	return 1 + r + r2*((5.0000001201e-1+1.6666665459e-1*r)+r2*((4.1665795894e-2+8.3334519073e-3*r)+r2*(1.3981999507e-3+1.9875691500e-4*r)))
}
