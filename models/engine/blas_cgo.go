//go:build cgo && !purego

package engine

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
*/
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// The BLAS implementation is chosen here, for the whole process: gonum's
// blas32/blas64 dispatch through one package-level implementation, and two
// BLAS libraries in one process would fight over the cores anyway.
func init() {
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
}

// BLASName names the BLAS implementation this binary was built with.
func BLASName() string { return "openblas" }

// SetBLASThreads sets OpenBLAS's thread count. OpenBLAS keeps one thread pool
// per process, so this is process-wide: call it once at start (cells that
// share a machine should split the cores between them). n < 1 means 1.
func SetBLASThreads(n int) {
	C.openblas_set_num_threads(C.int(max(n, 1)))
}

// BLASThreads reports OpenBLAS's current thread count.
func BLASThreads() int { return int(C.openblas_get_num_threads()) }
