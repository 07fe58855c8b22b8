package vision

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

// golden is testdata/vit_golden.json, written by testdata/golden.py from an
// independent PyTorch implementation of MODEL-SPEC.md's ViT.
type golden struct {
	Config struct {
		Resolution, Patch, Width, Depth, Heads, Batch int
	}
	Params   map[string]enginetest.TorchTensor
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
	enginetest.LoadParams(t, ps, g.Params)
	v.Build(engine.NewArena[float64](), c.Batch)
	out := make([]float64, len(g.Output))
	v.Forward(out, g.Input)
	if e := enginetest.RelErr(out, g.Output); e > 1e-12 {
		t.Errorf("output differs from PyTorch by %.3g", e)
	}
	ps.ZeroGrad()
	v.Backward(g.Upstream)
	enginetest.CompareGrads(t, ps, g.Grads, 1e-11)
}

func TestResizePosEmbedMatchesTorch(t *testing.T) {
	for _, r := range loadGolden(t).Resizes {
		got := make([]float64, len(r.Dst))
		if err := ResizePosEmbed(got, r.Src, r.From, r.To, r.Dim); err != nil {
			t.Fatal(err)
		}
		if e := enginetest.RelErr(got, r.Dst); e > 1e-14 {
			t.Errorf("%d→%d (width %d): differs from F.interpolate by %.3g", r.From, r.To, r.Dim, e)
		}
	}
}
