package cuda

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkLtAlgos: the bf16 image path's product shapes (the reference's
// 16 images of 196 patches through ViT-B/16) timed with cublasGemmEx and
// with each algorithm cuBLASLt's heuristic lists, zero data.
func BenchmarkLtAlgos(b *testing.B) {
	needGPU(b)
	d, err := Open(0)
	if err != nil {
		b.Fatal(err)
	}
	defer d.enter()()
	lt, err := loadCublasLt()
	if err != nil {
		b.Fatal(err)
	}
	const n, dv, F = 3136, 768, 3072
	type shape struct {
		name     string
		tA, tB   bool
		m, nn, k int
		out16    bool
		beta     float32
	}
	shapes := []shape{
		{"qkv-fwd", false, true, n, 3 * dv, dv, true, 1},
		{"proj-fwd", false, true, n, dv, dv, false, 1},
		{"fc1-fwd", false, true, n, F, dv, true, 1},
		{"fc2-fwd", false, true, n, dv, F, false, 1},
		{"fc2-dx", false, false, n, F, dv, true, 0},
		{"fc2-dw", true, false, dv, F, n, false, 1},
		{"fc1-dx", false, false, n, dv, F, true, 0},
		{"fc1-dw", true, false, F, dv, n, false, 1},
		{"proj-dx", false, false, n, dv, dv, true, 0},
		{"proj-dw", true, false, dv, dv, n, false, 1},
		{"qkv-dx", false, false, n, dv, 3 * dv, true, 0},
		{"qkv-dw", true, false, 3 * dv, dv, n, false, 1},
		// the text decoder's (B·T = 16384 rows, width 1024, SwiGLU 2816, vocab 32768)
		{"dec-qkv", false, true, 16384, 1536, 1024, true, 0},
		{"dec-up", false, true, 16384, 2816, 1024, true, 0},
		{"dec-down", false, true, 16384, 1024, 2816, false, 1},
		{"dec-head", false, true, 16384, 32768, 1024, true, 0},
		{"dec-up-dw", true, false, 2816, 1024, 16384, false, 1},
		{"dec-down-dx", false, false, 16384, 2816, 1024, true, 0},
	}
	const wsBytes = 32 << 20
	A, _ := d.alloc(16384 * 2816)
	B, _ := d.alloc(32768 * 1024)
	C, _ := d.alloc(16384 * 32768)
	ws, _ := d.alloc(wsBytes / 4)
	defer func() {
		for _, buf := range []Buf{A, B, C, ws} {
			d.drv.call("cuMemFree", d.drv.cuMemFree, buf.P)
		}
	}()
	for _, buf := range []Buf{A, B, C, ws} {
		if err := d.zero(buf); err != nil {
			b.Fatal(err)
		}
	}
	const reps = 50
	timeIt := func(f func() error) time.Duration {
		for range 3 {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.sync(); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		for range reps {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.sync(); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0) / reps
	}
	var sumEx, sumBest time.Duration
	for _, s := range shapes {
		lda, ldb := s.k, s.nn
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		ct, gemm := uintptr(cudaR32F), d.gemmBF16
		if s.out16 {
			ct, gemm = cudaR16BF, d.gemmBF16Out
		}
		ex := timeIt(func() error { return gemm(s.tA, s.tB, s.m, s.nn, s.k, 1, A.P, lda, B.P, ldb, s.beta, C.P, s.nn) })
		p, err := lt.plan(ltShape{tA: s.tA, tB: s.tB, m: s.m, n: s.nn, k: s.k, lda: lda, ldb: ldb, ldc: s.nn, ab: cudaR16BF, ct: ct, align: ptrAlign(A.P, B.P, C.P)}, 16, wsBytes)
		if err != nil {
			b.Fatal(err)
		}
		best, bi := time.Duration(1<<62), -1
		line := ""
		for i := range p.algos {
			t := timeIt(func() error { return lt.run(d, p, i, 1, A.P, B.P, s.beta, C.P, C.P, 0, ws.P, wsBytes, 0) })
			line += fmt.Sprintf(" %.1f", float64(t)/1e3)
			if t < best {
				best, bi = t, i
			}
		}
		flop := 2 * float64(s.m) * float64(s.nn) * float64(s.k)
		fmt.Printf("%-9s gemmEx %6.1f µs (%3.0f TF/s)  lt best #%d %6.1f µs (%3.0f TF/s)  all:%s\n", s.name,
			float64(ex)/1e3, flop/ex.Seconds()/1e12, bi, float64(best)/1e3, flop/best.Seconds()/1e12, line)
		if s.m == n || s.k == n {
			sumEx += ex
			sumBest += best
		}
	}
	fmt.Printf("per ViT block: gemmEx %.1f µs, best %.1f µs; ×12 blocks: %.2f vs %.2f ms\n", float64(sumEx)/1e3, float64(sumBest)/1e3,
		12*float64(sumEx)/1e6, 12*float64(sumBest)/1e6)
}
