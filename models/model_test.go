package models

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/internal/allocs"
	"github.com/mmablate/mmablate/models/connector"
	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/vision"
)

func newTiny(t *testing.T, cfg Config, B, T int, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg, B, T, Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestTrainingSmoke: a tiny multimodal model memorises one fixed batch.
// Initial loss is ≈ ln(63) ≈ 4.1 (uniform over the vocabulary); it must fall
// below 0.05 within 50 AdamW steps at lr 1e-2 (it reaches ≈ 0.003).
func TestTrainingSmoke(t *testing.T) {
	cfg := tinyMultimodal(ConnCAbstractor, 4, false)
	m := newTiny(t, cfg, 2, 24, 1)
	b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
	var first, last float64
	for step := range 50 {
		st, err := m.Step(b, 1e-2)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = st.Loss
		}
		last = st.Loss
		if st.Step != step+1 {
			t.Fatalf("StepStats.Step %d at step %d", st.Step, step+1)
		}
	}
	t.Logf("loss %.3f → %.4f in 50 steps", first, last)
	if math.Abs(first-math.Log(63)) > 0.3 {
		t.Errorf("initial loss %.3f, want ≈ ln 63 = %.3f", first, math.Log(63))
	}
	if last >= 0.05 {
		t.Errorf("loss %.4f after 50 steps, want < 0.05", last)
	}
}

func TestNonFiniteNamesStepAndLayer(t *testing.T) {
	m := newTiny(t, Config{Decoder: tinyDecoder()}, 2, 24, 1)
	b := parityBatch(rand.New(rand.NewPCG(1, 2)), m.Config, 2, 24, 0)
	if _, err := m.Step(b, 1e-3); err != nil {
		t.Fatal(err)
	}
	w, _ := m.Params.Lookup("llm.layers.1.mlp.w2.weight")
	w.Data()[5] = float32(math.Inf(1))
	before := slices.Clone(m.Params.Data())
	_, err := m.Step(b, 1e-3)
	if err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), "llm.layers.1 mlp output") {
		t.Fatalf("error %v, want one naming step 2 and llm.layers.1 mlp output", err)
	}
	if !slices.EqualFunc(before, m.Params.Data(), func(a, b float32) bool { return a == b || (a != a && b != b) }) {
		t.Error("weights changed by a failed step")
	}
}

// TestNonFiniteNamesImageLayer: on the image side the error names the ViT
// layer, the connector or the images where the first NaN/Inf appeared.
func TestNonFiniteNamesImageLayer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		poison func(m *Model, b *Batch)
		want   string
	}{
		{"image", func(m *Model, b *Batch) { b.Images[17] = float32(math.NaN()) }, "batch Images at element 17"},
		{"patch embed", func(m *Model, b *Batch) { poison(m, "vit.patch_embed.weight") }, "vit.patch_embed output"},
		{"vit attention", func(m *Model, b *Batch) { poison(m, "vit.blocks.1.attn.proj.weight") }, "vit.blocks.1 attention output"},
		{"vit mlp", func(m *Model, b *Batch) { poison(m, "vit.blocks.0.mlp.fc2.weight") }, "vit.blocks.0 mlp output"},
		{"vit norm", func(m *Model, b *Batch) { poison(m, "vit.norm.bias") }, "vit.norm output"},
		{"connector", func(m *Model, b *Batch) { poison(m, "connector.proj.bias") }, "connector (cabstractor) output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyMultimodal(ConnCAbstractor, 4, false)
			m := newTiny(t, cfg, 2, 24, 1)
			b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
			if _, err := m.Step(b, 1e-3); err != nil {
				t.Fatal(err)
			}
			tc.poison(m, b)
			_, err := m.Step(b, 1e-3)
			if err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming step 2 and %q", err, tc.want)
			}
		})
	}
}

// poison sets one element of the named parameter to +Inf.
func poison(m *Model, name string) {
	p, ok := m.Params.Lookup(name)
	if !ok {
		panic("no parameter " + name)
	}
	p.Data()[1] = float32(math.Inf(1))
}

func TestBatchErrors(t *testing.T) {
	cfg := tinyMultimodal(ConnAvgPool, 4, false)
	m := newTiny(t, cfg, 2, 24, 1)
	tests := []struct {
		name   string
		mutate func(b *Batch)
		want   string
	}{
		{"shape", func(b *Batch) { b.T = 12 }, "built for 2×24"},
		{"length", func(b *Batch) { b.Pos = b.Pos[:5] }, "batch Pos has 5 entries"},
		{"token", func(b *Batch) { b.Tokens[30] = 64 }, "Tokens[30] = 64 outside the vocabulary"},
		{"target", func(b *Batch) { b.Targets[7] = -1 }, "Targets[7] = -1"},
		{"position", func(b *Batch) { b.Pos[3] = 32 }, "Pos[3] = 32 outside [0, model.decoder.max_seq = 32)"},
		{"placeholders", func(b *Batch) { b.Tokens[3] = 1 }, "7 image placeholders, want 2 images × 4 tokens = 8"},
		{"split run", func(b *Batch) { b.Tokens[3], b.Tokens[5] = 1, b.ImageTokenID }, "not consecutive"},
		{"images", func(b *Batch) { b.Images = b.Images[:10] }, "batch Images has 10 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
			tt.mutate(b)
			_, err := m.Forward(b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestResumeEqualsUninterrupted: saving weights and AdamW state after 3
// steps and loading them into a model built from another seed continues
// bit for bit like the uninterrupted run.
func TestResumeEqualsUninterrupted(t *testing.T) {
	cfg := tinyMultimodal(ConnAttnPool, 4, false)
	b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
	a := newTiny(t, cfg, 2, 24, 1)
	for range 3 {
		if _, err := a.Step(b, 1e-3); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	wPath, oPath := filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "optimizer.safetensors")
	if err := a.SaveWeights(wPath, map[string]string{"run": "test"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveOptimizer(oPath); err != nil {
		t.Fatal(err)
	}
	r := newTiny(t, cfg, 2, 24, 99)
	meta, err := r.LoadWeights(wPath)
	if err != nil {
		t.Fatal(err)
	}
	if meta["run"] != "test" || !strings.Contains(meta["config"], `"type":"attnpool"`) {
		t.Errorf("metadata %v lost the caller's key or the config", meta)
	}
	if err := r.LoadOptimizer(oPath); err != nil {
		t.Fatal(err)
	}
	if r.Steps() != 3 {
		t.Fatalf("restored step %d, want 3", r.Steps())
	}
	for range 2 {
		sa, err := a.Step(b, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		sr, err := r.Step(b, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		if sa != sr {
			t.Fatalf("resumed step %+v, uninterrupted %+v", sr, sa)
		}
	}
	if !slices.Equal(a.Params.Data(), r.Params.Data()) {
		t.Error("resumed weights differ from the uninterrupted run's")
	}
}

func TestLoadWeightsErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	small := newTiny(t, Config{Decoder: tinyDecoder()}, 2, 24, 1)
	if err := small.SaveWeights(path, nil); err != nil {
		t.Fatal(err)
	}
	wider := tinyDecoder()
	wider.FFNHidden = 64
	if _, err := newTiny(t, Config{Decoder: wider}, 2, 24, 1).LoadWeights(path); err == nil || !strings.Contains(err.Error(), "llm.layers.0.mlp.w1.weight has shape [48 32], the model needs [64 32]") {
		t.Errorf("shape mismatch: %v", err)
	}
	if _, err := newTiny(t, tinyMultimodal(ConnMLP, 16, false), 2, 24, 1).LoadWeights(path); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing tensor: %v", err)
	}
	if err := small.LoadOptimizer(path); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("weights loaded as optimiser state: %v", err)
	}
}

// TestPosEmbedResize: weights of a 16-pixel model load into a 32-pixel one,
// vit.pos_embed interpolated onto the larger grid.
func TestPosEmbedResize(t *testing.T) {
	low := tinyMultimodal(ConnAvgPool, 4, false)
	high := tinyMultimodal(ConnAvgPool, 4, false)
	high.Vision.Resolution = 32
	path := filepath.Join(t.TempDir(), "w.safetensors")
	a := newTiny(t, low, 2, 24, 1)
	if err := a.SaveWeights(path, nil); err != nil {
		t.Fatal(err)
	}
	b := newTiny(t, high, 2, 24, 2)
	if _, err := b.LoadWeights(path); err != nil {
		t.Fatal(err)
	}
	src, _ := a.Params.Lookup("vit.pos_embed")
	dst, _ := b.Params.Lookup("vit.pos_embed")
	want := make([]float32, dst.Size)
	if err := vision.ResizePosEmbed(want, src.Data(), 4, 8, 16); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dst.Data(), want) {
		t.Error("pos_embed not interpolated onto the 8×8 grid")
	}
}

func TestCounts(t *testing.T) {
	cfg := DefaultConfig()
	m := newTiny(t, cfg, 8, 128, 1)
	d := cfg.Decoder
	hd := d.HeadDim()
	layer := 2*d.Width + d.Width*hd*(2*d.Heads+2*d.KVHeads) + 2*hd + 3*d.Width*d.FFNHidden
	conn, err := connector.NumParams(cfg.Connector.Type, cfg.connectorConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := d.Vocab*d.Width + d.Layers*layer + d.Width + cfg.visionConfig().NumParams() + conn
	total, trainable := m.NumParams()
	if total != want || trainable != total {
		t.Errorf("NumParams %d (%d trainable), want %d", total, trainable, want)
	}
	// Reference text-only decoder by hand: per layer 4·2·1024·256·256 (q, k,
	// v, o) + 2·2·8·4·128·128·64 (attention) + 3·2·1024·256·704; logits
	// 2·1024·256·512.
	text := newTiny(t, Config{Decoder: d}, 8, 128, 1)
	fwd, bwd := text.FLOPs(0)
	wantFwd := int64(4*(4*2*1024*256*256+2*2*8*4*128*128*64+3*2*1024*256*704) + 2*1024*256*512)
	if fwd != wantFwd || bwd != 2*wantFwd {
		t.Errorf("text FLOPs %d/%d, want %d/%d", fwd, bwd, wantFwd, 2*wantFwd)
	}
	frozen := DefaultConfig()
	frozen.Vision.Freeze = true
	fm := newTiny(t, frozen, 8, 128, 1)
	_, trainable = fm.NumParams()
	if trainable != want-cfg.visionConfig().NumParams() {
		t.Errorf("frozen ViT: %d trainable, want %d", trainable, want-cfg.visionConfig().NumParams())
	}
	f1, b1 := m.FLOPs(8)
	f2, b2 := fm.FLOPs(8)
	vf, _ := cfg.visionConfig().FLOPs(8)
	if f1 != f2 || b1-b2 != 2*vf {
		t.Errorf("frozen ViT FLOPs %d/%d vs %d/%d: backward should drop by 2·%d", f2, b2, f1, b1, vf)
	}
}

// TestCopyWeightsAndLogits: a B=1 model with copied weights gives the same
// logits for a sequence as row 0 of the training model's batch.
func TestCopyWeightsAndLogits(t *testing.T) {
	cfg := Config{Decoder: tinyDecoder()}
	big := newTiny(t, cfg, 2, 24, 1)
	one := newTiny(t, cfg, 1, 24, 2)
	if err := one.CopyWeights(big); err != nil {
		t.Fatal(err)
	}
	b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 0)
	if _, err := big.Forward(b); err != nil {
		t.Fatal(err)
	}
	row := &Batch{B: 1, T: 24, Tokens: b.Tokens[:24], Targets: b.Targets[:24], LossMask: b.LossMask[:24], Pos: b.Pos[:24], DocIDs: b.DocIDs[:24]}
	if _, err := one.Forward(row); err != nil {
		t.Fatal(err)
	}
	V := cfg.Decoder.Vocab
	if got, want := one.Logits(), big.Logits()[:24*V]; relErr(got, want) > 1e-6 {
		t.Errorf("B=1 logits differ from row 0 of the batch: relative error %.2e", relErr(got, want))
	}
	if err := one.CopyWeights(newTiny(t, tinyMultimodal(ConnMLP, 16, false), 1, 24, 1)); err == nil {
		t.Error("copied weights from a model of another config")
	}
}

// TestStepAllocatesNothing: once built (and after the first step's lazy
// buffers), a training step of the real model, text-only and with each
// connector, makes no heap allocation: activations, gradients and the
// batch bookkeeping live in buffers sized once per (model, batch shape).
func TestStepAllocatesNothing(t *testing.T) {
	if engine.BLASName() != "openblas" {
		t.Skip("gonum's pure-Go Sgemm starts goroutines of its own for large products")
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		images int
	}{
		{"text", Config{Decoder: tinyDecoder()}, 0},
		{"avgpool", tinyMultimodal(ConnAvgPool, 4, false), 2},
		{"attnpool", tinyMultimodal(ConnAttnPool, 4, false), 2},
		{"cabstractor", tinyMultimodal(ConnCAbstractor, 4, false), 2},
		{"mlp", tinyMultimodal(ConnMLP, 16, false), 2},
		{"cabstractor_frozen_vit", tinyMultimodal(ConnCAbstractor, 4, true), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.cfg, 2, 24, Options{Seed: 1, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			b := parityBatch(rand.New(rand.NewPCG(1, 2)), tc.cfg, 2, 24, tc.images)
			var stepErr error
			step := func() {
				if _, err := m.Step(b, 1e-3); err != nil {
					stepErr = err
				}
			}
			step()
			if c := allocs.PerRun(3, step); c.PerRun != 0 {
				t.Errorf("a training step made %v allocations, want 0; most at:%s", c.PerRun, c.Site)
			}
			if stepErr != nil {
				t.Fatal(stepErr)
			}
		})
	}
}
