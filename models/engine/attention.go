package engine

import "math"

// Attention is scaled dot-product multi-head attention with grouped-query
// heads: query head h reads kv head h/(Heads/KVHeads). Masks: causal (s ≤ t)
// and, when document ids are given, same-document (docs[s] == docs[t]) so
// packed sequences never attend across documents. With Tq ≠ Tk it is
// cross-attention (queries from one sequence, keys/values from another).
//
// Per (batch, head) the products QKᵀ and PV run through Gemm on strided views
// of the activations (no copies); the masked softmax is fused between them.
// Work is spread over the pool by (batch, head) forward and by (batch, kv
// head) backward, so the kv gradients of a group never race.
type Attention[T Float] struct {
	Heads, KVHeads, HeadDim int
	Causal                  bool
	// QStride and KVStride are the row strides of q and of k and v (and of
	// their gradients); 0 means packed (Heads·HeadDim, KVHeads·HeadDim). A
	// fused qkv projection [n, 3D] is read in place with both set to 3D.
	QStride, KVStride int

	pool       *Pool
	c          attnCall[T]
	fwd, bwd   func(int)
	scale      T
	groupHeads int
	rowOut     int
}

type attnCall[T Float] struct {
	out, probs, q, k, v, dq, dk, dv, scratch, dout []T
	docs                                           []int32
	tq, tk, ldq, ldkv                              int
}

// NewAttention builds the layer; pool may be nil (single goroutine).
func NewAttention[T Float](heads, kvHeads, headDim int, causal bool, pool *Pool) *Attention[T] {
	if heads <= 0 || kvHeads <= 0 || headDim <= 0 || heads%kvHeads != 0 {
		panic("engine: Attention: heads " + itoa(heads) + " must be a positive multiple of kv heads " + itoa(kvHeads))
	}
	a := &Attention[T]{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Causal: causal, pool: pool,
		scale: T(1 / math.Sqrt(float64(headDim))), groupHeads: heads / kvHeads}
	a.fwd = a.forwardHead
	a.bwd = a.backwardGroup
	return a
}

func (a *Attention[T]) setup(B, Tq, Tk int, q, k, v []T, docs []int32) {
	if a.Causal && Tq != Tk {
		panic("engine: Attention: causal mask needs Tq == Tk, got " + itoa(Tq) + " and " + itoa(Tk))
	}
	if docs != nil {
		if Tq != Tk {
			panic("engine: Attention: document ids need self-attention (Tq == Tk)")
		}
		checkLen("Attention docs", docs, B*Tq)
	}
	hd := a.HeadDim
	c := &a.c
	c.tq, c.tk, c.docs = Tq, Tk, docs
	c.ldq, c.ldkv = a.QStride, a.KVStride
	if c.ldq == 0 {
		c.ldq = a.Heads * hd
	}
	if c.ldkv == 0 {
		c.ldkv = a.KVHeads * hd
	}
	if c.ldq < a.Heads*hd || c.ldkv < a.KVHeads*hd {
		panic("engine: Attention: row stride smaller than the heads it holds")
	}
	checkMin("Attention q", q, (B*Tq-1)*c.ldq+a.Heads*hd)
	checkMin("Attention k", k, (B*Tk-1)*c.ldkv+a.KVHeads*hd)
	checkMin("Attention v", v, (B*Tk-1)*c.ldkv+a.KVHeads*hd)
	c.q, c.k, c.v = q, k, v
	a.rowOut = a.Heads * hd
}

// Forward computes out = softmax(mask(q·kᵀ/√hd))·v for every (batch, head).
// q [B, Tq, ·QStride], k, v [B, Tk, ·KVStride], out [B, Tq, Heads·HeadDim],
// probs [B, Heads, Tq, Tk] saved for Backward (masked entries are 0),
// docs [B·Tq] or nil.
func (a *Attention[T]) Forward(out, probs, q, k, v []T, docs []int32, B, Tq, Tk int) {
	a.setup(B, Tq, Tk, q, k, v, docs)
	checkLen("Attention.Forward out", out, B*Tq*a.Heads*a.HeadDim)
	checkLen("Attention.Forward probs", probs, B*a.Heads*Tq*Tk)
	a.c.out, a.c.probs = out, probs
	a.pool.For(B*a.Heads, a.fwd)
	a.c = attnCall[T]{}
}

// causalBlock is the number of query rows per block under a causal mask:
// block [r0, r1) only needs keys [0, r1), so the products skip most of the
// masked upper triangle (about 40% of the work at T = 128).
const causalBlock = 32

// blocks returns the number of query-row blocks and the block size.
func (a *Attention[T]) blocks(tq int) (int, int) {
	if !a.Causal || tq <= causalBlock {
		return 1, tq
	}
	return (tq + causalBlock - 1) / causalBlock, causalBlock
}

// width is the number of keys query rows below r1 can see.
func (a *Attention[T]) width(r1, tk int) int {
	if a.Causal {
		return r1
	}
	return tk
}

func (a *Attention[T]) forwardHead(i int) {
	c := &a.c
	b, h := i/a.Heads, i%a.Heads
	g := h / a.groupHeads
	hd, tq, tk := a.HeadDim, c.tq, c.tk
	q := c.q[b*tq*c.ldq+h*hd:]
	k := c.k[b*tk*c.ldkv+g*hd:]
	v := c.v[b*tk*c.ldkv+g*hd:]
	p := c.probs[i*tq*tk : (i+1)*tq*tk]
	out := c.out[b*tq*a.rowOut+h*hd:]
	var docs []int32
	if c.docs != nil {
		docs = c.docs[b*tq : (b+1)*tq]
	}
	nb, bs := a.blocks(tq)
	for blk := range nb {
		r0, r1 := blk*bs, min((blk+1)*bs, tq)
		w := a.width(r1, tk)
		Gemm(false, true, r1-r0, w, hd, a.scale, q[r0*c.ldq:], c.ldq, k, c.ldkv, 0, p[r0*tk:], tk)
		for t := r0; t < r1; t++ {
			a.softmaxRow(p[t*tk:(t+1)*tk], t, docs)
		}
		Gemm(false, false, r1-r0, hd, w, 1, p[r0*tk:], tk, v, c.ldkv, 0, out[r0*a.rowOut:], a.rowOut)
	}
}

// softmaxRow turns row t of the scores into probabilities over the allowed
// keys, subtracting the row's own maximum; disallowed keys get exactly 0.
func (a *Attention[T]) softmaxRow(row []T, t int, docs []int32) {
	limit := len(row)
	if a.Causal {
		limit = t + 1
	}
	mx := T(math.Inf(-1))
	for s := range limit {
		if docs != nil && docs[s] != docs[t] {
			continue
		}
		mx = max(mx, row[s])
	}
	var sum T
	if !math.IsInf(float64(mx), -1) {
		for s := range limit {
			if docs != nil && docs[s] != docs[t] {
				row[s] = 0
				continue
			}
			x := row[s] - mx
			var e T
			if is32[T]() && x >= expInLo { // x ≤ 0; expf's fast path, inlined
				e = T(expIn(float32(x)))
			} else {
				e = expT(x)
			}
			row[s] = e
			sum += e
		}
	}
	if sum == 0 { // no allowed key: the row attends to nothing
		clear(row)
		return
	}
	inv := 1 / sum
	for s := range limit {
		row[s] *= inv
	}
	clear(row[limit:])
}

// Backward adds dq, dk, dv (any may be nil) from dout [B, Tq, Heads·HeadDim]
// using the probs saved by Forward. The gradients share q's and k/v's row
// strides. scratch [B·Heads·Tq·Tk] is overwritten; one buffer can serve every
// layer.
func (a *Attention[T]) Backward(dq, dk, dv, scratch, dout, q, k, v, probs []T, B, Tq, Tk int) {
	a.setup(B, Tq, Tk, q, k, v, nil)
	checkLen("Attention.Backward dout", dout, B*Tq*a.Heads*a.HeadDim)
	checkLen("Attention.Backward probs", probs, B*a.Heads*Tq*Tk)
	checkMin("Attention.Backward scratch", scratch, B*a.Heads*Tq*Tk)
	if dq != nil {
		checkMin("Attention.Backward dq", dq, len(q))
	}
	if dk != nil {
		checkMin("Attention.Backward dk", dk, len(k))
	}
	if dv != nil {
		checkMin("Attention.Backward dv", dv, len(v))
	}
	c := &a.c
	c.dq, c.dk, c.dv, c.scratch, c.dout, c.probs = dq, dk, dv, scratch, dout, probs
	a.pool.For(B*a.KVHeads, a.bwd)
	a.c = attnCall[T]{}
}

func (a *Attention[T]) backwardGroup(i int) {
	c := &a.c
	b, g := i/a.KVHeads, i%a.KVHeads
	hd, tq, tk := a.HeadDim, c.tq, c.tk
	kvOff := b*tk*c.ldkv + g*hd
	k, v := c.k[kvOff:], c.v[kvOff:]
	var dk, dv []T
	if c.dk != nil {
		dk = c.dk[kvOff:]
	}
	if c.dv != nil {
		dv = c.dv[kvOff:]
	}
	nb, bs := a.blocks(tq)
	for h := g * a.groupHeads; h < (g+1)*a.groupHeads; h++ {
		bh := b*a.Heads + h
		p := c.probs[bh*tq*tk : (bh+1)*tq*tk]
		dp := c.scratch[bh*tq*tk : (bh+1)*tq*tk]
		q := c.q[b*tq*c.ldq+h*hd:]
		do := c.dout[b*tq*a.rowOut+h*hd:]
		var dq []T
		if c.dq != nil {
			dq = c.dq[b*tq*c.ldq+h*hd:]
		}
		for blk := range nb {
			r0, r1 := blk*bs, min((blk+1)*bs, tq)
			w := a.width(r1, tk)
			pb, dpb := p[r0*tk:], dp[r0*tk:]
			if dv != nil {
				Gemm(true, false, w, hd, r1-r0, 1, pb, tk, do[r0*a.rowOut:], a.rowOut, 1, dv, c.ldkv)
			}
			if dq == nil && dk == nil {
				continue
			}
			Gemm(false, true, r1-r0, w, hd, 1, do[r0*a.rowOut:], a.rowOut, v, c.ldkv, 0, dpb, tk)
			// dS = P ⊙ (dP − Σ_s P·dP), the softmax Jacobian; masked entries
			// have P = 0 and so dS = 0.
			for t := r0; t < r1; t++ {
				pr := p[t*tk : t*tk+w]
				dr := dp[t*tk : t*tk+w][:len(pr)]
				var dot T
				for s, pv := range pr {
					dot += pv * dr[s]
				}
				for s, pv := range pr {
					dr[s] = pv * (dr[s] - dot)
				}
			}
			if dq != nil {
				Gemm(false, false, r1-r0, hd, w, a.scale, dpb, tk, k, c.ldkv, 1, dq[r0*c.ldq:], c.ldq)
			}
			if dk != nil {
				Gemm(true, false, w, hd, r1-r0, a.scale, dpb, tk, q[r0*c.ldq:], c.ldq, 1, dk, c.ldkv)
			}
		}
	}
}
