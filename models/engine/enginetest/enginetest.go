// Package enginetest is test support for engine and the models built on it
// (vision, connector): a central-difference gradient checker with the
// relative-error bound every layer must meet, helpers that load PyTorch
// reference weights and compare against PyTorch's outputs, and small
// utilities. Like net/http/httptest, it is imported only by tests.
//
// engine's own gradient checks live in the external test package
// engine_test, since an internal test of engine cannot import a package
// that imports engine.
package enginetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
)

// GradBound is the largest accepted gradient-check error in float64. The
// error of a tensor is max|analytic − numeric| / max(|numeric|, |analytic|)
// over its elements; central differences with h = 1e-6 are accurate to
// ~1e-9 here, while a wrong factor of 2 anywhere gives ~0.5 (see engine's
// TestGradCheckCatchesWrongGradient).
const GradBound = 1e-6

// Input is a tensor the check perturbs and the analytic gradient that
// Backward accumulated for it.
type Input struct {
	Name  string
	X, DX []float64
}

// GradCheck compares the analytic gradients of loss = Σ fwd()·g with central
// finite differences, for a random upstream gradient g. fwd recomputes the
// output from the inputs' current values; bwd adds gradients for upstream g
// into every input's DX (zeroed here first). It returns the worst error and
// the tensor it occurred in.
func GradCheck(rng *rand.Rand, fwd func() []float64, bwd func(g []float64), inputs []Input) (worst float64, where string) {
	out := fwd()
	g := Randn(rng, len(out), 1)
	for _, in := range inputs {
		clear(in.DX)
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
	for _, in := range inputs {
		var maxDiff, scale float64
		for e := range in.X {
			orig := in.X[e]
			in.X[e] = orig + h
			lp := loss()
			in.X[e] = orig - h
			lm := loss()
			in.X[e] = orig
			num := (lp - lm) / (2 * h)
			maxDiff = max(maxDiff, math.Abs(num-in.DX[e]))
			scale = max(scale, math.Abs(num), math.Abs(in.DX[e]))
		}
		if scale < 1e-12 {
			continue
		}
		if err := maxDiff / scale; err > worst || math.IsNaN(err) {
			worst, where = err, in.Name
		}
	}
	return worst, where
}

// Randn returns n normal values of standard deviation std.
func Randn(rng *rand.Rand, n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * std
	}
	return x
}

// ParamInputs lists every parameter of ps as a gradient-check input.
func ParamInputs(ps *engine.Params[float64]) []Input {
	var ins []Input
	for _, p := range ps.All() {
		ins = append(ins, Input{p.Name, p.Data(), p.Grad()})
	}
	return ins
}

// PerturbParams adds normal noise of standard deviation std to every
// parameter, moving it off its initial value (unit norms, zero biases) so
// that no term of the gradient vanishes by symmetry.
func PerturbParams(rng *rand.Rand, ps *engine.Params[float64], std float64) {
	for _, p := range ps.All() {
		d := p.Data()
		for i := range d {
			d[i] += rng.NormFloat64() * std
		}
	}
}

// TorchTensor is one named tensor of a golden file written from PyTorch:
// its shape and its values in row-major order.
type TorchTensor struct {
	Shape []int
	Data  []float64
}

// LoadParams copies PyTorch's weights into ps by name. Both sides must hold
// the same tensors with the same shapes; a missing or misshapen tensor
// fails the test at once, since nothing after it would be meaningful.
func LoadParams(t testing.TB, ps *engine.Params[float64], ref map[string]TorchTensor) {
	t.Helper()
	if len(ps.All()) != len(ref) {
		t.Errorf("%d tensors here, %d in PyTorch", len(ps.All()), len(ref))
	}
	for _, p := range ps.All() {
		r, ok := ref[p.Name]
		if !ok || !slices.Equal(r.Shape, p.Shape) {
			t.Fatalf("%s %v: PyTorch has %v (present %v)", p.Name, p.Shape, r.Shape, ok)
		}
		copy(p.Data(), r.Data)
	}
}

// RelErr is max|got − want| / max(1, max|want|): relative for large
// values, absolute for values below one.
func RelErr(got, want []float64) float64 {
	d, s := 0.0, 1.0
	for i := range want {
		d = max(d, math.Abs(got[i]-want[i]))
		s = max(s, math.Abs(want[i]))
	}
	return d / s
}

// CompareGrads fails the test for every parameter of ps whose gradient
// differs from want[name], PyTorch's, by a RelErr over tol.
func CompareGrads(t testing.TB, ps *engine.Params[float64], want map[string][]float64, tol float64) {
	t.Helper()
	for _, p := range ps.All() {
		if e := RelErr(p.Grad(), want[p.Name]); e > tol {
			t.Errorf("%s gradient differs from PyTorch by %.3g", p.Name, e)
		}
	}
}

// MaxDiff is max|a − b| over a's elements.
func MaxDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// MustPanic fails unless f panics with a message containing want; what
// names the case in the failure.
func MustPanic(t testing.TB, what, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic", what)
			return
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Errorf("%s: panic %q, want one containing %q", what, msg, want)
		}
	}()
	f()
}
