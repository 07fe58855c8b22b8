//go:build cgo && !purego

package engine

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
*/
import "C"

import (
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// OpenBLAS has one thread count per process, so the engine mirrors it in
// process-wide variables rather than per value: blasWant is what
// SetBLASThreads asked for, blasCur what OpenBLAS is set to right now.
// Products issued inside a pool's parallel region run OpenBLAS on one thread
// (blasEnterParallel); a large product issued outside every region gets
// blasWant threads back (blasForProduct). Two multi-threaded OpenBLAS calls
// at once serialise on OpenBLAS's level-3 lock, and its idle threads spin
// (sched_yield) on cores the pool's goroutines need: mixing the two was
// measured to burn ~60% more CPU per training step.
var (
	blasWant atomic.Int32
	blasCur  atomic.Int32
	blasMu   sync.Mutex // orders changes of OpenBLAS's count with blasCur
)

// The BLAS implementation is chosen here, for the whole process: gonum's
// blas32/blas64 dispatch through one package-level implementation, and two
// BLAS libraries in one process would fight over the cores anyway.
func init() {
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
	n := int32(C.openblas_get_num_threads())
	blasWant.Store(n)
	blasCur.Store(n)
}

// BLASName names the BLAS implementation this binary was built with.
func BLASName() string { return "openblas" }

// SetBLASThreads sets OpenBLAS's thread count for products issued outside a
// pool's parallel region; inside one (a ParallelGemm block, an attention
// head) OpenBLAS always runs one thread, because the pool's workers already
// occupy the cores. OpenBLAS keeps one thread pool per process, so this is
// process-wide: call it once at start (cells that share a machine should
// split the cores between them). n < 1 means 1.
func SetBLASThreads(n int) {
	n = max(n, 1)
	blasWant.Store(int32(n))
	setOpenBLAS(int32(n))
}

// BLASThreads reports the thread count set by SetBLASThreads (at start,
// OpenBLAS's own default).
func BLASThreads() int { return int(blasWant.Load()) }

func setOpenBLAS(n int32) {
	blasMu.Lock()
	if blasCur.Load() != n {
		C.openblas_set_num_threads(C.int(n))
		blasCur.Store(n)
	}
	blasMu.Unlock()
}

// blasEnterParallel is called when a pool starts running tasks on several
// goroutines; blasExitParallel when they have all returned.
func blasEnterParallel() {
	blasRegions.Add(1)
	if blasCur.Load() != 1 {
		setOpenBLAS(1)
	}
}

func blasExitParallel() { blasRegions.Add(-1) }

// blasRegions counts the pools' parallel regions running in the process.
var blasRegions atomic.Int32

// blasForProduct restores SetBLASThreads's count before a product of
// m·n·k = work issued outside every parallel region. Small products are left
// alone: OpenBLAS runs them on one thread anyway (below 64³), so the count
// does not flip back and forth between a model's small and split products.
func blasForProduct(work int) {
	if want := blasWant.Load(); want > 1 && work >= minSplitWork && blasCur.Load() != want && blasRegions.Load() == 0 {
		setOpenBLAS(want)
	}
}
