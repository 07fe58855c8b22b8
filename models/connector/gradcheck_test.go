package connector

import (
	"math"
	"math/rand/v2"

	"github.com/mmablate/mmablate/models/engine"
)

// gradBound is models/engine's gradient-check bound (its gradcheck_test.go):
// the worst max|analytic − numeric| / max(|numeric|, |analytic|) over a
// tensor's elements, in float64 with central differences of h = 1e-6. A
// wrong factor of 2 anywhere gives ~0.5.
const gradBound = 1e-6

// gradInput is a tensor the check perturbs and the analytic gradient that
// Backward accumulated for it.
type gradInput struct {
	name  string
	x, dx []float64
}

// gradCheck compares the analytic gradients of loss = Σ fwd()·g, g random,
// with central finite differences; bwd adds the gradients for upstream g into
// every input's dx (zeroed here first). It returns the worst error and the
// tensor it occurred in.
func gradCheck(rng *rand.Rand, fwd func() []float64, bwd func(g []float64), inputs []gradInput) (float64, string) {
	out := fwd()
	g := randn(rng, len(out), 1)
	for _, in := range inputs {
		clear(in.dx)
	}
	bwd(g)
	loss := func() float64 {
		var s float64
		for i, v := range fwd() {
			s += v * g[i]
		}
		return s
	}
	const h = 1e-6
	worst, where := 0.0, ""
	for _, in := range inputs {
		var maxDiff, scale float64
		for e := range in.x {
			orig := in.x[e]
			in.x[e] = orig + h
			lp := loss()
			in.x[e] = orig - h
			lm := loss()
			in.x[e] = orig
			num := (lp - lm) / (2 * h)
			maxDiff = max(maxDiff, math.Abs(num-in.dx[e]))
			scale = max(scale, math.Abs(num), math.Abs(in.dx[e]))
		}
		if scale < 1e-12 {
			continue
		}
		if err := maxDiff / scale; err > worst || math.IsNaN(err) {
			worst, where = err, in.name
		}
	}
	return worst, where
}

func randn(rng *rand.Rand, n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * std
	}
	return x
}

// paramInputs lists every parameter of ps as a gradient-check input.
func paramInputs(ps *engine.Params[float64]) []gradInput {
	var ins []gradInput
	for _, p := range ps.All() {
		ins = append(ins, gradInput{p.Name, p.Data(), p.Grad()})
	}
	return ins
}

// perturbParams moves every parameter off its initial value (unit norms,
// zero biases) so that no term of the gradient vanishes by symmetry.
func perturbParams(rng *rand.Rand, ps *engine.Params[float64], std float64) {
	for _, p := range ps.All() {
		d := p.Data()
		for i := range d {
			d[i] += rng.NormFloat64() * std
		}
	}
}
