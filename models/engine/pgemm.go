package engine

// gemmArgs is one Gemm call split by rows of C over a pool; the pool keeps
// one per element type with its task bound once, so splitting allocates
// nothing.
type gemmArgs[T Float] struct {
	tA, tB        bool
	m, n, k       int
	alpha, beta   T
	a, b, c       []T
	lda, ldb, ldc int
	rows          int // rows of C per block
	task          func(int)
}

func (g *gemmArgs[T]) run(i int) {
	r0 := i * g.rows
	r1 := min(r0+g.rows, g.m)
	off := r0 * g.lda
	if g.tA {
		off = r0 // rows of C are columns of A
	}
	a := g.a[off:]
	Gemm(g.tA, g.tB, r1-r0, g.n, g.k, g.alpha, a, g.lda, g.b, g.ldb, g.beta, g.c[r0*g.ldc:], g.ldc)
}

// minSplitWork is the smallest m·n·k worth splitting: below it the blocks'
// call overhead and load imbalance cost more than a second core gains.
const minSplitWork = 1 << 18

// ParallelGemm is Gemm with the rows of C split into one block per worker of
// p, each block a single BLAS call; with a nil or one-worker pool, or a small
// product, it is Gemm. It is how the engine keeps every core busy while
// OpenBLAS itself runs one thread (see SetBLASThreads).
func ParallelGemm[T Float](p *Pool, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	w := p.Workers()
	if w == 1 || m < 2*w || m*n*k < minSplitWork {
		Gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	var g *gemmArgs[T]
	if is32[T]() {
		g = any(&p.gemm32).(*gemmArgs[T])
	} else {
		g = any(&p.gemm64).(*gemmArgs[T])
	}
	if !p.gemmMu.TryLock() { // the pool is already splitting a product
		Gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	defer p.gemmMu.Unlock()
	rows := (m + w - 1) / w
	*g = gemmArgs[T]{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, b: b, c: c,
		lda: lda, ldb: ldb, ldc: ldc, rows: rows, task: g.task}
	p.For((m+rows-1)/rows, g.task)
	g.a, g.b, g.c = nil, nil, nil
}
