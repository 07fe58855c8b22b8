package experiments

import "math"

// RateAt is the learning rate of 0-based step: linear warm-up from lr/warmup
// to lr over the first warmup steps, then a cosine from lr at step warmup
// down to min_lr at step steps. It depends on nothing but the step, so a
// resumed run uses the same rates.
//
//	step < warmup:  lr·(step+1)/warmup
//	otherwise:      min_lr + ½(lr − min_lr)(1 + cos(π·(step − warmup)/(steps − warmup)))
func (t TrainConfig) RateAt(step int) float64 {
	if step < t.Warmup {
		return t.LR * float64(step+1) / float64(t.Warmup)
	}
	if t.Steps <= t.Warmup {
		return t.LR
	}
	progress := min(float64(step-t.Warmup)/float64(t.Steps-t.Warmup), 1)
	return t.MinLR + 0.5*(t.LR-t.MinLR)*(1+math.Cos(math.Pi*progress))
}
