package engine

import "unsafe"

// Float is the element type of every tensor: float32 for training, float64
// for the finite-difference gradient checks, which run the same code.
type Float interface{ float32 | float64 }

// is32 reports whether T is float32; it is a constant per instantiation.
func is32[T Float]() bool { return unsafe.Sizeof(T(0)) == 4 }

// as32 and as64 reinterpret a []T whose T is known (by is32) to be that type,
// without the allocation a conversion through an interface would cost.
func as32[T Float](x []T) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

func as64[T Float](x []T) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// checkLen panics unless len(x) == n; what names the argument.
func checkLen[T any](what string, x []T, n int) {
	if len(x) != n {
		panic("engine: " + what + ": length " + itoa(len(x)) + ", want " + itoa(n))
	}
}

// checkMin panics unless len(x) >= n.
func checkMin[T any](what string, x []T, n int) {
	if len(x) < n {
		panic("engine: " + what + ": length " + itoa(len(x)) + ", want at least " + itoa(n))
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
