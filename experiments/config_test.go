package experiments

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// base is a valid config; tests append or override keys.
const base = `name: t
seed: 3
tokenizer:
  path: tok.json
data:
  sources:
    caption: {paths: [shapes/captions], weight: 1}
  packing: {batch_size: 2, seq_len: 32}
model:
  decoder: {width: 32, layers: 1, heads: 2, kv_heads: 1, ffn_hidden: 64, max_seq: 32}
  vision: {resolution: 16, patch: 8, width: 32, depth: 1, heads: 2}
  connector: {type: avgpool, tokens: 4}
train:
  steps: 10
  warmup: 2
`

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		yaml      string
		overrides []string
		want      []string // substrings of the error
	}{
		{"unknown key with line", strings.Replace(base, "  warmup: 2", "  warmup: 2\n  lrr: 1", 1), nil,
			[]string{"t.yaml:16: train.lrr: unknown key (known: steps, lr, min_lr"}},
		{"unknown nested key", strings.Replace(base, "width: 32, layers", "widht: 32, layers", 1), nil,
			[]string{"t.yaml:10: model.decoder.widht: unknown key"}},
		{"unknown key in a map value", strings.Replace(base, "weight: 1}", "weight: 1, wieght: 2}", 1), nil,
			[]string{"t.yaml:7: data.sources.caption.wieght: unknown key"}},
		{"wrong type with line", strings.Replace(base, "  steps: 10", "  steps: 10\n  lr: fast", 1), nil,
			[]string{"t.yaml:15: train.lr: cannot unmarshal !!str `fast` into float64"}},
		{"wrong type in a list", strings.Replace(base, "paths: [shapes/captions]", "paths: [{a: 1}]", 1), nil,
			[]string{"t.yaml:7: data.sources.caption.paths[0]: want a string, got a mapping"}},
		{"section not a mapping", base + "shapes: 3\n", nil, []string{"t.yaml:16: shapes: want a mapping of keys"}},
		{"two errors reported", strings.Replace(strings.Replace(base, "seed: 3", "seed: -1", 1), "name: t", "nam: t", 1), nil,
			[]string{"t.yaml:1: nam: unknown key", "t.yaml:2: seed: cannot unmarshal !!int `-1` into uint64"}},
		{"bad override key", base, []string{"train.lrr=1"}, []string{"--set train.lrr: unknown key (known under train: steps, lr"}},
		{"bad top-level override key", base, []string{"trian.lr=1"}, []string{"--set trian: unknown key (known: name, out, seed"}},
		{"override through a scalar", base, []string{"train.lr.x=1"}, []string{"--set train.lr.x: train.lr is a float64, not a section"}},
		{"override of wrong type", base, []string{"train.steps=many"}, []string{"--set train.steps: cannot unmarshal !!str `many` into int"}},
		{"override without =", base, []string{"train.steps"}, []string{`--set "train.steps": want key.path=value`}},
		{"mismatched image_tokens", strings.Replace(base, "seq_len: 32}", "seq_len: 32, image_tokens: 8}", 1), nil,
			[]string{"data.packing.image_tokens: 8 differs from model.connector.tokens 4"}},
		{"mismatched resolution", strings.Replace(base, "seq_len: 32}", "seq_len: 32, resolution: 32}", 1), nil,
			[]string{"data.packing.resolution: 32 differs from model.vision.resolution 16"}},
		{"seq_len above max_seq", strings.Replace(base, "seq_len: 32}", "seq_len: 64}", 1), nil,
			[]string{"data.packing.seq_len: 64 is more than model.decoder.max_seq 32"}},
		{"text-only model with image tokens", base, []string{"model.vision=null", "model.connector=null", "data.packing.image_tokens=4"},
			[]string{"data.packing.image_tokens: 4, but the model is text-only"}},
		{"bad train values", base, []string{"train.min_lr=1", "train.keep_checkpoints=0", "train.threads.blas=0"},
			[]string{"train.min_lr: 1: want 0 ≤ min_lr ≤ train.lr", "train.keep_checkpoints: 0", "train.threads.blas: 0"}},
		{"bad lr_scale", strings.Replace(base, "  warmup: 2", "  warmup: 2\n  lr_scale: {connector.blocks: 0, vit.: 1, llm: .inf}", 1), nil,
			[]string{"train.lr_scale.connector.blocks: 0: want a positive finite multiplier", `train.lr_scale: key "vit.": want a tensor name or a dotted prefix`,
				"train.lr_scale.llm: +Inf: want a positive finite multiplier"}},
		{"lr_scale of wrong type", strings.Replace(base, "  warmup: 2", "  warmup: 2\n  lr_scale: {connector: slow}", 1), nil,
			[]string{"train.lr_scale.connector: cannot unmarshal !!str `slow` into float64"}},
		{"mixer errors keep their keys", base, []string{"data.sources.caption.weight=-1"}, []string{"data.sources.caption.weight: -1"}},
		{"model errors keep their keys", base, []string{"model.decoder.heads=3"}, []string{"model.decoder.heads: 3 does not divide"}},
		{"not a mapping", "- a\n- b\n", nil, []string{"t.yaml: the config must be a YAML mapping"}},
		{"syntax error", "a: [\n", nil, []string{"t.yaml: yaml: line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yaml", "/base", tc.overrides)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestParseDefaultsOverridesAndDerivation(t *testing.T) {
	c, err := Parse([]byte(base), "t.yaml", "/base", []string{"train.lr=1e-3", "data.sources.text.paths=[/abs/text]", "data.sources.text.weight=2", "out=runs/x"})
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"train.lr (override)", c.Train.LR, 1e-3},
		{"train.min_lr (default)", c.Train.MinLR, d.Train.MinLR},
		{"train.steps (file)", c.Train.Steps, 10},
		{"data.seed (from seed)", c.Data.Seed, uint64(3)},
		{"data.packing.image_tokens (from connector)", c.Data.Packing.ImageTokens, 4},
		{"data.packing.resolution (from vision)", c.Data.Packing.Resolution, 16},
		{"tokenizer.path (absolute)", c.Tokenizer.Path, "/base/tok.json"},
		{"caption paths (absolute)", c.Data.Sources["caption"].Paths, []string{"/base/shapes/captions"}},
		{"text paths (new source by --set)", c.Data.Sources["text"].Paths, []string{"/abs/text"}},
		{"model.vision.freeze (default kept)", c.Model.Vision.Freeze, false},
		{"model.decoder.vocab (derived later)", c.Model.Decoder.Vocab, 0},
		{"eval.text (default, no shapes.dir)", c.Eval.Text, "/base/datasets/shapes/eval/text"},
		{"out (relative to the current directory, as --out)", c.Out, "runs/x"},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if err := c.withVocab(300); err != nil || c.Model.Decoder.Vocab != 300 {
		t.Fatalf("withVocab(300): %v, vocab %d", err, c.Model.Decoder.Vocab)
	}
	if err := c.withVocab(301); err == nil || !strings.Contains(err.Error(), "model.decoder.vocab 300 differs") {
		t.Fatalf("withVocab(301) = %v, want a vocab mismatch naming model.decoder.vocab", err)
	}
}

// The resolved config reads back to the same Config, a text-only model
// staying text-only although the defaults have a ViT.
func TestResolvedRoundTrip(t *testing.T) {
	for _, overrides := range [][]string{nil, {"model.vision=null", "model.connector=null", "eval.caption=rel/caption", "eval.shots=[0, 4]"}} {
		c, err := Parse([]byte(base), "t.yaml", "/base", overrides)
		if err != nil {
			t.Fatal(err)
		}
		c.Model.Decoder.Vocab = 300
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), ResolvedConfigFile)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := loadResolved(path)
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		b2, err := got.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(b2) || (got.Model.Vision == nil) != (c.Model.Vision == nil) {
			t.Errorf("round trip differs:\n%s\n---\n%s", b, b2)
		}
		if overrides != nil && !strings.Contains(string(b), "caption: /base/rel/caption") {
			t.Errorf("eval.caption not made absolute:\n%s", b)
		}
	}
}

func TestRateAt(t *testing.T) {
	tc := TrainConfig{Steps: 110, LR: 1, MinLR: 0.1, Warmup: 10}
	for _, c := range []struct {
		step int
		want float64
	}{
		{0, 0.1}, {4, 0.5}, {9, 1}, {10, 1}, {60, 0.55}, {110, 0.1}, {200, 0.1},
	} {
		if got := tc.RateAt(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("RateAt(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	for s := tc.Warmup; s < tc.Steps; s++ {
		if tc.RateAt(s+1) > tc.RateAt(s) {
			t.Fatalf("RateAt rises after warm-up at step %d", s)
		}
	}
	if got := (TrainConfig{Steps: 5, LR: 2, Warmup: 0}).RateAt(0); got != 2 {
		t.Errorf("no warm-up: RateAt(0) = %v, want the peak 2", got)
	}
}

// TestEvalPathsFollowShapesDir: eval paths left at their defaults point
// into shapes.dir, the perplexity's at the held-out eval/text (never
// text/, which training reads; off without one); explicit paths are kept.
func TestEvalPathsFollowShapesDir(t *testing.T) {
	for _, tc := range []struct {
		name, shapes string
		overrides    []string
		text, vqa    string
		evalText     int
	}{
		{"defaults", "{dir: world}", []string{"eval.vqa=/elsewhere/vqa"}, "/base/world/eval/text", "/elsewhere/vqa", 200},
		{"no held-out text", "{dir: world, eval_text: 0}", nil, "", "/base/world/eval/vqa", 0},
		{"explicit text kept", "{dir: world, eval_text: 0}", []string{"eval.text=/mine/text"}, "/mine/text", "/base/world/eval/vqa", 0},
		{"explicit count", "{dir: world, eval_text: 50}", nil, "/base/world/eval/text", "/base/world/eval/vqa", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base+"shapes: "+tc.shapes+"\n"), "t.yaml", "/base", tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if c.Eval.Caption != "/base/world/eval/caption" || c.Eval.Text != tc.text || c.Eval.VQA != tc.vqa {
				t.Errorf("eval paths %q, %q, %q: want /base/world/eval/caption, %q, %q", c.Eval.Caption, c.Eval.Text, c.Eval.VQA, tc.text, tc.vqa)
			}
			if got := c.Shapes.shapesConfig().EvalText; got != tc.evalText {
				t.Errorf("shapes eval_text %d reaches the generator as %d", tc.evalText, got)
			}
		})
	}
	if _, err := Parse([]byte(base+"shapes: {dir: world, eval_text: -1}\n"), "t.yaml", "/base", nil); err == nil || !strings.Contains(err.Error(), "eval-text = -1") {
		t.Errorf("negative shapes.eval_text: got %v, want an error naming eval-text", err)
	}
}

func TestExampleConfigs(t *testing.T) {
	c, err := Load("examples/tiny.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.Shapes.Dir) || !strings.HasSuffix(c.Shapes.Dir, filepath.FromSlash("datasets/shapes-tiny")) {
		t.Errorf("shapes.dir %q: want the repository's datasets/shapes-tiny, absolute", c.Shapes.Dir)
	}
}
