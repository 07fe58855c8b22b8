package engine

// Embedding maps ids to rows of W [Num, Dim].
type Embedding[T Float] struct {
	Num, Dim int
	W        *Param[T] // [Num, Dim]
}

// NewEmbedding registers name.weight [num, dim] (zeros until initialised).
func NewEmbedding[T Float](ps *Params[T], name string, num, dim int) *Embedding[T] {
	return &Embedding[T]{Num: num, Dim: dim, W: ps.Add(name+".weight", num, dim)}
}

// Forward copies out[i] = W[ids[i]]. ids [n], out [n, Dim]. It panics on an
// id outside [0, Num).
func (e *Embedding[T]) Forward(out []T, ids []int32) {
	checkLen("Embedding.Forward out", out, len(ids)*e.Dim)
	w := e.W.Data()
	for i, id := range ids {
		e.check(i, id)
		copy(out[i*e.Dim:(i+1)*e.Dim], w[int(id)*e.Dim:(int(id)+1)*e.Dim])
	}
}

// Backward adds dW[ids[i]] += dout[i]. dout [n, Dim].
func (e *Embedding[T]) Backward(dout []T, ids []int32) {
	checkLen("Embedding.Backward dout", dout, len(ids)*e.Dim)
	if e.W.Frozen {
		return
	}
	dw := e.W.Grad()
	for i, id := range ids {
		e.check(i, id)
		AddTo(dw[int(id)*e.Dim:(int(id)+1)*e.Dim], dout[i*e.Dim:(i+1)*e.Dim])
	}
}

func (e *Embedding[T]) check(i int, id int32) {
	if id < 0 || int(id) >= e.Num {
		panic("engine: " + e.W.Name + ": id " + itoa(int(id)) + " at position " + itoa(i) + " outside [0, " + itoa(e.Num) + ")")
	}
}
