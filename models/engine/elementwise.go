package engine

// Add sets out = a + b elementwise; out may alias a or b.
func Add[T Float](out, a, b []T) {
	checkLen("Add a", a, len(out))
	checkLen("Add b", b, len(out))
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// AddTo adds dst += src elementwise.
func AddTo[T Float](dst, src []T) {
	checkLen("AddTo src", src, len(dst))
	for i := range dst {
		dst[i] += src[i]
	}
}

// AddBroadcast adds row to every consecutive len(row)-chunk of x: x [n, d],
// row [d] (a bias, or a position embedding [Np, D] added to x [B, Np, D]).
func AddBroadcast[T Float](x, row []T) {
	d := len(row)
	if d == 0 || len(x)%d != 0 {
		panic("engine: AddBroadcast: length " + itoa(len(x)) + " is not a multiple of " + itoa(d))
	}
	for i := 0; i < len(x); i += d {
		xs := x[i : i+d]
		for j := range xs {
			xs[j] += row[j]
		}
	}
}

// SumBroadcast is AddBroadcast's backward: drow[j] += Σ_i dx[i·d+j].
func SumBroadcast[T Float](drow, dx []T) {
	d := len(drow)
	if d == 0 || len(dx)%d != 0 {
		panic("engine: SumBroadcast: length " + itoa(len(dx)) + " is not a multiple of " + itoa(d))
	}
	for i := 0; i < len(dx); i += d {
		AddTo(drow, dx[i:i+d])
	}
}

// Scale multiplies x by s in place.
func Scale[T Float](x []T, s T) {
	for i := range x {
		x[i] *= s
	}
}

// AddScaled adds dst += s·src.
func AddScaled[T Float](dst, src []T, s T) {
	checkLen("AddScaled src", src, len(dst))
	for i := range dst {
		dst[i] += s * src[i]
	}
}
