package connector

import (
	"math/rand/v2"
	"testing"

	"github.com/mmablate/mmablate/internal/allocs"
	"github.com/mmablate/mmablate/models/engine"
)

// refConfig is engine.md's reference connector input: a 2-layer ViT of
// width 256 on 128×128 images with patch 16 (an 8×8 grid), 64 tokens, into a
// decoder of width 256.
func refConfig() Config {
	return Config{Tokens: 64, Depth: 1, GridH: 8, GridW: 8, InDim: 256, OutDim: 256, Heads: 4}
}

func newRef(tb testing.TB, kind string, images int, pool *engine.Pool) (Connector[float32], []float32, []float32, []float32, []float32) {
	tb.Helper()
	cfg := refConfig()
	ps := engine.NewParams[float32]()
	ps.Pool = pool
	c, err := New(kind, ps, cfg, pool)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	c.Init(rng)
	c.Build(engine.NewArena[float32](), images)
	grid := make([]float32, images*cfg.GridH*cfg.GridW*cfg.InDim)
	for i := range grid {
		grid[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, images*cfg.Tokens*cfg.OutDim)
	dout := make([]float32, len(out))
	for i := range dout {
		dout[i] = float32(rng.NormFloat64()) * 1e-3
	}
	return c, grid, make([]float32, len(grid)), out, dout
}

// TestNoAllocations: a training step must not allocate in the connector.
func TestNoAllocations(t *testing.T) {
	if engine.BLASName() != "openblas" {
		t.Skip("gonum's pure-Go Gemm allocates for its own worker goroutines")
	}
	for _, kind := range Kinds() {
		c, grid, dgrid, out, dout := newRef(t, kind, 1, nil)
		c.Forward(out, grid)
		c.Backward(dgrid, dout, grid)
		if n := allocs.PerRun(2, func() {
			c.Forward(out, grid)
			c.Backward(dgrid, dout, grid)
		}); n.PerRun != 0 {
			t.Errorf("%s: %g allocations per forward+backward; most at:%s", kind, n.PerRun, n.Site)
		}
	}
}

// BenchmarkForwardBackward times one forward and backward of each connector
// at the reference size for 8 images (float32), and reports GFLOP/s by the
// package's FLOP convention. It threads as a training cell does: a 2-worker
// pool splits the products, OpenBLAS runs one thread.
func BenchmarkForwardBackward(b *testing.B) {
	const images = 8
	engine.SetBLASThreads(1)
	pool := engine.NewPool(2)
	defer pool.Close()
	for _, kind := range Kinds() {
		b.Run(kind, func(b *testing.B) {
			c, grid, dgrid, out, dout := newRef(b, kind, images, pool)
			f, bw := c.FLOPs(images)
			b.ResetTimer()
			for b.Loop() {
				c.Forward(out, grid)
				clear(dgrid)
				c.Backward(dgrid, dout, grid)
			}
			b.ReportMetric(float64(f+bw)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
