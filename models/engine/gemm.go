package engine

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C with row-major storage, where
// op(X) = Xᵀ when tX is true, op(A) is m×k, op(B) is k×n and C is m×n. lda,
// ldb and ldc are the row strides, so A, B and C may be strided views into
// larger tensors (one head of a [T, H·hd] activation, say). float32 goes to
// blas32, float64 to blas64. It panics, as BLAS does, on inconsistent sizes.
func Gemm[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	if k == 0 {
		// BLAS would only scale C; keep the semantics without a zero-size view.
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
			} else {
				for j := range row {
					row[j] *= beta
				}
			}
		}
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	a, b, c = a[:(ar-1)*lda+ac], b[:(br-1)*ldb+bc], c[:(m-1)*ldc+n]
	blasForProduct(m * n * k)
	if is32[T]() {
		blas32.Gemm(ta, tb, float32(alpha),
			blas32.General{Rows: ar, Cols: ac, Stride: lda, Data: as32(a)},
			blas32.General{Rows: br, Cols: bc, Stride: ldb, Data: as32(b)},
			float32(beta),
			blas32.General{Rows: m, Cols: n, Stride: ldc, Data: as32(c)})
		return
	}
	blas64.Gemm(ta, tb, float64(alpha),
		blas64.General{Rows: ar, Cols: ac, Stride: lda, Data: as64(a)},
		blas64.General{Rows: br, Cols: bc, Stride: ldb, Data: as64(b)},
		float64(beta),
		blas64.General{Rows: m, Cols: n, Stride: ldc, Data: as64(c)})
}
