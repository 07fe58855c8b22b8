package engine

// Linear is y = x·Wᵀ + b with W [Out, In] (PyTorch's layout) and an optional
// bias b [Out].
type Linear[T Float] struct {
	In, Out int
	W       *Param[T] // [Out, In]
	B       *Param[T] // [Out]; nil without bias
}

// NewLinear registers name.weight [out, in] and, with bias, name.bias [out].
// Both start at zero; the model initialises W from its seeded source.
func NewLinear[T Float](ps *Params[T], name string, in, out int, bias bool) *Linear[T] {
	l := &Linear[T]{In: in, Out: out, W: ps.Add(name+".weight", out, in)}
	if bias {
		l.B = ps.Add(name+".bias", out)
	}
	return l
}

// LinearOf wraps existing tensors: w [out, in], b [out] or nil. The tied
// output embedding is LinearOf(embedding.W, nil).
func LinearOf[T Float](w, b *Param[T]) *Linear[T] {
	if len(w.Shape) != 2 {
		panic("engine: LinearOf: " + w.Name + " is not a matrix")
	}
	l := &Linear[T]{Out: w.Shape[0], In: w.Shape[1], W: w, B: b}
	if b != nil && b.Size != l.Out {
		panic("engine: LinearOf: bias " + b.Name + " has " + itoa(b.Size) + " elements, want " + itoa(l.Out))
	}
	return l
}

// Forward computes out = x·Wᵀ + b. x [n, In], out [n, Out].
func (l *Linear[T]) Forward(out, x []T) {
	n := len(x) / l.In
	checkLen("Linear.Forward x", x, n*l.In)
	checkLen("Linear.Forward out", out, n*l.Out)
	if l.B != nil {
		b := l.B.Data()
		for i := range n {
			copy(out[i*l.Out:(i+1)*l.Out], b)
		}
		ParallelGemm(l.W.arena.Pool, false, true, n, l.Out, l.In, 1, x, l.In, l.W.Data(), l.In, 1, out, l.Out)
		return
	}
	ParallelGemm(l.W.arena.Pool, false, true, n, l.Out, l.In, 1, x, l.In, l.W.Data(), l.In, 0, out, l.Out)
}

// Backward adds dx += dout·W, dW += doutᵀ·x and db += Σ_rows dout.
// dout [n, Out], x [n, In], dx [n, In] or nil. Frozen tensors get nothing.
func (l *Linear[T]) Backward(dx, dout, x []T) {
	n := len(x) / l.In
	checkLen("Linear.Backward x", x, n*l.In)
	checkLen("Linear.Backward dout", dout, n*l.Out)
	if dx != nil {
		checkLen("Linear.Backward dx", dx, n*l.In)
		ParallelGemm(l.W.arena.Pool, false, false, n, l.In, l.Out, 1, dout, l.Out, l.W.Data(), l.In, 1, dx, l.In)
	}
	if !l.W.Frozen {
		ParallelGemm(l.W.arena.Pool, true, false, l.Out, l.In, n, 1, dout, l.Out, x, l.In, 1, l.W.Grad(), l.In)
	}
	if l.B != nil && !l.B.Frozen {
		db := l.B.Grad()
		for i := range n {
			AddTo(db, dout[i*l.Out:(i+1)*l.Out])
		}
	}
}
