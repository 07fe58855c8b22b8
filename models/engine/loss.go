package engine

import "math"

// ceRows is the number of rows per block in the cross-entropy. Per-block
// sums are added in block order, so the serial functions and the pooled
// CrossEntropy layer return bit-identical losses.
const ceRows = 32

// CrossEntropyForward returns the masked mean softmax cross-entropy
// loss = Σ_i mask_i·(logsumexp(logits_i) − logits_i[targets_i]) / Σ_i mask_i,
// 0 when Σ mask = 0. logits [n, V], targets [n], mask [n]. stats [2n] saves
// each row's maximum and log Σ exp(logit − max) for Backward: keeping the two
// apart (rather than their sum) keeps the loss exact when the logits are
// huge in magnitude, and subtracting each row's own maximum keeps rows of
// huge negative logits finite. Rows with mask 0 may hold any target (padding
// uses -1); a target outside [0, V) in a row with mask ≠ 0 panics.
func CrossEntropyForward[T Float](stats, logits []T, targets []int32, mask []T, V int) float64 {
	n := checkCE(stats, logits, targets, mask, V)
	var total, count float64
	for b := range blocks(n, ceRows) {
		t, c := ceForwardRows(stats, logits, targets, mask, V, b*ceRows, min((b+1)*ceRows, n))
		total += t
		count += c
	}
	if count == 0 {
		return 0
	}
	return total / count
}

// CrossEntropyBackward adds dlogits += dloss·mask_i·(softmax(logits_i) −
// onehot(targets_i)) / Σ mask, using stats from Forward.
func CrossEntropyBackward[T Float](dlogits, logits, stats []T, targets []int32, mask []T, V int, dloss float64) {
	n := checkCE(stats, logits, targets, mask, V)
	checkLen("CrossEntropyBackward dlogits", dlogits, n*V)
	if w := ceWeight(mask, dloss); w != 0 {
		ceBackwardRows(dlogits, logits, stats, targets, mask, V, w, 0, n)
	}
}

// CrossEntropy is the same loss with its rows spread over a pool.
type CrossEntropy[T Float] struct {
	V    int
	Pool *Pool // nil: one goroutine

	c              ceCall[T]
	totals, counts []float64
	fwd, bwd       func(int)
}

type ceCall[T Float] struct {
	stats, logits, dlogits, mask []T
	targets                      []int32
	w                            float64
}

// NewCrossEntropy returns the pooled loss for vocabulary size V.
func NewCrossEntropy[T Float](V int, pool *Pool) *CrossEntropy[T] {
	c := &CrossEntropy[T]{V: V, Pool: pool}
	c.fwd, c.bwd = c.forwardBlock, c.backwardBlock
	return c
}

// Forward is CrossEntropyForward over the pool (identical result).
func (c *CrossEntropy[T]) Forward(stats, logits []T, targets []int32, mask []T) float64 {
	n := checkCE(stats, logits, targets, mask, c.V)
	nb := blocks(n, ceRows)
	if cap(c.totals) < nb {
		c.totals, c.counts = make([]float64, nb), make([]float64, nb)
	}
	c.totals, c.counts = c.totals[:nb], c.counts[:nb]
	c.c = ceCall[T]{stats: stats, logits: logits, targets: targets, mask: mask}
	c.Pool.For(nb, c.fwd)
	c.c = ceCall[T]{}
	var total, count float64
	for b := range nb {
		total += c.totals[b]
		count += c.counts[b]
	}
	if count == 0 {
		return 0
	}
	return total / count
}

func (c *CrossEntropy[T]) forwardBlock(b int) {
	n := len(c.c.targets)
	c.totals[b], c.counts[b] = ceForwardRows(c.c.stats, c.c.logits, c.c.targets, c.c.mask, c.V, b*ceRows, min((b+1)*ceRows, n))
}

// Backward is CrossEntropyBackward over the pool.
func (c *CrossEntropy[T]) Backward(dlogits, logits, stats []T, targets []int32, mask []T, dloss float64) {
	n := checkCE(stats, logits, targets, mask, c.V)
	checkLen("CrossEntropy.Backward dlogits", dlogits, n*c.V)
	w := ceWeight(mask, dloss)
	if w == 0 {
		return
	}
	c.c = ceCall[T]{stats: stats, logits: logits, dlogits: dlogits, targets: targets, mask: mask, w: w}
	c.Pool.For(blocks(n, ceRows), c.bwd)
	c.c = ceCall[T]{}
}

func (c *CrossEntropy[T]) backwardBlock(b int) {
	n := len(c.c.targets)
	ceBackwardRows(c.c.dlogits, c.c.logits, c.c.stats, c.c.targets, c.c.mask, c.V, c.c.w, b*ceRows, min((b+1)*ceRows, n))
}

func checkCE[T Float](stats, logits []T, targets []int32, mask []T, V int) int {
	n := len(targets)
	checkLen("CrossEntropy logits", logits, n*V)
	checkLen("CrossEntropy mask", mask, n)
	checkLen("CrossEntropy stats", stats, 2*n)
	return n
}

// ceWeight is dloss / Σ mask, or 0 when the mask is empty.
func ceWeight[T Float](mask []T, dloss float64) float64 {
	var count float64
	for _, m := range mask {
		count += float64(m)
	}
	if count == 0 {
		return 0
	}
	return dloss / count
}

func ceForwardRows[T Float](stats, logits []T, targets []int32, mask []T, V, r0, r1 int) (total, count float64) {
	for i := r0; i < r1; i++ {
		row := logits[i*V : (i+1)*V]
		mx := row[0]
		for _, v := range row[1:] {
			mx = max(mx, v)
		}
		var s T
		for _, v := range row {
			x := v - mx
			if is32[T]() && x >= expInLo { // x ≤ 0; expf's fast path, inlined
				s += T(expIn(float32(x)))
			} else {
				s += expT(x)
			}
		}
		logSum := math.Log(float64(s))
		stats[2*i], stats[2*i+1] = mx, T(logSum)
		if mask[i] == 0 {
			continue
		}
		t := targets[i]
		if t < 0 || int(t) >= V {
			panic("engine: CrossEntropy: target " + itoa(int(t)) + " at row " + itoa(i) + " outside [0, " + itoa(V) + ")")
		}
		total += float64(mask[i]) * (float64(mx-row[t]) + logSum)
		count += float64(mask[i])
	}
	return total, count
}

func ceBackwardRows[T Float](dlogits, logits, stats []T, targets []int32, mask []T, V int, w float64, r0, r1 int) {
	for i := r0; i < r1; i++ {
		if mask[i] == 0 {
			continue
		}
		wi := T(w * float64(mask[i]))
		row := logits[i*V : (i+1)*V]
		drow := dlogits[i*V : (i+1)*V][:len(row)]
		mx, logSum := stats[2*i], stats[2*i+1]
		for j, v := range row {
			x := v - mx - logSum
			if is32[T]() && x >= expInLo && x <= expInHi { // expf's fast path, inlined
				drow[j] += wi * T(expIn(float32(x)))
			} else {
				drow[j] += wi * expT(x)
			}
		}
		drow[targets[i]] -= wi
	}
}
