package experiments

import (
	"context"
	"fmt"
	"time"

	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine/cuda"
)

// This file holds what depends on where a job's steps run: the device
// override of a resumed run, the GPU trainer's set-up, the batch feeder
// that keeps the device busy, and the timings metrics.jsonl reports.

// onDevice applies Options.Device and Options.Precision to c. Checkpoints
// are the same files whichever device wrote them, so a run may continue on
// another device than the one its config.resolved.yaml names; the file and
// the run's hash stay as they are, and metrics.jsonl's device field says
// where each step ran. Moving to another device drops a precision the
// config set for the old one unless Options.Precision names one.
func (o Options) onDevice(c Config) (Config, error) {
	if o.Device == "" && o.Precision == "" {
		return c, nil
	}
	if o.Device != "" && o.Device != c.Device {
		c.Device, c.Precision = o.Device, ""
	}
	if o.Precision != "" {
		c.Precision = o.Precision
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("device override (device %q, precision %q): %w", o.Device, o.Precision, err)
	}
	return c, nil
}

// runDevice is where a job's steps run.
type runDevice struct {
	name      string        // cpu or cuda
	precision string        // cuda's matrix-product arithmetic; "" on the CPU
	tr        *cuda.Trainer // nil on the CPU
}

// useDevice hands model's steps to the GPU when the config says cuda; the
// model closes the trainer.
func (j *job) useDevice(model *models.Model) (runDevice, error) {
	if j.cfg.Device != "cuda" {
		return runDevice{name: "cpu"}, nil
	}
	tr, err := cuda.NewTrainer(model, cuda.Options{Precision: cuda.Precision(j.cfg.Precision)})
	if err != nil {
		return runDevice{}, fmt.Errorf("device cuda: %w", err)
	}
	if err := model.SetAccelerator(tr); err != nil {
		tr.Close()
		return runDevice{}, fmt.Errorf("device cuda: %w", err)
	}
	j.log.Info("training on the GPU", "gpu", tr.Device().Name, "arch", tr.Device().SM, "precision", tr.Precision())
	return runDevice{name: "cuda", precision: string(tr.Precision()), tr: tr}, nil
}

// deviceLine is metrics.jsonl's part about the device, embedded in each
// line: where the steps ran and how long each waited.
type deviceLine struct {
	Device    string `json:"device"`              // cpu or cuda
	Precision string `json:"precision,omitempty"` // with cuda: fp32, tf32 or bf16
	// DataWaitMS is the mean host wall time per step, since the previous
	// line, that the training loop waited for its batch (the feeder
	// prepares each batch while the step before runs).
	DataWaitMS float64 `json:"data_wait_ms"`
	// GPUIdleMS is, with cuda, the mean time per step since the previous
	// line that the GPU sat idle between consecutive steps, timed by CUDA
	// events (cuda.Trainer.IdleTime: the gap after a checkpoint is not
	// counted); absent on the CPU and where the driver has no event timing.
	GPUIdleMS *float64 `json:"gpu_idle_ms,omitempty"`
}

// stepTimer turns the feeder's and the GPU's running totals into each
// metrics line's per-step means.
type stepTimer struct {
	dev        runDevice
	feed       *feeder
	step       int // the step of the previous line (or the start)
	wait, idle time.Duration
}

func newStepTimer(dev runDevice, feed *feeder, start int) *stepTimer {
	s := &stepTimer{dev: dev, feed: feed, step: start, wait: feed.waited}
	if dev.tr != nil {
		s.idle, _ = dev.tr.IdleTime()
	}
	return s
}

// line closes the interval ending at step.
func (s *stepTimer) line(step int) deviceLine {
	n := float64(max(step-s.step, 1))
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / n }
	l := deviceLine{Device: s.dev.name, Precision: s.dev.precision, DataWaitMS: ms(s.feed.waited - s.wait)}
	s.step, s.wait = step, s.feed.waited
	if s.dev.tr != nil {
		if idle, ok := s.dev.tr.IdleTime(); ok {
			v := ms(idle - s.idle)
			l.GPUIdleMS, s.idle = &v, idle
		}
	}
	return l
}

// feeder hands the training loop its batches and draws the next one in a
// goroutine while the current step runs, so the device does not wait for
// the mixer, the streams and image decoding between steps. The mixer
// reuses its Batch, so each batch drawn is copied into one of two buffers
// the feeder owns: the one the step reads and the one being filled. State
// and Stats are snapshots taken right after the batch last handed out was
// drawn: a checkpoint records what the trainer consumed, not what was
// drawn ahead. The prefetch changes no batch, only when it is drawn.
type feeder struct {
	ctx    context.Context
	cancel context.CancelFunc // stops a draw in flight at close
	mix    *mixer.Mixer
	left   int // batches still to hand out: none is drawn past the last
	bufs   [2]mixer.Batch
	slot   int          // the buffer the next draw fills
	ahead  chan fetched // the draw in flight, or nil
	st     mixer.State
	counts mixer.Stats
	waited time.Duration // total wall time next spent waiting for a batch
}

type fetched struct {
	b     *mixer.Batch
	st    mixer.State
	stats mixer.Stats
	err   error
}

// newFeeder feeds the next left batches of mix, which must not be used
// elsewhere until close.
func newFeeder(ctx context.Context, mix *mixer.Mixer, left int) *feeder {
	ctx, cancel := context.WithCancel(ctx)
	return &feeder{ctx: ctx, cancel: cancel, mix: mix, left: left}
}

func (f *feeder) fetch(slot int) fetched {
	b, err := f.mix.Next(f.ctx)
	if err != nil {
		return fetched{err: err} // io.EOF unwrapped: the caller tests for it
	}
	f.bufs[slot].CopyFrom(b)
	st, err := f.mix.State()
	return fetched{b: &f.bufs[slot], st: st, stats: f.mix.Stats(), err: err}
}

// next returns the next batch, valid until the following call, and starts
// drawing the one after it. Its errors are the mixer's, io.EOF included.
func (f *feeder) next() (*mixer.Batch, error) {
	t0 := time.Now()
	var r fetched
	if f.ahead != nil {
		r, f.ahead = <-f.ahead, nil
	} else {
		r = f.fetch(f.slot)
	}
	f.waited += time.Since(t0)
	if r.err != nil {
		return nil, r.err
	}
	f.st, f.counts = r.st, r.stats
	f.slot = 1 - f.slot
	if f.left--; f.left > 0 {
		ch, slot := make(chan fetched, 1), f.slot
		go func() { ch <- f.fetch(slot) }()
		f.ahead = ch
	}
	return r.b, nil
}

// state is the mixer's position after the batches handed out so far.
func (f *feeder) state() mixer.State { return f.st }

// stats are the mixer's counters after the batches handed out so far.
func (f *feeder) stats() mixer.Stats { return f.counts }

// close cancels a draw in flight and waits for it: the mixer must not
// close under it. Nothing uses a batch drawn ahead once the loop has
// stopped (an interrupt's checkpoint takes the snapshot in state), so an
// interrupted or failed run does not wait for one more batch to be read,
// decoded and packed; the mixer is left failed, which only Close follows.
func (f *feeder) close() {
	f.cancel()
	if f.ahead != nil {
		<-f.ahead
		f.ahead = nil
	}
}
