package engine

import "math/rand/v2"

// Init draws W from normal(0, std) and zeroes the bias: how a model
// initialises its projections from its seeded source (NewLinear leaves W
// at zero). Calling it again restarts the layer from fresh weights.
func (l *Linear[T]) Init(rng *rand.Rand, std float64) {
	l.W.Normal(rng, std)
	if l.B != nil {
		l.B.Fill(0)
	}
}

// Reset restores the gain to ones and the bias to zeros, the values
// NewLayerNorm starts from.
func (l *LayerNorm[T]) Reset() {
	l.W.Fill(1)
	l.B.Fill(0)
}
