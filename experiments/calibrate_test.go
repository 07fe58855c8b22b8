package experiments

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/models"
)

// calibrateConfig is a small multimodal run config whose datasets need not
// exist: Calibrate reads only the tokenizer, when there is one.
func calibrateConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg, err := Parse([]byte(fmt.Sprintf(`
shapes: {dir: %[1]s/world, size: 16, scenes: 80, docs: 12, texts: 40, eval_caption: 20, eval_vqa: 30, support: 10}
tokenizer: {path: %[1]s/tokenizer.json, vocab: 300}
data:
  sources: {caption: {paths: [%[1]s/world/captions], weight: 1}}
  packing: {batch_size: 2, seq_len: 48, max_images: 3}
model:
  decoder: {width: 32, layers: 1, heads: 2, kv_heads: 1, ffn_hidden: 64, max_seq: 48}
  vision: {resolution: 16, patch: 8, width: 16, depth: 1, heads: 2}
  connector: {type: avgpool, tokens: 4}
train: {steps: 50, warmup: 5, threads: {blas: 1, workers: 1}}
eval: {shots: [0, 2], trials: 2, max_queries: 5, batch: 4, perplexity_samples: 3}
`, dir)), "calibrate.yaml", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCalibrateSizes(t *testing.T) {
	dir := t.TempDir()
	cfg := calibrateConfig(t, dir)
	cost, err := Calibrate(context.Background(), cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The same numbers as the model the trainer builds, with the
	// tokenizer's configured size (no tokenizer yet) and 3 images a sequence.
	mc := cfg.Model
	mc.Decoder.Vocab = 300
	m, err := models.New(mc, 2, 48, models.Options{MaxImages: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	total, trainable := m.NumParams()
	fwd, bwd := m.FLOPs(6)
	want := Cost{Params: total, Trainable: trainable, Vocab: 300, ImageTokens: 4, ImagesPerStep: 6, FLOPsPerStep: fwd + bwd}
	if cost != want {
		t.Errorf("cost %+v, want %+v", cost, want)
	}

	// A tokenizer on disk sets the vocabulary.
	tr, err := tokenizer.NewTrainer(tokenizer.TrainOptions{VocabSize: 280, MinFrequency: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr.AddText("a red circle and a blue square above a green triangle")
	tok, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	cost, err = Calibrate(context.Background(), cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cost.Vocab != tok.VocabSize() || cost.Params >= total {
		t.Errorf("with a %d-token tokenizer: vocab %d, params %d (was %d at 300)", tok.VocabSize(), cost.Vocab, cost.Params, total)
	}
}

func TestCalibrateTimes(t *testing.T) {
	cfg := calibrateConfig(t, t.TempDir())
	cost, err := Calibrate(context.Background(), cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !(cost.StepSeconds > 0) || !(cost.EvalSeconds > 0) || cost.Batches != BatchesSynthetic {
		t.Fatalf("step %vs, eval %vs, on %q batches", cost.StepSeconds, cost.EvalSeconds, cost.Batches)
	}
	if got, want := cost.Seconds(50), 50*cost.StepSeconds+cost.EvalSeconds; got != want {
		t.Errorf("Seconds(50) = %v, want %v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Calibrate(ctx, cfg, 2); err == nil {
		t.Error("Calibrate ignored a cancelled context")
	}
	bad := cfg
	bad.Train.Steps = 0
	if _, err := Calibrate(context.Background(), bad, 2); err == nil {
		t.Error("Calibrate accepted an invalid config")
	}
}

// A text-only model has no image slots; its eval estimate is the
// perplexity's.
func TestCalibrateTextOnly(t *testing.T) {
	cfg := calibrateConfig(t, t.TempDir())
	cfg.Model.Vision, cfg.Model.Connector = nil, nil
	cfg.Data.Packing.ImageTokens, cfg.Data.Packing.Resolution = 0, 0
	cost, err := Calibrate(context.Background(), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if cost.ImageTokens != 0 || cost.ImagesPerStep != 0 || !(cost.StepSeconds > 0) || !(cost.EvalSeconds > 0) || cost.Params != cost.Trainable {
		t.Errorf("cost %+v", cost)
	}
}

// With the shapes world and its tokenizer made, the timed steps read the
// config's own mixture.
func TestCalibrateOnData(t *testing.T) {
	cfg := calibrateConfig(t, t.TempDir())
	ctx := context.Background()
	if err := prepareShapes(ctx, cfg, quietLog()); err != nil {
		t.Fatal(err)
	}
	tb, err := prepareTokenizer(ctx, cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tb)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := Calibrate(ctx, cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cost.Batches != BatchesData || !(cost.StepSeconds > 0) || !(cost.EvalSeconds > 0) || cost.Vocab != tok.VocabSize() {
		t.Errorf("cost %+v: want data batches and the trained tokenizer's %d tokens", cost, tok.VocabSize())
	}
}
