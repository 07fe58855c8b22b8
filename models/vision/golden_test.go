package vision

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
)

// golden is testdata/vit_golden.json, written by testdata/golden.py from an
// independent PyTorch implementation of MODEL-SPEC.md's ViT.
type golden struct {
	Config struct {
		Resolution, Patch, Width, Depth, Heads, Batch int
	}
	Params map[string]struct {
		Shape []int
		Data  []float64
	}
	Grads    map[string][]float64
	Input    []float64
	Output   []float64
	Upstream []float64
	Resizes  []struct {
		From, To, Dim int
		Src, Dst      []float64
	}
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/vit_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("testdata/vit_golden.json: %v", err)
	}
	return g
}

// relErr is max|a − b| / max(1, max|b|).
func relErr(a, b []float64) float64 {
	d, s := 0.0, 1.0
	for i := range b {
		d = max(d, math.Abs(a[i]-b[i]))
		s = max(s, math.Abs(b[i]))
	}
	return d / s
}

// TestPyTorchParity loads PyTorch's weights by name (every tensor on both
// sides, same shapes), then checks the output and every parameter gradient:
// this pins the layouts a gradient check cannot see (patch flattening order,
// q/k/v stacking, head split, the grid's row order).
func TestPyTorchParity(t *testing.T) {
	g := loadGolden(t)
	c := g.Config
	cfg := Config{Resolution: c.Resolution, Patch: c.Patch, Width: c.Width, Depth: c.Depth, Heads: c.Heads}
	ps := engine.NewParams[float64]()
	v, err := New(ps, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.All()) != len(g.Params) {
		t.Errorf("%d tensors here, %d in PyTorch", len(ps.All()), len(g.Params))
	}
	for _, p := range ps.All() {
		ref, ok := g.Params[p.Name]
		if !ok || !slices.Equal(ref.Shape, p.Shape) {
			t.Fatalf("%s %v: PyTorch has %v (present %v)", p.Name, p.Shape, ref.Shape, ok)
		}
		copy(p.Data(), ref.Data)
	}
	v.Build(engine.NewArena[float64](), c.Batch)
	out := make([]float64, len(g.Output))
	v.Forward(out, g.Input)
	if e := relErr(out, g.Output); e > 1e-12 {
		t.Errorf("output differs from PyTorch by %.3g", e)
	}
	ps.ZeroGrad()
	v.Backward(g.Upstream)
	for _, p := range ps.All() {
		if e := relErr(p.Grad(), g.Grads[p.Name]); e > 1e-11 {
			t.Errorf("%s gradient differs from PyTorch by %.3g", p.Name, e)
		}
	}
}

func TestResizePosEmbedMatchesTorch(t *testing.T) {
	for _, r := range loadGolden(t).Resizes {
		got := make([]float64, len(r.Dst))
		if err := ResizePosEmbed(got, r.Src, r.From, r.To, r.Dim); err != nil {
			t.Fatal(err)
		}
		if e := relErr(got, r.Dst); e > 1e-14 {
			t.Errorf("%d→%d (width %d): differs from F.interpolate by %.3g", r.From, r.To, r.Dim, e)
		}
	}
}
