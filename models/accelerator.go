package models

import (
	"errors"
	"slices"
	"strings"

	"github.com/mmablate/mmablate/models/engine"
)

// Accelerator runs a Model's training steps on another device (the CUDA
// backend, models/engine/cuda), which holds its own copy of the weights and
// AdamW state. The Model's Params stay the host copy: Pull refreshes them
// from the device and Push sends them there. The Model calls Pull before it
// saves weights or optimizer state or lends its weights (CopyWeights), and
// Push after it loads them, so checkpoints are the same files whichever
// device trained.
type Accelerator interface {
	Step(b *Batch, lr float64) (StepStats, error) // as Model.Step
	Steps() int                                   // AdamW updates taken
	Pull() error                                  // device → Params and optimizer state
	Push() error                                  // Params and optimizer state → device
	Close() error
}

// SetAccelerator hands Step to a, which must have been built for m (nil
// returns training to the CPU engine after pulling the device's weights).
// While one is set, Forward, Backward and Logits still run on the host copy,
// which is current only after a Pull (SaveWeights and CopyWeights pull).
// Close closes it.
func (m *Model) SetAccelerator(a Accelerator) error {
	if m.acc != nil && a == nil {
		acc := m.acc
		m.acc = nil
		return errors.Join(acc.Pull(), acc.Close())
	}
	if a != nil && m.dec.prune != nil {
		// The device step has no mask predictor or masked FFN: it would
		// train the dense model and leave the predictor untouched.
		return errors.New("model.decoder.ffn_pruning " + m.Config.Decoder.FFNPruning + " trains on the CPU engine only")
	}
	m.acc = a
	return nil
}

// Optimizer is the host AdamW (its state is current on the host only after
// a Pull when an Accelerator is set).
func (m *Model) Optimizer() *engine.AdamW[float32] { return m.opt }

// ClipNorm is the global gradient-norm clip Step applies (≤ 0: none).
func (m *Model) ClipNorm() float64 { return m.clip }

// pull refreshes the host copy from the accelerator, if any.
func (m *Model) pull() error {
	if m.acc == nil {
		return nil
	}
	return m.acc.Pull()
}

// push sends the host copy to the accelerator, if any.
func (m *Model) push() error {
	if m.acc == nil {
		return nil
	}
	return m.acc.Push()
}

// ImageForward runs b's images through the ViT and connector on the host
// engine: it returns the image tokens [rows, D] (the model's buffer, valid
// until the next call) and the flat positions b·T+t of the placeholders
// they replace, in order (rows = len(places)). A non-finite token is an
// error naming the first image-side layer that went non-finite, as Forward
// names it: an Accelerator whose device loss went non-finite calls it on
// the image path's weights to say where. b is checked as Forward checks
// it; a text-only model or a batch without images returns no rows.
func (m *Model) ImageForward(b *Batch) (tokens []float32, places []int, err error) {
	places, err = m.placeholders(b)
	if err != nil || m.img == nil || b.NumImages == 0 {
		return nil, nil, err
	}
	D := m.Config.Decoder.Width
	tokens = m.imgs[:len(places)*D]
	m.img.forward(tokens, b.Images, b.NumImages)
	if engine.CheckFinite("image tokens", tokens) != nil {
		return nil, nil, m.img.firstNonFinite(b.Images, tokens, b.NumImages)
	}
	return tokens, places, nil
}

// ImagePlaces checks b as Forward checks it and returns the flat positions
// b·T+t of its image placeholders, in order (NumImages·tokens of them; none
// for a text-only model), for an Accelerator that runs the image path on
// its device. The slice is the model's buffer, valid until the next call.
func (m *Model) ImagePlaces(b *Batch) ([]int, error) { return m.placeholders(b) }

// MaxImages is the number of images per batch the model was built for (0
// for a text-only model).
func (m *Model) MaxImages() int { return m.maxImages }

// ImageParams is the image path's span [lo, hi) of the Params arena (the
// ViT and connector are built after the decoder, so they are its tail);
// lo == hi for a text-only model.
func (m *Model) ImageParams() (lo, hi int) {
	hi = m.Params.Len()
	lo = hi
	for _, p := range slices.Backward(m.Params.All()) {
		if strings.HasPrefix(p.Name, "llm.") {
			break
		}
		lo = p.Offset
	}
	return lo, hi
}
