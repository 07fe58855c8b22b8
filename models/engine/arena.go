package engine

// Arena hands out the activation and activation-gradient buffers of a model
// built for one batch shape. Buffers come from large chunks so a model's
// activations are a few allocations made once, then reused every step.
type Arena[T Float] struct {
	chunk []T
	total int
}

const arenaChunk = 1 << 20

// NewArena returns an empty arena.
func NewArena[T Float]() *Arena[T] { return &Arena[T]{} }

// Take returns a zeroed slice of n elements whose capacity is n, so an
// append can never spill into the next buffer.
func (a *Arena[T]) Take(n int) []T {
	if n < 0 {
		panic("engine: Arena.Take: negative length " + itoa(n))
	}
	if n > len(a.chunk) {
		if n >= arenaChunk/4 {
			a.total += n
			return make([]T, n)
		}
		a.chunk = make([]T, arenaChunk)
	}
	s := a.chunk[:n:n]
	a.chunk = a.chunk[n:]
	a.total += n
	return s
}

// Len is the number of elements handed out so far.
func (a *Arena[T]) Len() int { return a.total }
