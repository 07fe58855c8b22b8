package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestPtrAlign(t *testing.T) {
	for _, c := range []struct {
		ps   []uintptr
		want uint32
	}{
		{[]uintptr{0x1000, 0x2000}, 256},
		{[]uintptr{0x1000, 0x2010}, 16},
		{[]uintptr{0x1002}, 2},
		{[]uintptr{0x1100, 0x1004, 0x1000}, 4},
	} {
		if got := ptrAlign(c.ps...); got != c.want {
			t.Errorf("ptrAlign(%#x) = %d, want %d", c.ps, got, c.want)
		}
	}
}

// TestLtMatchesGemmEx: the tuned cuBLASLt products agree with
// cublasGemmEx on the same bf16 operands, for each transpose, both output
// types, beta 0 and 1, and operands 4 bytes off a 256-byte boundary (the
// layouts are given column-major, as gemmEx's, so a wrong one shows as
// garbage, not as rounding).
func TestLtMatchesGemmEx(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if d.lt == nil {
		t.Skip("cuBLASLt did not load: bf16 products run through cublasGemmEx only")
	}
	defer d.enter()()
	rng := rand.New(rand.NewPCG(1, 2))
	const m, n, k = 200, 136, 72
	host := make([]float32, m*k+k*n+4)
	for i := range host {
		host[i] = rng.Float32()*2 - 1
	}
	cInit := make([]float32, m*n+2)
	for i := range cInit {
		cInit[i] = rng.Float32()
	}
	src, err := d.alloc(max(len(host), len(cInit))) // fp32 staging for both casts
	if err != nil {
		t.Fatal(err)
	}
	ab, err := d.alloc(len(host))
	if err != nil {
		t.Fatal(err)
	}
	if err := upload(d, src, host); err != nil {
		t.Fatal(err)
	}
	if err := d.castBF16(ab, src, len(host)); err != nil {
		t.Fatal(err)
	}
	out, err := d.alloc(m*n + 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tA, tB, out16 bool
		beta          float32
		off           int // elements: 2 puts A, B (and a bf16 C) 4 bytes off 256, an fp32 C 8
	}{
		{false, true, false, 0, 0}, {false, true, true, 1, 0}, {false, false, true, 0, 2},
		{true, false, false, 1, 0}, {true, false, false, 1, 2}, {true, true, true, 0, 0},
	} {
		t.Run(fmt.Sprintf("tA%v_tB%v_bf16out%v_beta%v_off%d", c.tA, c.tB, c.out16, c.beta, c.off), func(t *testing.T) {
			defer d.enter()() // a subtest runs on its own goroutine
			lda, ldb := k, n
			if c.tA {
				lda = m
			}
			if c.tB {
				ldb = k
			}
			a, b, cp := half(ab, c.off), half(ab, c.off+m*k), out.P+uintptr(4*c.off)
			gemm, ct := d.gemmBF16, uintptr(cudaR32F)
			if c.out16 {
				gemm, ct, cp = d.gemmBF16Out, cudaR16BF, half(out, c.off)
			}
			product := func(lt *ltTuner) []float32 {
				d.lt = lt
				if c.out16 { // C holds bf16: the initial values rounded
					if err := upload(d, src, cInit); err != nil {
						t.Fatal(err)
					}
					if err := d.castBF16(out, src, len(cInit)); err != nil {
						t.Fatal(err)
					}
				} else if err := upload(d, out, cInit); err != nil {
					t.Fatal(err)
				}
				if err := gemm(c.tA, c.tB, m, n, k, 0.5, a, lda, b, ldb, c.beta, cp, n); err != nil {
					t.Fatal(err)
				}
				if c.out16 { // the bf16 C from element off on (off even: whole words)
					return downloadBF16Rows(t, d, Buf{P: cp, N: out.N - c.off/2}, m, n, n)
				}
				got := make([]float32, m*n+2)
				if err := download(d, got, out); err != nil {
					t.Fatal(err)
				}
				return got[c.off : c.off+m*n]
			}
			tuner := d.lt
			want := product(nil)
			got := product(tuner)
			key := ltShape{tA: c.tA, tB: c.tB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: n, ab: cudaR16BF, ct: ct, align: ptrAlign(a, b, cp)}
			if p, ok := tuner.plans[key]; !ok || p == nil {
				t.Fatalf("the product did not go through cuBLASLt (planned %v)", ok)
			}
			bound := 1e-5
			if c.out16 {
				bound = 1.0 / 128 // one bf16 rounding apart at most
			}
			if r := relDiff(got, want); r > bound || math.IsNaN(r) {
				t.Errorf("cuBLASLt vs cublasGemmEx: relative difference %.3g (bound %.3g)", r, bound)
			}
		})
	}
}

// TestGemmBiasEpilogue: gemmBF16Bias through cuBLASLt's bias epilogue
// (bias and residual in the product's one pass) agrees with its fallback
// (bias, or residual + bias, written by a kernel, the product added on),
// for a bf16 output (its bias the bf16 copy), an fp32 one with a residual
// and one without; the product must have gone through cuBLASLt with the
// epilogue. The bias's
// and residual's scale (≈ 1) against the product's (≈ √k/3) makes a
// dropped or doubled term show far above the rounding.
func TestGemmBiasEpilogue(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if d.lt == nil {
		t.Skip("cuBLASLt did not load: the bias is added by kernels")
	}
	defer d.enter()()
	rng := rand.New(rand.NewPCG(3, 4))
	const m, n, k = 200, 136, 72
	fill := func(size int) []float32 {
		v := make([]float32, size)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	alloc := func(vals []float32) Buf {
		b, err := d.alloc(len(vals))
		if err != nil {
			t.Fatal(err)
		}
		if err := upload(d, b, vals); err != nil {
			t.Fatal(err)
		}
		return b
	}
	src := alloc(fill(m*k + n*k))
	ab, err := d.alloc(src.N)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.castBF16(ab, src, src.N); err != nil {
		t.Fatal(err)
	}
	bias, res := alloc(fill(n)), alloc(fill(m*n))
	biasH, err := d.alloc(n / 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.castBF16(biasH, bias, n); err != nil {
		t.Fatal(err)
	}
	out, err := d.alloc(m * n)
	if err != nil {
		t.Fatal(err)
	}
	a, b := half(ab, 0), half(ab, m*k) // A [m, k], B [n, k] (a linear layer: x·Wᵀ)
	for _, c := range []struct {
		name     string
		out16    bool
		residual bool
	}{{"bf16-out", true, false}, {"fp32-residual", false, true}, {"fp32", false, false}} {
		t.Run(c.name, func(t *testing.T) {
			defer d.enter()()
			r := Buf{}
			if c.residual {
				r = res
			}
			product := func(lt *ltTuner) []float32 {
				d.lt = lt
				if err := d.zero(out); err != nil {
					t.Fatal(err)
				}
				if err := d.gemmBF16Bias(c.out16, false, true, m, n, k, a, k, b, k, bias, biasH.P, r, out); err != nil {
					t.Fatal(err)
				}
				if c.out16 {
					return downloadBF16Rows(t, d, out, m, n, n)
				}
				got := make([]float32, m*n)
				if err := download(d, got, out); err != nil {
					t.Fatal(err)
				}
				return got
			}
			tuner := d.lt
			want := product(nil)
			got := product(tuner)
			ct, cp, bp := uintptr(cudaR32F), out.P, bias.P
			if c.residual {
				cp = res.P
			}
			if c.out16 {
				ct, bp = cudaR16BF, biasH.P
			}
			key := ltShape{tA: false, tB: true, m: m, n: n, k: k, lda: k, ldb: k, ldc: n, ab: cudaR16BF, ct: ct,
				align: ptrAlign(a, b, cp, out.P), biasAlign: ptrAlign(bp)}
			if p, ok := tuner.plans[key]; !ok || p == nil || !p.bias {
				t.Fatalf("the product did not go through cuBLASLt's bias epilogue (planned %v)", ok)
			}
			bound := 1e-5
			if c.out16 {
				bound = 1.0 / 128 // one bf16 rounding apart at most
			}
			if r := relDiff(got, want); r > bound || math.IsNaN(r) {
				t.Errorf("bias epilogue vs kernels + cublasGemmEx: relative difference %.3g (bound %.3g)", r, bound)
			}
		})
	}
}
