package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// Params is the parameter arena: every trainable tensor of a model in one
// flat Data slice, with Grad (and AdamW's M and V) in the same layout, so
// zeroing, clipping and the optimiser are single loops. Tensors are reached
// through *Param handles and the name/shape table (All, Lookup) whose names
// are the safetensors names.
type Params[T Float] struct {
	// Pool, when set, splits the large matrix products of the layers built
	// on this arena (Linear, Conv2d, the MLPs) over its workers; layers read
	// it at each call. nil runs them as single BLAS calls.
	Pool *Pool

	data, grad []T
	params     []*Param[T]
	byName     map[string]*Param[T]

	// ClipGradNorm's per-chunk partial sums and its pool tasks, made once.
	sumSq              []float64
	clipScale          T
	sumTask, scaleTask func(int)

	// CheckGrads's per-chunk verdicts and its pool task, made once.
	gradBad   []bool
	checkTask func(int)
}

// chunkSize is the number of arena elements per pool task in the
// whole-arena loops (clipping, AdamW).
const chunkSize = 1 << 15

// chunks is the number of chunkSize pieces of the arena.
func (ps *Params[T]) chunks() int { return blocks(len(ps.data), chunkSize) }

// eachInChunk calls f(p, lo, hi) for every non-frozen tensor p overlapping
// chunk i, with [lo, hi) the overlap in arena offsets.
func (ps *Params[T]) eachInChunk(i int, f func(p *Param[T], lo, hi int)) {
	lo, hi := i*chunkSize, min((i+1)*chunkSize, len(ps.data))
	j := sort.Search(len(ps.params), func(j int) bool { return ps.params[j].Offset+ps.params[j].Size > lo })
	for ; j < len(ps.params) && ps.params[j].Offset < hi; j++ {
		if p := ps.params[j]; !p.Frozen {
			f(p, max(lo, p.Offset), min(hi, p.Offset+p.Size))
		}
	}
}

// Param is one named tensor of a Params arena: Size elements at Offset.
// Decay says whether AdamW applies weight decay to it (default: tensors of
// rank ≥ 2); LRScale multiplies AdamW's learning rate for it, decay
// included, as a PyTorch parameter group's own lr does (default 1); Frozen
// tensors get no gradient and no update.
type Param[T Float] struct {
	Name    string
	Shape   []int
	Offset  int
	Size    int
	Decay   bool
	LRScale float64
	Frozen  bool
	arena   *Params[T]
}

// NewParams returns an empty arena.
func NewParams[T Float]() *Params[T] {
	return &Params[T]{byName: make(map[string]*Param[T])}
}

// Add registers a zero-initialised tensor. It panics on a duplicate name or a
// non-positive dimension. Handles stay valid as the arena grows; slices from
// Data/Grad taken before a later Add may point at the old storage, so
// register everything before training.
func (ps *Params[T]) Add(name string, shape ...int) *Param[T] {
	if _, dup := ps.byName[name]; dup {
		panic("engine: parameter " + name + " registered twice")
	}
	size := 1
	for _, d := range shape {
		if d <= 0 {
			panic("engine: parameter " + name + ": non-positive dimension " + itoa(d))
		}
		size *= d
	}
	p := &Param[T]{
		Name:    name,
		Shape:   append([]int(nil), shape...),
		Offset:  len(ps.data),
		Size:    size,
		Decay:   len(shape) >= 2,
		LRScale: 1,
		arena:   ps,
	}
	ps.data = append(ps.data, make([]T, size)...)
	ps.grad = append(ps.grad, make([]T, size)...)
	ps.params = append(ps.params, p)
	ps.byName[name] = p
	return p
}

// ScaleLR sets LRScale to scale on every tensor named prefix or whose name
// starts with prefix and a dot, and returns how many it set.
func (ps *Params[T]) ScaleLR(prefix string, scale float64) int {
	n := 0
	for _, p := range ps.params {
		if p.Name == prefix || strings.HasPrefix(p.Name, prefix+".") {
			p.LRScale = scale
			n++
		}
	}
	return n
}

// Lookup returns the tensor registered under name.
func (ps *Params[T]) Lookup(name string) (*Param[T], bool) {
	p, ok := ps.byName[name]
	return p, ok
}

// All returns the tensors in registration order, which is their layout order.
func (ps *Params[T]) All() []*Param[T] { return ps.params }

// Len is the total number of elements.
func (ps *Params[T]) Len() int { return len(ps.data) }

// Data returns the whole parameter arena.
func (ps *Params[T]) Data() []T { return ps.data }

// Grad returns the whole gradient arena (same layout as Data).
func (ps *Params[T]) Grad() []T { return ps.grad }

// ZeroGrad clears every gradient; call it once per step before Backward.
func (ps *Params[T]) ZeroGrad() { clear(ps.grad) }

// SetFrozen marks every tensor whose name starts with prefix as frozen (or
// not) and returns how many matched. Frozen tensors get no gradient from the
// layers, no update from AdamW and do not count in ClipGradNorm.
func (ps *Params[T]) SetFrozen(prefix string, frozen bool) int {
	n := 0
	for _, p := range ps.params {
		if strings.HasPrefix(p.Name, prefix) {
			p.Frozen = frozen
			n++
		}
	}
	return n
}

// ClipGradNorm computes the global L2 norm of the gradients of the trainable
// tensors and, when it exceeds maxNorm > 0, scales them by
// maxNorm/(norm+1e-6) as torch.nn.utils.clip_grad_norm_ does. It returns the
// norm before clipping. A non-finite norm leaves the gradients unchanged so
// the caller can report it (CheckGrads names the tensor).
func (ps *Params[T]) ClipGradNorm(maxNorm float64) float64 {
	if ps.sumTask == nil {
		ps.sumTask, ps.scaleTask = ps.sumChunk, ps.scaleChunk
	}
	nc := ps.chunks()
	if cap(ps.sumSq) < nc {
		ps.sumSq = make([]float64, nc)
	}
	ps.sumSq = ps.sumSq[:nc]
	ps.Pool.For(nc, ps.sumTask)
	var ss float64
	for _, v := range ps.sumSq { // in chunk order: the same norm for any pool
		ss += v
	}
	norm := math.Sqrt(ss)
	if maxNorm <= 0 || !(norm > maxNorm) || math.IsInf(norm, 0) {
		return norm
	}
	ps.clipScale = T(maxNorm / (norm + 1e-6))
	ps.Pool.For(nc, ps.scaleTask)
	return norm
}

func (ps *Params[T]) sumChunk(i int) {
	var ss float64
	ps.eachInChunk(i, func(_ *Param[T], lo, hi int) { ss += sumSquares(ps.grad[lo:hi]) })
	ps.sumSq[i] = ss
}

func (ps *Params[T]) scaleChunk(i int) {
	ps.eachInChunk(i, func(_ *Param[T], lo, hi int) { Scale(ps.grad[lo:hi], ps.clipScale) })
}

// CheckGrads returns a *NonFiniteError naming the first trainable tensor
// whose gradient holds a NaN or Inf, or nil.
func (ps *Params[T]) CheckGrads() error {
	// Every step checks the whole gradient arena, so scan it over the pool
	// with a branch-free test first; only a step that has a non-finite
	// value walks the tensors in order to name the first one.
	if ps.checkTask == nil {
		ps.checkTask = ps.checkChunk
	}
	nc := ps.chunks()
	if cap(ps.gradBad) < nc {
		ps.gradBad = make([]bool, nc)
	}
	ps.gradBad = ps.gradBad[:nc]
	ps.Pool.For(nc, ps.checkTask)
	if !slices.Contains(ps.gradBad, true) {
		return nil
	}
	for _, p := range ps.params {
		if p.Frozen {
			continue
		}
		if err := CheckFinite(p.Name+" (grad)", p.Grad()); err != nil {
			return err
		}
	}
	return nil
}

func (ps *Params[T]) checkChunk(i int) {
	bad := false
	ps.eachInChunk(i, func(_ *Param[T], lo, hi int) { bad = bad || !allFinite(ps.grad[lo:hi]) })
	ps.gradBad[i] = bad
}

// Data returns the tensor's values (a view into the arena).
func (p *Param[T]) Data() []T {
	return p.arena.data[p.Offset : p.Offset+p.Size : p.Offset+p.Size]
}

// Grad returns the tensor's gradient (a view into the gradient arena).
func (p *Param[T]) Grad() []T {
	return p.arena.grad[p.Offset : p.Offset+p.Size : p.Offset+p.Size]
}

// Normal fills the tensor with normal(0, std) draws from rng.
func (p *Param[T]) Normal(rng *rand.Rand, std float64) {
	for i := range p.Data() {
		p.arena.data[p.Offset+i] = T(rng.NormFloat64() * std)
	}
}

// Fill sets every element to v.
func (p *Param[T]) Fill(v T) {
	for i := range p.Data() {
		p.arena.data[p.Offset+i] = v
	}
}

// sumSquares is Σ x² in float64, with four independent accumulators so the
// additions pipeline.
func sumSquares[T Float](x []T) float64 {
	var s0, s1, s2, s3 float64
	for len(x) >= 4 {
		a, b, c, d := float64(x[0]), float64(x[1]), float64(x[2]), float64(x[3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
		x = x[4:]
	}
	for _, v := range x {
		s0 += float64(v) * float64(v)
	}
	return (s0 + s1) + (s2 + s3)
}
