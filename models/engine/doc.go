// Package engine is mmablate's compute engine: the parameter arena, matrix
// products through BLAS, and explicit forward/backward pairs for every layer
// the models need (llm.c style), plus softmax cross-entropy, AdamW, gradient
// clipping and non-finite detection. It owns numerics only; models/,
// models/vision and models/connector compose its layers.
//
// # Conventions
//
// Element type. Everything is generic over Float (float32 | float64).
// Training uses float32; the gradient checks run the very same code in
// float64 against central finite differences.
//
// Layout. Tensors are flat row-major slices whose shape is given in the doc
// comment of each function, e.g. x [n, in]. A Linear's weight is stored
// [out, in] as in PyTorch and computes y = x·Wᵀ + b. Images and grids inside
// the engine are channels-last (NHWC: [B, H, W, C]); convolution weights keep
// PyTorch's [out, in, kh, kw] layout, so safetensors load unchanged. A
// document-id or position-id slice has one entry per token ([B·T]).
//
// Forward / Backward. Forward overwrites its outputs and writes whatever its
// Backward needs into caller-provided "saved" buffers (RMSNorm's rstd,
// attention's probabilities). Backward ADDS into every gradient it produces:
// input gradients (dx) and parameter gradients (Param.Grad) alike, so
// residual branches and shared weights accumulate naturally. Gradients are
// zeroed once per step: Params.ZeroGrad for parameters, clear() on the
// activation-gradient buffers. A nil input-gradient slice skips that
// gradient; a frozen Param gets no gradient.
//
// Memory. Parameters live in one Params arena: Data, Grad (and AdamW's M and
// V) share one layout, described by a name/shape table whose names are the
// safetensors names of MODEL-SPEC.md. Layers register their tensors by name
// in their constructors. Activations and their gradients are taken from an
// Arena once per (model, batch shape) and reused every step; a model built
// for one batch shape and called with another must be rebuilt (models panic
// on the mismatch, layers panic on wrong lengths). No layer allocates in
// Forward or Backward.
//
// Errors. Wrong shapes and out-of-range indices are programming errors and
// panic with an "engine:" message. Data-dependent failures (NaN/Inf) are
// returned as *NonFiniteError naming the tensor.
//
// Concurrency. A layer value is not safe for concurrent use (layers keep
// per-call state for their pool tasks). Params, Arena and AdamW likewise.
//
// Determinism. Results do not depend on the number of workers, except for
// products split by ParallelGemm, whose row blocks may take another BLAS
// kernel path (differences at float32 rounding). Norms, cross-entropy,
// clipping and attention sum in fixed blocks and are bit-identical for any
// pool.
//
// # BLAS and threads
//
// Matrix products go through Gemm, which calls gonum's blas32/blas64. The
// implementation is chosen in one place: OpenBLAS through cgo
// (gonum.org/v1/netlib, linked with -lopenblas) by default, gonum's pure-Go
// BLAS when built with the tag purego or with CGO_ENABLED=0.
//
// Threads. SetBLASThreads sets OpenBLAS's thread count; it is inherently
// process-wide (OpenBLAS has one thread pool per process), so call it once
// at start. The engine's own goroutines belong to a Pool value (no global):
// NewPool(workers) is a bounded pool; a nil *Pool runs everything on the
// calling goroutine. Layers take the pool from Params.Pool (Linear, Conv2d,
// the MLPs, the norms, AdamW, ClipGradNorm, CheckGrads) or from their own
// field or argument (NewAttention, NewCrossEntropy, RoPE.Pool). A model
// given a pool should set Params.Pool too: a layer whose arena has no pool
// runs its products, norms and elementwise loops on one goroutine.
//
// The engine keeps the two kinds of threads apart by itself: while a pool
// runs tasks on several goroutines (a ParallelGemm's row blocks, attention
// heads, any Pool.For), every product runs OpenBLAS single-threaded; a large
// product issued outside all such regions gets SetBLASThreads's count back.
// Two multi-threaded OpenBLAS calls at once serialise on OpenBLAS's level-3
// lock and its idle threads spin (sched_yield) on the cores the pool's
// goroutines need: a training step with both at 2 on 2 cores was measured
// to burn 50–90% more CPU. So for a process given c cores:
// SetBLASThreads(c) and NewPool(c) (or SetBLASThreads(1); the pool splits
// every large product by rows itself). Starting the process with
// OPENBLAS_NUM_THREADS=1 additionally keeps OpenBLAS from creating idle
// threads until SetBLASThreads asks for more.
//
//	func SetBLASThreads(n int)
//	func BLASThreads() int
//	func BLASName() string // "openblas" or "gonum"
//	func Gemm[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)
//	    // C[m,n] = alpha·op(A)·op(B) + beta·C; op(X) = Xᵀ when tX; row-major with leading dimensions.
//	func ParallelGemm[T Float](p *Pool, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)
//	    // Gemm with C's rows split over the pool (small products stay one call).
//	func NewPool(workers int) *Pool
//	func (p *Pool) For(n int, f func(i int)); func (p *Pool) Workers() int; func (p *Pool) Close()
//	    // For called while the pool is busy (from one of its own tasks, or another goroutine) runs inline.
//
// # Parameters
//
//	func NewParams[T Float]() *Params[T]    // field Pool *Pool: workers for the layers built on it
//	func (ps *Params[T]) Add(name string, shape ...int) *Param[T] // zeros; Decay = len(shape) >= 2
//	func (ps *Params[T]) Lookup(name string) (*Param[T], bool)
//	func (ps *Params[T]) All() []*Param[T]         // registration order (= layout order)
//	func (ps *Params[T]) Data() []T; Grad() []T    // the whole arena
//	func (ps *Params[T]) Len() int
//	func (ps *Params[T]) ZeroGrad()
//	func (ps *Params[T]) SetFrozen(prefix string, frozen bool) int // e.g. "vit."; returns count
//	func (ps *Params[T]) ClipGradNorm(maxNorm float64) float64    // global L2 norm before clipping
//	func (ps *Params[T]) CheckGrads() error                       // *NonFiniteError naming the param
//	type Param[T] struct { Name string; Shape []int; Offset, Size int; Decay, Frozen bool }
//	func (p *Param[T]) Data() []T; Grad() []T
//	func (p *Param[T]) Normal(rng *rand.Rand, std float64); Fill(v T)
//
// # Activations
//
//	func NewArena[T Float]() *Arena[T]
//	func (a *Arena[T]) Take(n int) []T   // zeroed, capacity-limited slice
//	func (a *Arena[T]) Len() int         // elements handed out
//
// # Layers (x [n, in] means n rows; n = B·T for sequences)
//
//	Linear:     NewLinear(ps, name, in, out, bias) registers name.weight [out,in] (+ name.bias [out]);
//	            LinearOf(w, b *Param[T]) wraps existing params (tied output embedding: LinearOf(embed.W, nil)).
//	            Forward(out, x)            x [n,in] → out [n,out]
//	            Backward(dx, dout, x)      dx += dout·W; dW += doutᵀ·x; db += Σrows dout
//	Embedding:  NewEmbedding(ps, name, num, dim) registers name.weight [num,dim].
//	            Forward(out, ids)          ids [n] int32 → out [n,dim]
//	            Backward(dout, ids)        dW[ids[i]] += dout[i]
//	RMSNorm:    NewRMSNorm(ps, name, dim, eps) registers name.weight [dim] (ones).
//	            Forward(out, rstd, x)      x [n,dim], rstd [n] saved; per-head QK norm: dim = hd, n = tokens·heads
//	            Backward(dx, dout, x, rstd)
//	LayerNorm:  NewLayerNorm(ps, name, dim, eps) registers name.weight (ones), name.bias (zeros) [dim].
//	            Forward(out, mean, rstd, x) ; Backward(dx, dout, x, mean, rstd)
//	            LayerNorm2d / NewLayerNorm2d: the same layer; over channels at each position of an NHWC grid.
//	RoPE:       NewRoPE[T](headDim int, base float64, maxPos int) (rotate-half, pairs (i, i+hd/2));
//	            optional field Pool.
//	            Forward(out, x, pos, heads)  x [n, heads·hd], pos [n]; out may alias x
//	            Backward(dx, dout, pos, heads)
//	Attention:  NewAttention[T](heads, kvHeads, headDim int, causal bool, pool *Pool); fields QStride,
//	            KVStride (row strides of q and of k/v; 0 = packed heads·hd / kvHeads·hd, e.g. 3·D to read
//	            straight out of a fused qkv projection; the gradients use the same strides).
//	            Forward(out, probs, q, k, v, docs, B, Tq, Tk)
//	                q [B,Tq,H·hd], k,v [B,Tk,KV·hd], out [B,Tq,H·hd] (packed), probs [B,H,Tq,Tk] saved;
//	                docs [B·Tq] document ids (self-attention only, nil = one document); scale 1/sqrt(hd);
//	                query head h uses kv head h/(H/KV). Cross-attention: Tq ≠ Tk, causal false, docs nil.
//	            Backward(dq, dk, dv, scratch, dout, q, k, v, probs, B, Tq, Tk)
//	                scratch: B·H·Tq·Tk, reusable across layers. A fully masked row (no key allowed)
//	                outputs 0. Causal products skip the masked upper triangle in blocks of 32 rows.
//	Activations (elementwise, out may alias x in Forward):
//	            SiLUForward(out, x); SiLUBackward(dx, dout, x)
//	            GELUForward(out, x); GELUBackward(dx, dout, x)            (exact erf form)
//	            SwiGLUForward(out, a, b) out = silu(a)⊙b; SwiGLUBackward(da, db, dout, a, b)
//	SwiGLU MLP: NewSwiGLU(ps, name, dim, hidden) registers name.w1, name.w3 [hidden,dim], name.w2 [dim,hidden].
//	            m.NewActs(arena, n) *SwiGLUActs[T];  Forward(out, x, acts); Backward(dx, dout, x, acts)
//	            (acts saves H1, H3, S = σ(H1), G = silu(H1)⊙H3, each [n, hidden], plus two scratch buffers)
//	GELU MLP:   NewMLP(ps, name, dim, hidden, out) registers name.fc1 [hidden,dim]+bias, name.fc2 [out,hidden]+bias.
//	            m.NewActs(arena, n) *MLPActs[T];  Forward(out, x, acts); Backward(dx, dout, x, acts)
//	Conv2d:     NewConv2d(ps, name, in, out, kernel, stride, pad, bias) registers name.weight [out,in,k,k].
//	            OutSize(h, w) (ho, wo); ColsLen(B, h, w) int
//	            Forward(out, cols, x, B, H, W)  x [B,H,W,in] NHWC, cols [B·Ho·Wo, in·k·k] saved (im2col),
//	                                             out [B,Ho,Wo,out]
//	            Backward(dx, dout, cols, dcols, B, H, W)  dcols: scratch of len(cols)
//	            (3×3 with padding 1 for the C-Abstractor; stride P, kernel P for a patch embedding on NHWC)
//	AdaptiveAvgPool2d(out, x, B, H, W, C, oh, ow); AdaptiveAvgPool2dBackward(dx, dout, B, H, W, C, oh, ow)
//	            NHWC; cell i spans [floor(i·H/oh), ceil((i+1)·H/oh)) as PyTorch's adaptive_avg_pool2d.
//	Patchify(out, img, B, C, R, P) NCHW images → [B·g·g, C·P·P] rows in (c, py, px) order (no gradient).
//	Add(out, a, b); AddTo(dst, src) dst += src; AddBroadcast(x, row) x[i·len(row)+j] += row[j];
//	SumBroadcast(drow, dx) drow[j] += Σi dx[i·len(row)+j]; Scale(x, s); AddScaled(dst, src, s).
//
// # Loss, optimiser, checks
//
//	CrossEntropyForward(stats, logits, targets, mask, V) (loss float64)
//	    logits [n,V], targets [n] int32, mask [n] (T); stats [2n] saved (row max, log-sum). loss = Σ mask·CE / Σ mask
//	    (0 when Σ mask = 0); rows with mask 0 may hold any target (e.g. -1).
//	CrossEntropyBackward(dlogits, logits, stats, targets, mask, V, dloss float64)
//	    dlogits += dloss·mask·(softmax − onehot)/Σ mask
//	NewCrossEntropy[T](V int, pool *Pool) *CrossEntropy[T]: the same over a pool, bit-identical;
//	    Forward(stats, logits, targets, mask) float64; Backward(dlogits, logits, stats, targets, mask, dloss)
//	NewAdamW(ps, AdamWConfig{Beta1, Beta2, Eps, WeightDecay}) *AdamW[T] // after all params are registered
//	func (o *AdamW[T]) Step(lr float64)     // t++; decoupled decay on params with Decay; skips Frozen
//	func (o *AdamW[T]) T() int; M() []T; V() []T; SetState(t int, m, v []T) error
//	CheckFinite[T](name string, x []T) error  // nil, or *NonFiniteError{Name, Index, Value}
package engine
