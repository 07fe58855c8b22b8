package mixer

// schedule gives each source's weight at a training step. Points are full
// weight vectors (in source order) at strictly increasing steps, the first
// at step 0.
type schedule struct {
	steps   []int64
	weights [][]float64
	linear  bool
}

// newSchedule resolves a valid Config's phases into full vectors: a
// phase's unnamed sources keep the weight of the point before it.
func newSchedule(c Config, names []string) schedule {
	base := make([]float64, len(names))
	for i, n := range names {
		base[i] = c.Sources[n].Weight
	}
	s := schedule{steps: []int64{0}, weights: [][]float64{base}, linear: c.Interpolation == InterpLinear}
	for _, ph := range c.Schedule {
		w := append([]float64(nil), s.weights[len(s.weights)-1]...)
		for i, n := range names {
			if v, ok := ph.Weights[n]; ok {
				w[i] = v
			}
		}
		if ph.Step == 0 {
			s.weights[0] = w
			continue
		}
		s.steps = append(s.steps, ph.Step)
		s.weights = append(s.weights, w)
	}
	return s
}

// at writes the weights at step into dst.
func (s schedule) at(step int64, dst []float64) {
	k := 0
	for k+1 < len(s.steps) && s.steps[k+1] <= step {
		k++
	}
	copy(dst, s.weights[k])
	if !s.linear || k+1 == len(s.steps) {
		return
	}
	f := float64(step-s.steps[k]) / float64(s.steps[k+1]-s.steps[k])
	for i, b := range s.weights[k+1] {
		dst[i] += f * (b - dst[i])
	}
}
