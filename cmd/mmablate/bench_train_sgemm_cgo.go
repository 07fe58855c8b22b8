//go:build cgo && !purego

package main

/*
#cgo LDFLAGS: -lopenblas
// Declared here rather than through <cblas.h>, whose location differs
// between distributions; the enums are ints in the C ABI.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
                 float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);
char *openblas_get_corename(void);
*/
import "C"

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// rawSgemmAvailable says whether rawSgemm calls OpenBLAS directly.
const rawSgemmAvailable = true

// rawSgemm is C = op(A)·op(B) through cblas_sgemm with no Go layer in
// between, row-major with packed leading dimensions: the baseline the
// engine's products (gonum blas32 → netlib → OpenBLAS, rows split over the
// engine's pool) are compared against. op(A) is m×k, op(B) is k×n.
func rawSgemm(tA, tB bool, m, n, k int, a, b, c []float32) {
	ta, lda := cblasNoTrans, k
	if tA {
		ta, lda = cblasTrans, m
	}
	tb, ldb := cblasNoTrans, n
	if tB {
		tb, ldb = cblasTrans, k
	}
	C.cblas_sgemm(cblasRowMajor, C.int(ta), C.int(tb), C.int(m), C.int(n), C.int(k),
		1, (*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb), 0, (*C.float)(&c[0]), C.int(n))
}

// blasCore is the kernel family OpenBLAS picked for this CPU. "Prescott"
// on a modern CPU means its CPUID is hidden (some virtual machines): the
// SSE3 kernels run several times slower, and OPENBLAS_CORETYPE fixes it.
func blasCore() string { return C.GoString(C.openblas_get_corename()) }
