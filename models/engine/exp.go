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

func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		return 0
	}
	// n = round(x·log2 e) without a data-dependent branch: the argument of
	// the truncating conversion is positive in the clamped range, so
	// truncation is floor.
	n := int32(x*1.44269504088896341+128.5) - 128
	fx := float32(n)
	r := x - fx*0.693359375 - fx*-2.12194440e-4
	// Cephes' polynomial, evaluated in Estrin's form: shorter dependency
	// chains than Horner's, so consecutive calls overlap in the pipeline.
	r2 := r * r
	p01 := 5.0000001201e-1 + 1.6666665459e-1*r
	p23 := 4.1665795894e-2 + 8.3334519073e-3*r
	p45 := 1.3981999507e-3 + 1.9875691500e-4*r
	y := 1 + r + r2*(p01+r2*(p23+r2*p45))
	if n < 128 { // n ≥ -126 here, so 2^n is a normal float32
		return y * math.Float32frombits(uint32(n+127)<<23)
	}
	return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
}
