package cuda

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Precision is the arithmetic of matrix products (package doc).
type Precision string

const (
	FP32 Precision = "fp32"
	TF32 Precision = "tf32"
	BF16 Precision = "bf16"
)

// ParsePrecision accepts fp32, tf32 and bf16 ("" is fp32).
func ParsePrecision(s string) (Precision, error) {
	switch Precision(s) {
	case "", FP32:
		return FP32, nil
	case TF32, BF16:
		return Precision(s), nil
	}
	return "", fmt.Errorf("precision %q: want fp32, tf32 or bf16", s)
}

// cuBLAS enum values (cublas_api.h, library_types.h).
const (
	cublasOpN              = 0
	cublasOpT              = 1
	cudaR32F               = 0
	cudaR16BF              = 14
	cublasCompute32F       = 68
	cublasCompute32FFast16 = 75 // CUBLAS_COMPUTE_32F_FAST_16BF
	cublasCompute32FTF32   = 77 // CUBLAS_COMPUTE_32F_FAST_TF32
	cublasGemmDefault      = ^uintptr(0)
)

func (p Precision) compute() uintptr {
	switch p {
	case TF32:
		return cublasCompute32FTF32
	case BF16:
		return cublasCompute32FFast16
	}
	return cublasCompute32F
}

type cublas struct {
	lib                             *library
	handle                          uintptr
	gemmEx, gemmBatchedEx, statusFn uintptr
	create, destroy, setStream      uintptr
}

var cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"}

func loadCublas() (*cublas, error) {
	lib, err := openLibrary("cuBLAS ships with the CUDA runtime libraries (pip nvidia-cublas, or a toolkit)", cublasNames...)
	if err != nil {
		return nil, err
	}
	c := &cublas{lib: lib}
	if err := lib.bind(map[string]*uintptr{
		"cublasCreate_v2": &c.create, "cublasDestroy_v2": &c.destroy,
		"cublasGemmEx": &c.gemmEx, "cublasGemmBatchedEx": &c.gemmBatchedEx,
		"cublasGetStatusString": &c.statusFn, "cublasSetStream_v2": &c.setStream,
	}); err != nil {
		return nil, err
	}
	if err := c.check("cublasCreate", first(purego.SyscallN(c.create, uintptr(unsafe.Pointer(&c.handle))))); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cublas) check(call string, r uintptr) error {
	if r == 0 {
		return nil
	}
	s, _, _ := purego.SyscallN(c.statusFn, r)
	return &Error{Lib: c.lib.name, Call: call, Code: int(r), Msg: goString(s)}
}

func op(t bool) uintptr {
	if t {
		return cublasOpT
	}
	return cublasOpN
}

// gemm computes, row-major like engine.Gemm, C[m,n] = alpha·op(A)·op(B) +
// beta·C with leading dimensions lda, ldb, ldc. cuBLAS is column-major, so
// it runs Cᵀ = op(B)ᵀ·op(A)ᵀ: the same memory read as column-major matrices.
func (d *Device) gemm(p Precision, tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	return d.gemmEx(cudaR32F, cudaR32F, p.compute(), "cublasGemmEx", tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16 is gemm with bf16 operands: a and b hold 2-byte elements
// (leading dimensions in elements), c is float32, the products accumulate
// in float32 (CUBLAS_COMPUTE_32F). cuBLAS runs this at about 1.7 times the
// rate of fp32 operands under CUBLAS_COMPUTE_32F_FAST_16BF, which converts
// them on every call (BenchmarkGemm on an H200, 16384×2816×1024: 640–652
// against 371–388 TFLOP/s).
func (d *Device) gemmBF16(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	return d.gemmEx(cudaR16BF, cudaR32F, cublasCompute32F, "cublasGemmEx bf16", tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16Out is gemmBF16 with c in bf16 too (rounded once, from the
// fp32 accumulators).
func (d *Device) gemmBF16Out(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	return d.gemmEx(cudaR16BF, cudaR16BF, cublasCompute32F, "cublasGemmEx bf16 out", tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16Bias sets dst [m, n] = op(A)·op(B) + bias + res: bf16 operands
// accumulated in fp32 as gemmBF16, bias a row [n] added to every row, res
// the fp32 residual stream (the zero Buf: none; only with an fp32 dst),
// dst fp32 or (out16) bf16, rows n elements apart. bias is fp32; biasH,
// its bf16 copy, is what a bf16 dst's epilogue reads (cuBLASLt takes a
// bias of the output's type there), the bias rounded as the kernel below
// rounds it. Through cuBLASLt the bias is the product's epilogue and res
// its C operand, one pass that rounds once; without it (or without a plan
// for the shape) dst first takes bias (+ res) from a kernel and the
// product adds onto it (beta 1), as the ViT did before: on an H200 the
// bias and residual kernels were 0.40 ms of the multimodal reference step
// (BenchmarkImageParts).
func (d *Device) gemmBF16Bias(out16, tA, tB bool, m, n, k int, a uintptr, lda int, b uintptr, ldb int, bias Buf, biasH uintptr, res, dst Buf) error {
	if m == 0 || n == 0 {
		return nil
	}
	if out16 && res.P != 0 {
		return fmt.Errorf("gemmBF16Bias: a residual needs an fp32 output (m=%d n=%d k=%d)", m, n, k)
	}
	ct := uintptr(cudaR32F)
	if out16 {
		ct = cudaR16BF
	}
	if d.lt != nil && (biasH != 0 || !out16) {
		c, beta := dst.P, float32(0)
		if res.P != 0 {
			c, beta = res.P, 1
		}
		bp := bias.P
		if out16 {
			bp = biasH
		}
		s := ltShape{tA: tA, tB: tB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: n, ab: cudaR16BF, ct: ct,
			align: ptrAlign(a, b, c, dst.P), biasAlign: ptrAlign(bp)}
		end := d.profile()
		done, err := d.lt.gemm(d, s, 1, a, b, beta, c, dst.P, bp)
		if done || err != nil {
			if d.prof != nil { // no name to format on the hot path
				end(fmt.Sprintf("cuBLASLt bias epilogue %d×%d×%d", m, n, k))
			}
			return err
		}
		end("") // the kernels and cublasGemmEx below run it, each profiled
	}
	var err error
	switch {
	case out16:
		err = d.biasRowsH(dst, bias, m, n)
	case res.P != 0:
		err = d.residualBias(dst, res, bias, m, n)
	default: // the product first, then the bias on top
		if err := d.gemmEx(cudaR16BF, ct, cublasCompute32F, "cublasGemmEx bf16", tA, tB, m, n, k, 1, a, lda, b, ldb, 0, dst.P, n); err != nil {
			return err
		}
		return d.addBcast(dst, bias, m*n, n)
	}
	if err != nil {
		return err
	}
	return d.gemmEx(cudaR16BF, ct, cublasCompute32F, "cublasGemmEx bf16 bias", tA, tB, m, n, k, 1, a, lda, b, ldb, 1, dst.P, n)
}

// gemmEx is one cublasGemmEx with operands of type ab, C of type ct and
// compute type compute.
func (d *Device) gemmEx(ab, ct, compute uintptr, name string, tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	label := name // the profile's: which library ran the product
	if d.prof != nil {
		end := d.profile()
		defer func() { end(fmt.Sprintf("%s %d×%d×%d", label, m, n, k)) }()
	}
	if ab == cudaR16BF && compute == cublasCompute32F && d.lt != nil {
		s := ltShape{tA: tA, tB: tB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, ab: ab, ct: ct, align: ptrAlign(a, b, c)}
		if done, err := d.lt.gemm(d, s, alpha, a, b, beta, c, c, 0); done || err != nil {
			label = strings.Replace(name, "cublasGemmEx", "cuBLASLt", 1)
			return err
		}
	}
	d.scalars[0], d.scalars[1] = alpha, beta
	al, be := d.host+2*maxArgs*8, d.host+2*maxArgs*8+4
	r, _, _ := purego.SyscallN(d.blas.gemmEx, d.blasHandle, op(tB), op(tA), uintptr(n), uintptr(m), uintptr(k),
		al, b, ab, uintptr(ldb), a, ab, uintptr(lda), be, c, ct, uintptr(ldc),
		compute, cublasGemmDefault)
	return d.blas.check(fmt.Sprintf("%s(m=%d n=%d k=%d)", name, m, n, k), r)
}

// gemmBatched is gemm over count independent products whose operands are
// given by device arrays of device pointers (a, b, c each [count]uintptr).
func (d *Device) gemmBatched(p Precision, tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc, count int) error {
	return d.gemmBatchedEx(cudaR32F, cudaR32F, p.compute(), "cublasGemmBatchedEx", tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count)
}

// gemmBatchedBF16 is gemmBatched with bf16 operands (as gemmBF16: a and b
// point to 2-byte elements, c to float32, CUBLAS_COMPUTE_32F). Every
// operand pointer must be 16-byte aligned (cuBLAS reads them with vector
// loads and cannot check pointers inside an array): the caller ensures it.
func (d *Device) gemmBatchedBF16(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc, count int) error {
	return d.gemmBatchedEx(cudaR16BF, cudaR32F, cublasCompute32F, "cublasGemmBatchedEx bf16", tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count)
}

// gemmBatchedBF16Out is gemmBatchedBF16 with c in bf16 too.
func (d *Device) gemmBatchedBF16Out(tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc, count int) error {
	return d.gemmBatchedEx(cudaR16BF, cudaR16BF, cublasCompute32F, "cublasGemmBatchedEx bf16 out", tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count)
}

// gemmBatchedEx is one cublasGemmBatchedEx, typed as gemmEx.
func (d *Device) gemmBatchedEx(ab, ct, compute uintptr, name string, tA, tB bool, m, n, k int, alpha float32, a uintptr, lda int, b uintptr, ldb int, beta float32, c uintptr, ldc, count int) error {
	if m == 0 || n == 0 || count == 0 {
		return nil
	}
	if d.prof != nil {
		defer d.profile()(fmt.Sprintf("%s %d×%d×%d ×%d", name, m, n, k, count))
	}
	d.scalars[0], d.scalars[1] = alpha, beta
	al, be := d.host+2*maxArgs*8, d.host+2*maxArgs*8+4
	r, _, _ := purego.SyscallN(d.blas.gemmBatchedEx, d.blasHandle, op(tB), op(tA), uintptr(n), uintptr(m), uintptr(k),
		al, b, ab, uintptr(ldb), a, ab, uintptr(lda), be, c, ct, uintptr(ldc),
		uintptr(count), compute, cublasGemmDefault)
	return d.blas.check(fmt.Sprintf("%s(m=%d n=%d k=%d ×%d)", name, m, n, k, count), r)
}
