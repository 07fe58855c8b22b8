package engine

import (
	"fmt"
	"math"
)

// AdamWConfig holds AdamW's hyperparameters; the learning rate is passed to
// each Step because schedules are a function of the step.
type AdamWConfig struct {
	Beta1, Beta2 float64 // 0.9, 0.95 are typical for LLM pre-training
	Eps          float64 // 1e-8
	WeightDecay  float64 // decoupled; applied only to tensors with Decay
}

// AdamW is torch.optim.AdamW over a Params arena: m and v share the arena's
// layout, so one loop per tensor updates everything.
type AdamW[T Float] struct {
	Config AdamWConfig
	ps     *Params[T]
	m, v   []T
	t      int

	// per-step constants for the chunk task
	lr, bc1                                  float64
	stepSize, invSqrtBC2, b1, b2, eps, decay T
	task                                     func(int)
}

// NewAdamW allocates m and v (zeros) for every tensor registered so far.
func NewAdamW[T Float](ps *Params[T], cfg AdamWConfig) *AdamW[T] {
	o := &AdamW[T]{Config: cfg, ps: ps, m: make([]T, ps.Len()), v: make([]T, ps.Len())}
	o.task = o.chunk
	return o
}

// Step applies one update with learning rate lr (times the tensor's
// LRScale) to every tensor that is not Frozen, exactly as PyTorch's AdamW
// (non-fused, amsgrad off) with one parameter group per LRScale:
//
//	p ← p·(1 − lr·wd)                      (tensors with Decay only)
//	m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + eps)
func (o *AdamW[T]) Step(lr float64) {
	if len(o.m) != o.ps.Len() {
		panic("engine: AdamW: parameters were added after the optimiser was built")
	}
	o.t++
	c := o.Config
	bc1 := 1 - math.Pow(c.Beta1, float64(o.t))
	bc2 := 1 - math.Pow(c.Beta2, float64(o.t))
	o.stepSize = T(lr / bc1)
	o.invSqrtBC2 = T(1 / math.Sqrt(bc2))
	o.b1, o.b2 = T(c.Beta1), T(c.Beta2)
	o.eps = T(c.Eps)
	o.lr, o.bc1 = lr, bc1
	o.decay = T(1 - lr*c.WeightDecay)
	o.ps.Pool.For(o.ps.chunks(), o.task)
}

// chunk updates one chunk of the arena, tensor by tensor so each keeps its
// own Decay flag (frozen tensors are skipped).
func (o *AdamW[T]) chunk(i int) {
	data, grad := o.ps.Data(), o.ps.Grad()
	o.ps.eachInChunk(i, func(p *Param[T], lo, hi int) {
		w := data[lo:hi]
		g, m, v := grad[lo:hi][:len(w)], o.m[lo:hi][:len(w)], o.v[lo:hi][:len(w)]
		b1, b2, eps, step, inv := o.b1, o.b2, o.eps, o.stepSize, o.invSqrtBC2
		decay := o.decay
		if p.LRScale != 1 {
			step = T(o.lr * p.LRScale / o.bc1)
			decay = T(1 - o.lr*p.LRScale*o.Config.WeightDecay)
		}
		if p.Decay && o.Config.WeightDecay != 0 {
			// The decay in the same pass: the update is memory-bound, and
			// a separate Scale(w) would read and write w once more.
			for i := range w {
				gi := g[i]
				mi := b1*m[i] + (1-b1)*gi
				vi := b2*v[i] + (1-b2)*gi*gi
				m[i], v[i] = mi, vi
				w[i] = w[i]*decay - step*mi/(T(math.Sqrt(float64(vi)))*inv+eps)
			}
			return
		}
		for i := range w {
			gi := g[i]
			mi := b1*m[i] + (1-b1)*gi
			vi := b2*v[i] + (1-b2)*gi*gi
			m[i], v[i] = mi, vi
			w[i] -= step * mi / (T(math.Sqrt(float64(vi)))*inv + eps)
		}
	})
}

// T is the number of steps taken.
func (o *AdamW[T]) T() int { return o.t }

// M and V are the moment estimates in the arena's layout (for checkpoints).
func (o *AdamW[T]) M() []T { return o.m }

// V is the second-moment estimate in the arena's layout.
func (o *AdamW[T]) V() []T { return o.v }

// SetState restores a checkpointed optimiser: step count and copies of m, v.
func (o *AdamW[T]) SetState(t int, m, v []T) error {
	if t < 0 || len(m) != len(o.m) || len(v) != len(o.v) {
		return fmt.Errorf("engine: AdamW state: step %d, m %d and v %d elements, want %d", t, len(m), len(v), len(o.m))
	}
	o.t = t
	copy(o.m, m)
	copy(o.v, v)
	return nil
}
