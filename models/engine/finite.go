package engine

import (
	"fmt"
	"math"
)

// NonFiniteError reports a NaN or Inf in a named tensor, so a training loop
// can stop naming the step and the layer that produced it.
type NonFiniteError struct {
	Name  string  // tensor or layer, e.g. "llm.layers.2.attn out"
	Index int     // first offending element
	Value float64 // NaN, +Inf or -Inf
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("engine: non-finite value %v in %s at element %d", e.Value, e.Name, e.Index)
}

// CheckFinite returns a *NonFiniteError for the first NaN or Inf in x, or nil.
func CheckFinite[T Float](name string, x []T) error {
	for i, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return &NonFiniteError{Name: name, Index: i, Value: f}
		}
	}
	return nil
}

// allFinite reports whether x holds no NaN or Inf: v·0 is (±)0 for every
// finite v and NaN otherwise, so the sums stay 0 exactly when all are finite.
// Unlike CheckFinite it has no branch per element.
func allFinite[T Float](x []T) bool {
	var a0, a1, a2, a3 T
	for len(x) >= 4 {
		a0 += x[0] * 0
		a1 += x[1] * 0
		a2 += x[2] * 0
		a3 += x[3] * 0
		x = x[4:]
	}
	for _, v := range x {
		a0 += v * 0
	}
	return a0+a1+a2+a3 == 0
}
