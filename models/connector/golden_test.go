package connector

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/enginetest"
)

// goldenCase is one entry of testdata/golden.json, written by
// testdata/golden.py from an independent PyTorch implementation of
// MODEL-SPEC.md's connectors.
type goldenCase struct {
	Kind   string
	Config struct {
		Tokens, Depth, H, W, In, Out, Heads int
	}
	Batch                           int
	Params                          map[string]enginetest.TorchTensor
	Grads                           map[string][]float64
	Input, Output, Upstream, DInput []float64
}

// TestPyTorchParity loads PyTorch's weights by name (every tensor on both
// sides, same shapes) and checks output, grid gradient and parameter
// gradients: this pins what a gradient check cannot see (convolution weight
// layout, channels-last versus NCHW, pooling cells, query/head layout).
func TestPyTorchParity(t *testing.T) {
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("testdata/golden.json: %v", err)
	}
	for i, g := range cases {
		c := g.Config
		t.Run(fmt.Sprintf("%d_%s", i, g.Kind), func(t *testing.T) {
			cfg := Config{Tokens: c.Tokens, Depth: c.Depth, GridH: c.H, GridW: c.W, InDim: c.In, OutDim: c.Out, Heads: c.Heads}
			ps := engine.NewParams[float64]()
			conn, err := New(g.Kind, ps, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			enginetest.LoadParams(t, ps, g.Params)
			conn.Build(engine.NewArena[float64](), g.Batch)
			out := make([]float64, len(g.Output))
			conn.Forward(out, g.Input)
			if e := enginetest.RelErr(out, g.Output); e > 1e-12 {
				t.Errorf("output differs from PyTorch by %.3g", e)
			}
			ps.ZeroGrad()
			dgrid := make([]float64, len(g.Input))
			conn.Backward(dgrid, g.Upstream, g.Input)
			if e := enginetest.RelErr(dgrid, g.DInput); e > 1e-11 {
				t.Errorf("grid gradient differs from PyTorch by %.3g", e)
			}
			enginetest.CompareGrads(t, ps, g.Grads, 1e-11)
		})
	}
}
