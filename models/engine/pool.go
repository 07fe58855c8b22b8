package engine

import (
	"sync"
	"sync/atomic"
)

// Pool is a bounded set of worker goroutines for data-parallel loops
// (attention over (batch, head), cross-entropy over rows). It is a value
// owned by whoever builds the model, not a process global, so cells in one
// process can size their own. A nil *Pool or one worker runs loops inline.
type Pool struct {
	workers int
	wake    chan struct{}
	mu      sync.Mutex // held by the running For
	f       func(int)
	n       int64
	next    atomic.Int64
	wg      sync.WaitGroup
	gemmMu  sync.Mutex // one ParallelGemm at a time
	gemm32  gemmArgs[float32]
	gemm64  gemmArgs[float64]
}

// NewPool starts workers-1 goroutines (the caller of For is the last worker).
func NewPool(workers int) *Pool {
	p := &Pool{workers: max(workers, 1), wake: make(chan struct{})}
	p.gemm32.task = p.gemm32.run
	p.gemm64.task = p.gemm64.run
	for range p.workers - 1 {
		go func() {
			for range p.wake {
				p.drain()
				p.wg.Done()
			}
		}()
	}
	return p
}

// Workers is the pool's parallelism (1 for a nil pool).
func (p *Pool) Workers() int {
	if p == nil {
		return 1
	}
	return p.workers
}

// For calls f(i) for every i in [0, n), spread over the workers, and returns
// when all calls have returned. While the pool is busy (f itself calls For,
// or another goroutine is using the pool) For runs f inline instead. Callers that must not allocate pass a func
// value built once (a method value stored in a field), not a fresh closure.
func (p *Pool) For(n int, f func(i int)) {
	if p == nil || p.workers == 1 || n <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	if !p.mu.TryLock() {
		// Busy: a task of this pool calls For (nested), or another goroutine
		// shares the pool. Running inline cannot deadlock and still finishes.
		for i := range n {
			f(i)
		}
		return
	}
	defer p.mu.Unlock()
	blasEnterParallel()
	defer blasExitParallel()
	p.f, p.n = f, int64(n)
	p.next.Store(0)
	helpers := min(p.workers-1, n-1)
	p.wg.Add(helpers)
	for range helpers {
		p.wake <- struct{}{}
	}
	p.drain()
	p.wg.Wait()
	p.f = nil
}

func (p *Pool) drain() {
	for {
		i := p.next.Add(1) - 1
		if i >= p.n {
			return
		}
		p.f(int(i))
	}
}

// Close stops the workers; the pool must not be used afterwards.
func (p *Pool) Close() {
	if p != nil {
		close(p.wake)
	}
}
