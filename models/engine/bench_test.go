package engine

import (
	"math/rand/v2"
	"testing"
)

// Benchmarks on the reference model's shapes (MODEL-SPEC.md: B=8, T=128,
// D=256, H=4, hd=64, F=704, V=512). Run with
//
//	go test -run '^$' -bench . -benchtime 20x ./models/engine/
//
// GEMM benchmarks report GFLOP/s with the engine's threading (OpenBLAS on
// one thread, rows split over a pool of 2); compare with BenchmarkSgemm1024,
// the raw square product OpenBLAS reaches with its own 2 threads.

// benchPool sets the engine's default threading for 2 cores for one
// benchmark: OpenBLAS single-threaded, a pool of 2 workers.
func benchPool(b *testing.B) *Pool {
	prev := BLASThreads()
	SetBLASThreads(1)
	pool := NewPool(2)
	b.Cleanup(func() { pool.Close(); SetBLASThreads(prev) })
	return pool
}

func benchGemm(b *testing.B, tA, tB bool, m, n, k int) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, bb, c := randn32(rng, m*k, 1), randn32(rng, k*n, 1), make([]float32, m*n)
	lda, ldb := k, n
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	pool := benchPool(b)
	b.ResetTimer()
	for b.Loop() {
		ParallelGemm(pool, tA, tB, m, n, k, 1, a, lda, bb, ldb, 0, c, n)
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkSgemm1024(b *testing.B) {
	defer SetBLASThreads(BLASThreads())
	SetBLASThreads(2)
	n := 1024
	rng := rand.New(rand.NewPCG(1, 2))
	x, y, c := randn32(rng, n*n, 1), randn32(rng, n*n, 1), make([]float32, n*n)
	for b.Loop() {
		Gemm(false, false, n, n, n, 1, x, n, y, n, 0, c, n)
	}
	b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkThreading compares OpenBLAS's own threads with the engine's pool
// splitting rows over single-threaded BLAS calls, on the MLP's up-projection.
func BenchmarkThreading(b *testing.B) {
	defer SetBLASThreads(BLASThreads())
	m, n, k := 1024, 704, 256
	rng := rand.New(rand.NewPCG(1, 2))
	x, w, c := randn32(rng, m*k, 1), randn32(rng, n*k, 1), make([]float32, m*n)
	for _, cfg := range []struct{ blas, workers int }{{1, 1}, {2, 1}, {1, 2}} {
		b.Run("blas="+itoa(cfg.blas)+"/workers="+itoa(cfg.workers), func(b *testing.B) {
			SetBLASThreads(cfg.blas)
			pool := NewPool(cfg.workers)
			defer pool.Close()
			for b.Loop() {
				ParallelGemm(pool, false, true, m, n, k, 1, x, k, w, k, 0, c, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// x·W1ᵀ of the SwiGLU: [1024,256]·[704,256]ᵀ.
func BenchmarkGemmMLPUp(b *testing.B) { benchGemm(b, false, true, 1024, 704, 256) }

// dW1 += doutᵀ·x: [704,1024]·[1024,256].
func BenchmarkGemmMLPUpGradW(b *testing.B) { benchGemm(b, true, false, 704, 256, 1024) }

// dx += dout·W2: [1024,256]·[256,704] (W2 [256,704]).
func BenchmarkGemmMLPDownGradX(b *testing.B) { benchGemm(b, false, false, 1024, 704, 256) }

// Tied output head: [1024,256]·[512,256]ᵀ.
func BenchmarkGemmLogits(b *testing.B) { benchGemm(b, false, true, 1024, 512, 256) }

// One attention head's scores: [128,64]·[128,64]ᵀ.
func BenchmarkGemmHeadScores(b *testing.B) { benchGemm(b, false, true, 128, 128, 64) }

func BenchmarkAttentionFwdBwd(b *testing.B) {
	defer SetBLASThreads(BLASThreads())
	for _, cfg := range []struct{ blas, workers int }{{1, 1}, {2, 1}, {1, 2}, {2, 2}} {
		b.Run("blas="+itoa(cfg.blas)+"/workers="+itoa(cfg.workers), func(b *testing.B) {
			SetBLASThreads(cfg.blas)
			pool := NewPool(cfg.workers)
			defer pool.Close()
			B, T, H, hd := 8, 128, 4, 64
			rng := rand.New(rand.NewPCG(3, 4))
			a := NewAttention[float32](H, H, hd, true, pool)
			q, k, v := randn32(rng, B*T*H*hd, 1), randn32(rng, B*T*H*hd, 1), randn32(rng, B*T*H*hd, 1)
			dq, dk, dv, out, g := make([]float32, len(q)), make([]float32, len(q)), make([]float32, len(q)), make([]float32, len(q)), randn32(rng, len(q), 1)
			probs, scratch := make([]float32, B*H*T*T), make([]float32, B*H*T*T)
			docs := make([]int32, B*T)
			for i := range docs {
				docs[i] = int32(i % T / 50)
			}
			for b.Loop() {
				a.Forward(out, probs, q, k, v, docs, B, T, T)
				a.Backward(dq, dk, dv, scratch, g, q, k, v, probs, B, T, T)
			}
		})
	}
}

func BenchmarkRMSNormFwdBwd(b *testing.B) {
	ps := NewParams[float32]()
	ps.Pool = benchPool(b)
	l := NewRMSNorm(ps, "n", 256, 1e-5)
	rng := rand.New(rand.NewPCG(5, 6))
	n := 1024
	x, dx, out, g, rstd := randn32(rng, n*256, 1), make([]float32, n*256), make([]float32, n*256), randn32(rng, n*256, 1), make([]float32, n)
	for b.Loop() {
		l.Forward(out, rstd, x)
		l.Backward(dx, g, x, rstd)
	}
}

func BenchmarkSwiGLUFwdBwd(b *testing.B) {
	ps := NewParams[float32]()
	ps.Pool = benchPool(b)
	m := NewSwiGLU(ps, "mlp", 256, 704)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, p := range ps.All() {
		p.Normal(rng, 0.02)
	}
	n := 1024
	acts := m.NewActs(NewArena[float32](), n)
	x, dx, out, g := randn32(rng, n*256, 1), make([]float32, n*256), make([]float32, n*256), randn32(rng, n*256, 1)
	for b.Loop() {
		m.Forward(out, x, acts)
		m.Backward(dx, g, x, acts)
	}
}

func BenchmarkCrossEntropyFwdBwd(b *testing.B) {
	n, V := 1024, 512
	rng := rand.New(rand.NewPCG(9, 10))
	logits, d, stats := randn32(rng, n*V, 1), make([]float32, n*V), make([]float32, 2*n)
	targets, mask := make([]int32, n), make([]float32, n)
	for i := range n {
		targets[i], mask[i] = int32(rng.IntN(V)), 1
	}
	for b.Loop() {
		CrossEntropyForward(stats, logits, targets, mask, V)
		CrossEntropyBackward(d, logits, stats, targets, mask, V, 1)
	}
}

func BenchmarkRoPEFwdBwd(b *testing.B) {
	r := NewRoPE[float32](64, 500000, 128)
	n, H := 1024, 4
	rng := rand.New(rand.NewPCG(11, 12))
	x, dx, out := randn32(rng, n*H*64, 1), make([]float32, n*H*64), make([]float32, n*H*64)
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = int32(i % 128)
	}
	for b.Loop() {
		r.Forward(out, x, pos, H)
		r.Backward(dx, out, pos, H)
	}
}

func BenchmarkConv2dFwdBwd(b *testing.B) {
	// C-Abstractor ResBlock conv on an 8×8 grid of width 256, batch 8.
	ps := NewParams[float32]()
	ps.Pool = benchPool(b)
	c := NewConv2d(ps, "conv", 256, 256, 3, 1, 1, true)
	rng := rand.New(rand.NewPCG(13, 14))
	c.W.Normal(rng, 0.02)
	B, H, W := 8, 8, 8
	x, dx, g := randn32(rng, B*H*W*256, 1), make([]float32, B*H*W*256), randn32(rng, B*H*W*256, 1)
	out, cols, dcols := make([]float32, B*H*W*256), make([]float32, c.ColsLen(B, H, W)), make([]float32, c.ColsLen(B, H, W))
	for b.Loop() {
		c.Forward(out, cols, x, B, H, W)
		c.Backward(dx, g, cols, dcols, B, H, W)
	}
}

func BenchmarkAdamW(b *testing.B) {
	m := newRefDecoder(1, 8, benchPool(b))
	for b.Loop() {
		m.opt.Step(1e-3)
	}
	b.ReportMetric(float64(m.ps.Len()), "params")
}

// BenchmarkDecoderStep is one whole training step (forward, backward,
// clipping, AdamW) of the reference text-only decoder at B=8, T=128; compare
// with PyTorch's 0.221 s/step on 2 cores (docs/engine.md).
//
// blas=2/workers=1 leaves all parallelism to OpenBLAS; blas=1/workers=2 runs
// OpenBLAS single-threaded and splits products and heads over the pool.
func BenchmarkDecoderStep(b *testing.B) {
	defer SetBLASThreads(BLASThreads())
	for _, cfg := range []struct{ blas, workers int }{{2, 1}, {1, 2}} {
		b.Run("blas="+itoa(cfg.blas)+"/workers="+itoa(cfg.workers), func(b *testing.B) {
			SetBLASThreads(cfg.blas)
			pool := NewPool(cfg.workers)
			defer pool.Close()
			m := newRefDecoder(8, 128, pool)
			m.step()
			for b.Loop() {
				m.step()
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/step")
			b.ReportMetric(float64(m.B*m.T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func BenchmarkExpf(b *testing.B) {
	x := randn32(rand.New(rand.NewPCG(1, 1)), 4096, 3)
	var s float32
	for b.Loop() {
		for _, v := range x {
			s += expf(v)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*len(x)), "ns/elem")
}

func BenchmarkSwiGLUElementwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := 1 << 16
	a, c, out := randn32(rng, n, 2), randn32(rng, n, 1), make([]float32, n)
	for b.Loop() {
		SwiGLUForward(out, a, c)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*n), "ns/elem")
}

// ViT block pieces at the image reference shapes: 8 images × 64 patches,
// width 256.
func BenchmarkLayerNormFwdBwd(b *testing.B) {
	ps := NewParams[float32]()
	ps.Pool = benchPool(b)
	l := NewLayerNorm(ps, "ln", 256, 1e-5)
	rng := rand.New(rand.NewPCG(15, 16))
	n := 512
	x, dx, out, g := randn32(rng, n*256, 1), make([]float32, n*256), make([]float32, n*256), randn32(rng, n*256, 1)
	mean, rstd := make([]float32, n), make([]float32, n)
	for b.Loop() {
		l.Forward(out, mean, rstd, x)
		l.Backward(dx, g, x, mean, rstd)
	}
}

func BenchmarkMLPFwdBwd(b *testing.B) {
	ps := NewParams[float32]()
	ps.Pool = benchPool(b)
	m := NewMLP(ps, "mlp", 256, 1024, 256)
	rng := rand.New(rand.NewPCG(17, 18))
	for _, p := range ps.All() {
		p.Normal(rng, 0.02)
	}
	n := 512
	acts := m.NewActs(NewArena[float32](), n)
	x, dx, out, g := randn32(rng, n*256, 1), make([]float32, n*256), make([]float32, n*256), randn32(rng, n*256, 1)
	for b.Loop() {
		m.Forward(out, x, acts)
		m.Backward(dx, g, x, acts)
	}
}

// BenchmarkGELUElementwise is the ViT MLP's activation, forward and
// gradient, on 64k elements.
func BenchmarkGELUElementwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := 1 << 16
	x, g, out, dx := randn32(rng, n, 2), randn32(rng, n, 1), make([]float32, n), make([]float32, n)
	for b.Loop() {
		GELUForward(out, x)
		GELUBackward(dx, g, x)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*n), "ns/elem")
}
