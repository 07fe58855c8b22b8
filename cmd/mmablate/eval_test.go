package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/shapes"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/experiments/eval"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
)

// evalRunDir writes a run directory as mmablate train leaves it: a shapes
// world's eval splits, a tokenizer, an untrained tiny model's weights and
// a resolved config that points at them.
func evalRunDir(t *testing.T) (dir string, m *models.Model, tok *tokenizer.Tokenizer, cfg eval.Config) {
	t.Helper()
	root := t.TempDir()
	world := filepath.Join(root, "shapes")
	sc := shapes.DefaultConfig()
	sc.Size, sc.Scenes, sc.Docs, sc.Texts, sc.EvalCaption, sc.EvalVQA, sc.Support = 32, 0, 0, 6, 3, 3, 4
	if _, err := shapes.Generate(context.Background(), world, sc, shapes.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	tr, err := tokenizer.NewTrainer(tokenizer.TrainOptions{VocabSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	tr.AddText("Caption: a small red circle at the top left. Question: What color is the star? Answer: red")
	if tok, err = tr.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	mc := models.Config{
		Decoder:   models.DecoderConfig{Vocab: tok.VocabSize(), Width: 32, Layers: 1, Heads: 2, KVHeads: 1, FFNHidden: 64, RopeBase: 10000, QKNorm: true, MaxSeq: 80},
		Vision:    &models.VisionConfig{Resolution: 16, Patch: 4, Width: 16, Depth: 1, Heads: 2},
		Connector: &models.ConnectorConfig{Type: models.ConnAvgPool, Tokens: 4, Depth: 1},
	}
	m, err = models.New(mc, 2, 48, models.Options{Seed: 4, MaxImages: 2 * 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if err := m.SaveWeights(filepath.Join(dir, "final.safetensors"), nil); err != nil {
		t.Fatal(err)
	}
	cfg = eval.Config{Caption: filepath.Join(world, "eval", "caption"), VQA: filepath.Join(world, "eval", "vqa"),
		Text: filepath.Join(world, "text"), Shots: []int{0, 2}, Trials: 2, MaxQueries: 2, Batch: 2,
		MaxNewTokens: eval.MaxNewTokens{Caption: 6, VQA: 3}, PerplexitySamples: 3}
	rc := experiments.Default()
	rc.Name, rc.Seed = "t", 11
	rc.Tokenizer.Path = filepath.Join(dir, "tokenizer.json")
	rc.Data.Sources = map[string]mixer.Source{"text": {Paths: []string{filepath.Join(world, "text")}, Weight: 1}}
	rc.Data.Packing = mixer.Packing{BatchSize: 2, SeqLen: 48, MaxImages: 16, ImageTokens: 4, Resolution: 16}
	rc.Model, rc.Eval = mc, cfg
	rc.Train.Threads = experiments.Threads{BLAS: 1, Workers: 1}
	resolved, err := rc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.resolved.yaml"), resolved, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, m, tok, cfg
}

func runEvalCmd(args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"eval"}, args...))
	err := root.Execute()
	return out.String(), err
}

// TestEvalCmd: the command's eval.json is what eval.Run gives for the
// same weights, config and seed, with the flags overriding the config.
func TestEvalCmd(t *testing.T) {
	dir, m, tok, cfg := evalRunDir(t)
	out, err := runEvalCmd(dir, "--shots", "0,1", "--trials", "1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := eval.ReadJSON(filepath.Join(dir, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Shots, cfg.Trials = []int{0, 1}, 1
	want, err := eval.Run(context.Background(), m, tok, cfg, images.DefaultOptions(16), 11)
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Errorf("eval.json\n%s\nwant\n%s", gb, wb)
	}
	for _, line := range []string{"caption 0-shot  cider", "caption 1-shot  cider", "vqa     1-shot  accuracy", "text    perplexity"} {
		if !strings.Contains(out, line) {
			t.Errorf("summary lacks %q:\n%s", line, out)
		}
	}

	alt := filepath.Join(t.TempDir(), "quick.json")
	if _, err := runEvalCmd(dir, "--max-queries", "1", "--out", alt); err != nil {
		t.Fatal(err)
	}
	quick, err := eval.ReadJSON(alt)
	if err != nil {
		t.Fatal(err)
	}
	if quick.Config.MaxQueries != 1 || quick.Tasks[0].Queries != 1 || len(quick.Tasks[0].Shots) != 2 || quick.Config.Trials != 2 {
		t.Errorf("--max-queries 1 with the config's shots and trials: got %+v", quick.Config)
	}
}

func TestEvalCmdErrors(t *testing.T) {
	dir, _, _, _ := evalRunDir(t)
	var ue *usageError
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{}, true, "takes 1 argument"},
		{[]string{dir, "--shots", "0,-1"}, true, "eval.shots[1]: -1 is outside"},
		{[]string{dir, "--trials", "0"}, true, "eval.trials"},
		{[]string{dir, "--shots", "x"}, true, "invalid argument"},
		{[]string{dir, "--weights", filepath.Join(dir, "nope.safetensors")}, false, "nope.safetensors"},
		{[]string{filepath.Join(dir, "missing")}, false, "config.resolved.yaml"},
	} {
		_, err := runEvalCmd(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
			t.Errorf("eval %v: err %v (usage %v), want %q (usage %v)", tc.args, err, errors.As(err, &ue), tc.want, tc.usage)
		}
	}
	// A config with an unknown key or a value of the wrong type names the
	// file, the line and the key path.
	path := filepath.Join(dir, "config.resolved.yaml")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"    qk_norm: true\n", "    qk_norm: true\n    qk_nrom: 1\n", "model.decoder.qk_nrom: unknown key"},
		{"  trials: 2\n", "  trials: many\n", "eval.trials: cannot unmarshal !!str `many` into int"},
	} {
		bad := strings.Replace(string(good), tc.old, tc.new, 1)
		if bad == string(good) {
			t.Fatalf("%q is not in the resolved config:\n%s", tc.old, good)
		}
		line := strings.Count(bad[:strings.Index(bad, tc.new)+len(tc.new)-1], "\n") + 1 // the line of the last changed one
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s:%d: %s", path, line, tc.want)
		if _, err := runEvalCmd(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want %q", err, want)
		}
	}
}
