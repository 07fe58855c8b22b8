//go:build !cgo || purego

package engine

import "runtime"

// BLASName names the BLAS implementation this binary was built with: gonum's
// pure-Go BLAS, blas32's default, so nothing needs to be installed.
func BLASName() string { return "gonum" }

// SetBLASThreads is a no-op for the pure-Go BLAS, which splits large
// products over GOMAXPROCS goroutines by itself.
func SetBLASThreads(n int) {}

// BLASThreads reports GOMAXPROCS, the parallelism gonum's BLAS uses.
func BLASThreads() int { return runtime.GOMAXPROCS(0) }

// The pure-Go BLAS has no thread count to manage (see blas_cgo.go).
func blasEnterParallel()      {}
func blasExitParallel()       {}
func blasForProduct(work int) {}
