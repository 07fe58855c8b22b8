package models

import (
	"path/filepath"
	"testing"
)

// fakeAccel records the seam's calls; its "device" weights are a copy that
// Step shifts by one, so a missing Pull or Push shows in the numbers.
type fakeAccel struct {
	m                          *Model
	dev                        []float32
	steps, pulls, pushes, shut int
}

func (f *fakeAccel) Step(b *Batch, lr float64) (StepStats, error) {
	for i := range f.dev {
		f.dev[i]++
	}
	f.steps++
	return StepStats{Step: f.steps, Loss: 1}, nil
}
func (f *fakeAccel) Steps() int { return f.steps }
func (f *fakeAccel) Pull() error {
	f.pulls++
	copy(f.m.Params.Data(), f.dev)
	return nil
}
func (f *fakeAccel) Push() error {
	f.pushes++
	f.dev = append(f.dev[:0], f.m.Params.Data()...)
	return nil
}
func (f *fakeAccel) Close() error { f.shut++; return nil }

// TestAcceleratorSeam: Step goes to the accelerator, saving pulls the
// device weights first, loading pushes them, CopyWeights pulls its source,
// and SetAccelerator(nil) pulls, closes and returns Step to the CPU.
func TestAcceleratorSeam(t *testing.T) {
	cfg := Config{Decoder: DefaultDecoderConfig()}
	cfg.Decoder.Width, cfg.Decoder.Layers, cfg.Decoder.FFNHidden, cfg.Decoder.Vocab = 32, 1, 64, 64
	m, err := New(cfg, 1, 8, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := &fakeAccel{m: m}
	if err := f.Push(); err != nil {
		t.Fatal(err)
	}
	if err := m.SetAccelerator(f); err != nil {
		t.Fatal(err)
	}
	w0 := m.Params.Data()[0]
	b := SyntheticBatch(cfg, 1, 8, false, 1)
	if st, err := m.Step(b, 1e-3); err != nil || st.Step != 1 || m.Steps() != 1 {
		t.Fatalf("Step: %+v %v; Steps %d", st, err, m.Steps())
	}
	if m.Params.Data()[0] != w0 {
		t.Errorf("host weights changed by a device step before any Pull")
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := m.SaveWeights(path, nil); err != nil || f.pulls != 1 || m.Params.Data()[0] != w0+1 {
		t.Fatalf("SaveWeights: %v, pulls %d, host weight %v want %v", err, f.pulls, m.Params.Data()[0], w0+1)
	}
	m.Params.Data()[0] = 42
	if _, err := m.LoadWeights(path); err != nil || f.pushes != 2 || f.dev[0] != w0+1 {
		t.Fatalf("LoadWeights: %v, pushes %d, device weight %v want %v", err, f.pushes, f.dev[0], w0+1)
	}
	other, err := New(cfg, 2, 8, Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.CopyWeights(m); err != nil || f.pulls != 2 || other.Params.Data()[0] != w0+1 {
		t.Fatalf("CopyWeights: %v, pulls %d, copied weight %v", err, f.pulls, other.Params.Data()[0])
	}
	f.dev[0] = 7
	if err := m.SetAccelerator(nil); err != nil || f.shut != 1 || m.Params.Data()[0] != 7 {
		t.Fatalf("SetAccelerator(nil): %v, closed %d, host weight %v", err, f.shut, m.Params.Data()[0])
	}
	if st, err := m.Step(b, 1e-3); err != nil || f.steps != 1 || st.Step != 1 {
		t.Fatalf("CPU step after detaching: %+v %v (device steps %d)", st, err, f.steps)
	}
}
