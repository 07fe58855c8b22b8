package mixer

import (
	"math"
	"math/rand/v2"
)

// sampler keeps one credit per source: the target count so far (the sum
// of the source's normalised weight over every draw) minus the realised
// count. Credits of the active sources sum to 0. Both modes share it;
// see the package doc for the bounds and their proofs.
type sampler struct {
	credit []float64
}

// pick is one random-mode draw. p holds normalised weights (0 for a
// stopped source). Every active credit grows by its weight; the draw is
// among the sources with positive credit, with probability proportional
// to it; the chosen credit drops by 1.
func (s *sampler) pick(p []float64, rng *rand.Rand) int {
	total := 0.0
	for i, w := range p {
		if w > 0 {
			s.credit[i] += w
			if s.credit[i] > 0 {
				total += s.credit[i]
			}
		}
	}
	u := rng.Float64() * total
	chosen := -1
	for i, w := range p {
		if w > 0 && s.credit[i] > 0 {
			chosen = i
			if u -= s.credit[i]; u < 0 {
				break
			}
		}
	}
	if chosen < 0 {
		// Only a restored State whose credits do not sum to 0 gets here;
		// the largest credit is still the most owed source.
		chosen = s.argmax(p)
	}
	s.credit[chosen]--
	return chosen
}

// argmax is the active source with the largest credit, ties to the lower.
func (s *sampler) argmax(p []float64) int {
	best, bestV := -1, math.Inf(-1)
	for i, w := range p {
		if w > 0 && (best < 0 || s.credit[i] > bestV) {
			best, bestV = i, s.credit[i]
		}
	}
	return best
}

// split is one stratified batch of n sequences: counts[i] is the number
// of rows source i gets. Each quota q_i = n·p_i + credit_i is apportioned
// by largest remainder, i.e. the n largest of {q_i - j : j = 0, 1, …},
// ties to the lower index; what is left (q_i - counts[i]) carries to the
// next batch.
func (s *sampler) split(p []float64, n int, counts []int) {
	for i, w := range p {
		counts[i] = 0
		if w > 0 {
			s.credit[i] += float64(n) * w
		}
	}
	for range n {
		best := s.argmax(p)
		counts[best]++
		s.credit[best]--
	}
}

// remove drops source i (stopped) and spreads its credit over the other
// active sources so the active credits still sum to 0.
func (s *sampler) remove(i int, active []bool) {
	n := 0
	for j, a := range active {
		if a && j != i {
			n++
		}
	}
	c := s.credit[i]
	s.credit[i] = 0
	if n == 0 {
		return
	}
	for j, a := range active {
		if a && j != i {
			s.credit[j] += c / float64(n)
		}
	}
}

// normalise writes w/Σw into p for the active sources and 0 for the
// others; it reports false when no source is active.
func normalise(w []float64, active []bool, p []float64) bool {
	sum := 0.0
	for i, v := range w {
		if active[i] {
			sum += v
		}
	}
	for i, v := range w {
		p[i] = 0
		if active[i] && sum > 0 {
			p[i] = v / sum
		}
	}
	return sum > 0
}
