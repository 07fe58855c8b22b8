package ifprune

import "github.com/mmablate/mmablate/models/engine"

// MaskedSwiGLU is the training form of a pruned decoder FFN: the SwiGLU's
// own weights with a per-group channel mask on the intermediate
// activations,
//
//	out[t] = W2 · (silu(W1·x[t]) ⊙ (W3·x[t]) ⊙ mask[group[t]]).
//
// It shares W1, W3 and W2 with the dense layer it wraps, so pruning adds no
// FFN parameters.
type MaskedSwiGLU[T engine.Float] struct {
	*engine.SwiGLU[T]
}

// MaskedActs holds one masked SwiGLU application's saved activations and
// the backward scratch it may share with other layers. Every slice is
// [n, F].
type MaskedActs[T engine.Float] struct {
	H1, H3, A, G, GM []T // saved: W1·x, W3·x, silu(H1), A⊙H3, G⊙mask
	Scratch          *MaskedScratch[T]
}

// MaskedScratch is backward scratch, [n, F] each, shareable between layers.
type MaskedScratch[T engine.Float] struct {
	DGM, DH1, DH3, Tmp []T
}

// NewMaskedScratch takes the backward scratch for n rows of hidden F.
func NewMaskedScratch[T engine.Float](a *engine.Arena[T], n, F int) *MaskedScratch[T] {
	k := n * F
	return &MaskedScratch[T]{DGM: a.Take(k), DH1: a.Take(k), DH3: a.Take(k), Tmp: a.Take(k)}
}

// NewActs takes the saved activations for n rows from a; sc is shared
// backward scratch of at least n rows.
func (m MaskedSwiGLU[T]) NewActs(a *engine.Arena[T], n int, sc *MaskedScratch[T]) *MaskedActs[T] {
	k := n * m.Hidden
	return &MaskedActs[T]{H1: a.Take(k), H3: a.Take(k), A: a.Take(k), G: a.Take(k), GM: a.Take(k), Scratch: sc}
}

// Forward computes out [n, Dim] from x [n, Dim]; masks [G, Hidden] holds a
// mask per group and group [n] names each row's group.
func (m MaskedSwiGLU[T]) Forward(out, x, masks []T, group []int32, s *MaskedActs[T]) {
	F := m.Hidden
	m.W1.Forward(s.H1, x)
	m.W3.Forward(s.H3, x)
	engine.SiLUForward(s.A, s.H1)
	for t, g := range group {
		row := t * F
		a, h3, gg, gm := s.A[row:row+F], s.H3[row:row+F], s.G[row:row+F], s.GM[row:row+F]
		mk := masks[int(g)*F : int(g)*F+F]
		for j := range gg {
			gg[j] = a[j] * h3[j]
			gm[j] = gg[j] * mk[j]
		}
	}
	m.W2.Forward(out, s.GM)
}

// Backward adds dx (may be nil), the three weight gradients and
// dmasks [G, Hidden] += ∂L/∂mask for upstream dout [n, Dim].
func (m MaskedSwiGLU[T]) Backward(dx, dmasks, dout, x, masks []T, group []int32, s *MaskedActs[T]) {
	F, n := m.Hidden, len(group)
	sc := s.Scratch
	dgm, dh1, dh3, tmp := sc.DGM[:n*F], sc.DH1[:n*F], sc.DH3[:n*F], sc.Tmp[:n*F]
	clear(dgm)
	m.W2.Backward(dgm, dout, s.GM)
	for t, g := range group {
		row := t * F
		mk, dm := masks[int(g)*F:int(g)*F+F], dmasks[int(g)*F:int(g)*F+F]
		a, h3, gg := s.A[row:row+F], s.H3[row:row+F], s.G[row:row+F]
		d, d3, tp := dgm[row:row+F], dh3[row:row+F], tmp[row:row+F]
		for j := range d {
			dm[j] += d[j] * gg[j]
			dg := d[j] * mk[j]
			d3[j] = dg * a[j]  // ∂/∂H3 of silu(H1)·H3
			tp[j] = dg * h3[j] // upstream of silu(H1)
		}
	}
	clear(dh1)
	engine.SiLUBackward(dh1, tmp, s.H1)
	m.W1.Backward(dx, dh1, x)
	m.W3.Backward(dx, dh3, x)
}

// Gathered is the inference form of a pruned FFN for one input: the k
// selected rows of W1 and W3 and columns of W2, copied into dense [k, D],
// [k, D] and [D, k] matrices, so the FFN costs 3·2·D·k FLOPs per token
// instead of 3·2·D·F.
type Gathered[T engine.Float] struct {
	K, Dim     int
	W1, W3, W2 []T // [K, Dim], [K, Dim], [Dim, K]; capacity for any K ≤ Hidden
}

// NewGathered allocates room for up to hidden channels of width dim.
func NewGathered[T engine.Float](dim, hidden int) *Gathered[T] {
	return &Gathered[T]{Dim: dim, W1: make([]T, hidden*dim), W3: make([]T, hidden*dim), W2: make([]T, dim*hidden)}
}

// Gather copies the channels idx (ascending, from HardTopK) of m's weights.
func (g *Gathered[T]) Gather(m *engine.SwiGLU[T], idx []int) {
	D, F, K := m.Dim, m.Hidden, len(idx)
	if D != g.Dim || K > len(g.W1)/D {
		panic("ifprune: Gather: layer does not match the gathered buffers")
	}
	g.K = K
	w1, w3, w2 := m.W1.W.Data(), m.W3.W.Data(), m.W2.W.Data()
	for r, c := range idx {
		copy(g.W1[r*D:(r+1)*D], w1[c*D:(c+1)*D])
		copy(g.W3[r*D:(r+1)*D], w3[c*D:(c+1)*D])
	}
	for d := range D {
		row := g.W2[d*K : (d+1)*K]
		src := w2[d*F : (d+1)*F]
		for r, c := range idx {
			row[r] = src[c]
		}
	}
}

// Forward computes out [n, Dim] = W2g·(silu(W1g·x) ⊙ W3g·x) for x [n, Dim]
// with scratch h1, h3 of at least n·K each, splitting the products over
// pool (nil: one BLAS call each, e.g. inside a task of a pool already).
func (g *Gathered[T]) Forward(pool *engine.Pool, out, x, h1, h3 []T) {
	D, K := g.Dim, g.K
	n := len(x) / D
	h1, h3 = h1[:n*K], h3[:n*K]
	engine.ParallelGemm(pool, false, true, n, K, D, 1, x, D, g.W1[:K*D], D, 0, h1, K)
	engine.ParallelGemm(pool, false, true, n, K, D, 1, x, D, g.W3[:K*D], D, 0, h3, K)
	engine.SiLUForward(h1, h1)
	for i := range h1 {
		h1[i] *= h3[i]
	}
	engine.ParallelGemm(pool, false, true, n, D, K, 1, h1, K, g.W2[:D*K], K, 0, out[:n*D], D)
}

// FLOPs is the matrix-product cost of one token through the FFN with k of
// its channels active (k = F for the dense layer): 3 products of D×k.
func FLOPs(dim, k int) int64 { return 3 * 2 * int64(dim) * int64(k) }
