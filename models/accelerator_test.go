package models

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestImagePathForAccelerator: ImageForward gives exactly the image tokens
// of the host engine's Forward at the placeholders ImagePlaces names,
// ImageParams spans exactly the ViT's and connector's parameters, and
// MaxImages is the build size.
func TestImagePathForAccelerator(t *testing.T) {
	cfg := Config{Decoder: DefaultDecoderConfig(),
		Vision:    &VisionConfig{Resolution: 32, Patch: 8, Width: 48, Depth: 1, Heads: 4},
		Connector: &ConnectorConfig{Type: ConnAvgPool, Tokens: 4}}
	cfg.Decoder.Width, cfg.Decoder.Layers, cfg.Decoder.FFNHidden = 64, 1, 128
	const B, T = 2, 64
	ref, err := New(cfg, B, T, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	m, err := New(cfg, B, T, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := SyntheticBatch(cfg, B, T, true, 5)
	if _, err := ref.Forward(b); err != nil {
		t.Fatal(err)
	}
	want, err := m.ImagePlaces(b)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	tokens, places, err := m.ImageForward(b)
	if err != nil {
		t.Fatal(err)
	}
	D := cfg.Decoder.Width
	if !slices.Equal(places, want) {
		t.Fatalf("ImageForward places %v, ImagePlaces %v", places, want)
	}
	if got := m.MaxImages(); got != B*T/cfg.Connector.Tokens {
		t.Fatalf("MaxImages %d, want B·T/tokens = %d", got, B*T/cfg.Connector.Tokens)
	}
	if len(places) != B*cfg.Connector.Tokens || len(tokens) != len(places)*D {
		t.Fatalf("%d places, %d token values; want %d places", len(places), len(tokens), B*cfg.Connector.Tokens)
	}
	for r, p := range places {
		if b.Tokens[p] != b.ImageTokenID {
			t.Fatalf("place %d is token %d, not a placeholder", p, b.Tokens[p])
		}
		if !slices.Equal(tokens[r*D:(r+1)*D], ref.acts.xs[0][p*D:(p+1)*D]) {
			t.Fatalf("image token %d differs from the host Forward's embedding row %d", r, p)
		}
	}
	lo, hi := m.ImageParams()
	for _, p := range m.Params.All() {
		img := !strings.HasPrefix(p.Name, "llm.")
		if in := p.Offset >= lo && p.Offset+p.Size <= hi; in != img {
			t.Fatalf("%s [%d, %d) inside ImageParams [%d, %d): %v", p.Name, p.Offset, p.Offset+p.Size, lo, hi, in)
		}
	}
	if lo == hi {
		t.Fatal("ImageParams is empty for a multimodal model")
	}

	text, err := New(Config{Decoder: cfg.Decoder}, B, T, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer text.Close()
	tb := SyntheticBatch(text.Config, B, T, false, 5)
	if tokens, places, err := text.ImageForward(tb); err != nil || tokens != nil || places != nil {
		t.Fatalf("text-only ImageForward: %d values, %d places, %v", len(tokens), len(places), err)
	}
	if lo, hi := text.ImageParams(); lo != hi {
		t.Fatalf("text-only ImageParams [%d, %d)", lo, hi)
	}
	if places, err := text.ImagePlaces(tb); err != nil || places != nil || text.MaxImages() != 0 {
		t.Fatalf("text-only ImagePlaces: %v, %v; MaxImages %d", places, err, text.MaxImages())
	}
}

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

// TestImageForwardNamesNonFiniteLayer: a non-finite image token stops
// ImageForward (the device would only see a NaN loss) with an error naming
// the first image-side layer that went bad, as the host Forward does.
func TestImageForwardNamesNonFiniteLayer(t *testing.T) {
	cfg := tinyMultimodal(ConnCAbstractor, 4, false)
	m := newTiny(t, cfg, 2, 24, 1)
	b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
	if _, _, err := m.ImageForward(b); err != nil {
		t.Fatal(err)
	}
	poison(m, "vit.blocks.0.mlp.fc2.weight")
	_, _, err := m.ImageForward(b)
	if err == nil || !strings.Contains(err.Error(), "vit.blocks.0 mlp output") {
		t.Fatalf("error %v, want one naming vit.blocks.0 mlp output", err)
	}
}
