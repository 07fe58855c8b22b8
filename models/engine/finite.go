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
