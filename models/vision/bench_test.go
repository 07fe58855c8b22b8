package vision

import (
	"math/rand/v2"
	"testing"

	"github.com/mmablate/mmablate/internal/allocs"
	"github.com/mmablate/mmablate/models/engine"
)

// refConfig is engine.md's reference encoder: 128×128 images, patch 16, two
// blocks of width 256 with 4 heads.
var refConfig = Config{Resolution: 128, Patch: 16, Width: 256, Depth: 2, Heads: 4}

func newRef(tb testing.TB, images int, pool *engine.Pool) (*ViT[float32], []float32, []float32, []float32) {
	tb.Helper()
	ps := engine.NewParams[float32]()
	ps.Pool = pool
	v, err := New(ps, refConfig, pool)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	v.Init(rng)
	v.Build(engine.NewArena[float32](), images)
	img := make([]float32, images*3*128*128)
	for i := range img {
		img[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, images*refConfig.NumPatches()*refConfig.Width)
	dout := make([]float32, len(out))
	for i := range dout {
		dout[i] = float32(rng.NormFloat64()) * 1e-3
	}
	return v, img, out, dout
}

// TestNoAllocations: a training step must not allocate in the encoder.
func TestNoAllocations(t *testing.T) {
	if engine.BLASName() != "openblas" {
		t.Skip("gonum's pure-Go Gemm allocates for its own worker goroutines")
	}
	v, img, out, dout := newRef(t, 1, nil)
	v.Forward(out, img)
	v.Backward(dout)
	if n := allocs.PerRun(2, func() {
		v.Forward(out, img)
		v.Backward(dout)
	}); n.PerRun != 0 {
		t.Errorf("%g allocations per forward+backward; most at:%s", n.PerRun, n.Site)
	}
}

// BenchmarkForwardBackward times one forward and backward of the reference
// encoder on 8 images (float32) and reports GFLOP/s by Config.FLOPs. It
// threads as a training cell does: a 2-worker pool splits the products,
// OpenBLAS runs one thread.
func BenchmarkForwardBackward(b *testing.B) {
	const images = 8
	engine.SetBLASThreads(1)
	pool := engine.NewPool(2)
	defer pool.Close()
	v, img, out, dout := newRef(b, images, pool)
	f, bw := refConfig.FLOPs(images)
	b.ResetTimer()
	for b.Loop() {
		v.Forward(out, img)
		v.Backward(dout)
	}
	b.ReportMetric(float64(f+bw)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
