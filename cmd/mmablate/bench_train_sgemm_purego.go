//go:build !cgo || purego

package main

// rawSgemmAvailable is false in pure-Go builds: there is no OpenBLAS to
// compare the engine's matrix product with.
const rawSgemmAvailable = false

func rawSgemm(tA, tB bool, m, n, k int, a, b, c []float32) {
	panic("rawSgemm: pure-Go build has no OpenBLAS")
}

func blasCore() string { return "" }
