package ifprune

import (
	"math"
	"slices"

	"github.com/mmablate/mmablate/models/engine"
)

// softTopKIters bounds the bisection: the bracket starts ~80·t + range(s)
// wide, so 100 halvings reach float64 resolution for any sane score range.
const softTopKIters = 100

// SoftTopK writes mask [F] = σ((scores + τ)/temp) with τ chosen so that the
// mask sums to k, and returns τ. k ≥ F gives an all-ones mask (τ = +Inf).
// It panics for k ≤ 0, temp ≤ 0 or mismatched lengths (callers validate
// the config first).
func SoftTopK[T engine.Float](mask, scores []T, k int, temp float64) float64 {
	F := len(scores)
	if len(mask) != F || k <= 0 || !(temp > 0) {
		panic("ifprune: SoftTopK: bad arguments")
	}
	if k >= F {
		for i := range mask {
			mask[i] = 1
		}
		return math.Inf(1)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range scores {
		lo, hi = min(lo, float64(s)), max(hi, float64(s))
	}
	// At τ = −hi − 40t every m_i < σ(−40) so the sum is ≈ 0 < k; at
	// τ = −lo + 40t every m_i > σ(40) so the sum is ≈ F > k.
	a, b := -hi-40*temp, -lo+40*temp
	sum := func(tau float64) (s, ds float64) {
		for _, v := range scores {
			m := sigmoid((float64(v) + tau) / temp)
			s += m
			ds += m * (1 - m) / temp
		}
		return s, ds
	}
	kf := float64(k)
	for range softTopKIters {
		mid := 0.5 * (a + b)
		if mid == a || mid == b {
			break
		}
		if s, _ := sum(mid); s < kf {
			a = mid
		} else {
			b = mid
		}
	}
	tau := 0.5 * (a + b)
	// Newton polishing keeps τ inside the bracket; it makes Σm = k hold to
	// rounding, which the finite-difference gradient check relies on.
	for range 3 {
		s, ds := sum(tau)
		if ds == 0 {
			break
		}
		if next := tau - (s-kf)/ds; next > a && next < b {
			tau = next
		}
	}
	for i, v := range scores {
		mask[i] = T(sigmoid((float64(v) + tau) / temp))
	}
	return tau
}

// SoftTopKBackward adds dscores += ∂L/∂scores given dmask = ∂L/∂mask and
// the mask SoftTopK wrote (implicit differentiation of Σ m = k; see the
// package doc). An all-ones mask (k ≥ F) or a saturated one adds nothing.
func SoftTopKBackward[T engine.Float](dscores, dmask, mask []T, temp float64) {
	var sa, sag float64
	for i, m := range mask {
		a := float64(m) * (1 - float64(m)) / temp
		sa += a
		sag += a * float64(dmask[i])
	}
	if sa == 0 {
		return
	}
	c := sag / sa
	for i, m := range mask {
		a := float64(m) * (1 - float64(m)) / temp
		dscores[i] += T(a * (float64(dmask[i]) - c))
	}
}

// HardTopK returns the indices of the k largest scores in ascending index
// order (ties go to the lower index), reusing idx's storage. k ≥ len(scores)
// selects every channel.
func HardTopK[T engine.Float](idx []int, scores []T, k int) []int {
	idx = idx[:0]
	for i := range scores {
		idx = append(idx, i)
	}
	if k >= len(scores) {
		return idx
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	idx = idx[:k]
	slices.Sort(idx)
	return idx
}

// HardMask writes the 0/1 indicator of HardTopK into mask [F].
func HardMask[T engine.Float](mask, scores []T, k int, scratch []int) {
	clear(mask)
	for _, i := range HardTopK(scratch, scores, k) {
		mask[i] = 1
	}
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}
