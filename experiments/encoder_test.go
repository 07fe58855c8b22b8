package experiments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/images"
	"github.com/mmablate/mmablate/data/shards"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/safetensors"
	"github.com/mmablate/mmablate/models/vision"
)

func TestSceneLabels(t *testing.T) {
	obj := func(color, shape, size, pos string, r float32) string {
		return fmt.Sprintf(`{"shape":%q,"color":%q,"size":%q,"position":%q,"x":0.5,"y":0.5,"r":%v}`, shape, color, size, pos, r)
	}
	scene := func(bg string, objs ...string) string {
		return fmt.Sprintf(`{"split":"captions","scene":{"background":%q,"texture":"plain","objects":[%s]}}`, bg, strings.Join(objs, ","))
	}
	tests := []struct {
		name    string
		meta    string
		want    []int32 // background, color, shape, size, position
		wantErr string
	}{
		{"one object", scene("white", obj("red", "circle", "tiny", "top left", 0.022)), []int32{0, 0, 0, 0, 0}, ""},
		{"largest of two", scene("pale green", obj("blue", "square", "small", "top", 0.05), obj("black", "hexagon", "large", "bottom right", 0.12)),
			[]int32{4, 9, 7, 3, 8}, ""},
		{"equal sizes: first in reading order", scene("cream", obj("green", "star", "medium", "left", 0.08), obj("pink", "ring", "medium", "right", 0.08)),
			[]int32{1, 3, 3, 2, 3}, ""},
		{"no objects", scene("white"), nil, "no objects"},
		{"no scene", `{"split":"text","source":"book"}`, nil, `meta "scene": missing`},
		{"not JSON", `{"scene":`, nil, "meta:"},
		{"unknown colour", scene("white", obj("teal", "circle", "tiny", "top", 0.02)), nil, `color "teal" is not one of red,`},
		{"unknown background", scene("mauve", obj("red", "circle", "tiny", "top", 0.02)), nil, `background "mauve"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sceneLabels(tc.meta)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("labels %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadLabelledNamesRow checks that a bad row's error names the shard
// file and the row.
func TestReadLabelledNamesRow(t *testing.T) {
	dir := t.TempDir()
	w, err := shards.NewWriter(dir, shards.Options{})
	if err != nil {
		t.Fatal(err)
	}
	caption := "Caption: a red circle"
	good := `{"scene":{"background":"white","texture":"plain","objects":[{"shape":"circle","color":"red","size":"small","position":"top","x":0.5,"y":0.2,"r":0.05}]}}`
	for i, meta := range []string{good, good, `{"scene":{"background":"white","texture":"plain","objects":[]}}`} {
		rec := &data.Record{ID: fmt.Sprintf("r%d", i), Kind: data.KindCaption, Texts: []*string{nil, &caption},
			Images: []*data.ImageRef{{Bytes: images.SyntheticJPEG(8, 8, uint64(i), 90)}, nil}, Meta: meta}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = readLabelled(context.Background(), dir)
	if err == nil {
		t.Fatal("no error for a row whose scene has no objects")
	}
	for _, want := range []string{".parquet", "row 2", "column meta", `id "r2"`, "no objects"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestEncoderGradient compares every gradient of the heads-on-ViT loss
// with central differences in float64, so a broken head, pooling or ViT
// backward fails here.
func TestEncoderGradient(t *testing.T) {
	vc := vision.Config{Resolution: 8, Patch: 4, Width: 8, Depth: 1, Heads: 2}
	const B = 3
	n, err := newEncoderNet[float64](vc, B, 7, nil, engine.AdamWConfig{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n.pix {
		n.pix[i] = rng.NormFloat64()
	}
	// Larger weights than the init's 0.02 so every path carries signal.
	for i := range n.ps.Data() {
		n.ps.Data()[i] += 0.3 * rng.NormFloat64()
	}
	labels := make([][]int32, B)
	for b := range labels {
		for _, at := range encoderAttributes {
			labels[b] = append(labels[b], int32(rng.IntN(len(at.classes))))
		}
	}
	if _, err := n.lossGrad(B, labels); err != nil {
		t.Fatal(err)
	}
	grad := slices.Clone(n.ps.Grad())
	data := n.ps.Data()
	const eps = 1e-5
	for _, p := range n.ps.All() {
		worst := 0.0
		for k := range min(p.Size, 6) {
			i := p.Offset + (k*p.Size)/min(p.Size, 6)
			keep := data[i]
			data[i] = keep + eps
			up, _ := n.lossGrad(B, labels)
			data[i] = keep - eps
			down, _ := n.lossGrad(B, labels)
			data[i] = keep
			num := (up - down) / (2 * eps)
			worst = max(worst, math.Abs(num-grad[i])/max(1e-4, math.Abs(num)))
		}
		if worst > 1e-4 {
			t.Errorf("%s: gradient off by a relative %.2g from central differences", p.Name, worst)
		}
	}
}

// encoderTestConfig is the encoder tests' run config, shared with
// cmd/mmablate's: its relative paths put the world beside the copy a test
// writes.
const encoderTestConfig = "testdata/encoder.yaml"

var encoderWorld struct {
	once sync.Once
	path string // the copy of encoderTestConfig
}

// encoderConfig loads encoderTestConfig from a copy in testRoot, so that
// the encoder tests share one world.
func encoderConfig(t *testing.T) Config {
	t.Helper()
	encoderWorld.once.Do(func() {
		src, err := os.ReadFile(encoderTestConfig)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(testRoot, "encoder")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "encoder.yaml")
		if err := os.WriteFile(p, src, 0o644); err != nil {
			t.Fatal(err)
		}
		encoderWorld.path = p
	})
	cfg, err := Load(encoderWorld.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPretrainEncoder trains on the tiny world and checks that the heads
// read colour, background and size far above chance on held-out images
// (checked by breaking it once: without the ViT's gradient colour and size
// stay at chance; without the heads' weight gradients background reaches
// only 0.67, as the ViT learns to suit random heads; TestEncoderGradient
// catches either exactly), that the
// file holds exactly the vit.* tensors with the metadata promised, and
// that LoadEncoder puts them into a model of the same vision config.
func TestPretrainEncoder(t *testing.T) {
	cfg := encoderConfig(t)
	out := filepath.Join(t.TempDir(), "vit.safetensors")
	res, err := PretrainEncoder(context.Background(), cfg, out, EncoderOptions{Steps: 300, Batch: 16, Seed: 0, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	margin := map[string]float64{"background": 0.75, "color": 0.3, "size": 0.2}
	for _, a := range res.Attributes {
		t.Logf("%-10s accuracy %.2f chance %.2f", a.Name, a.Accuracy, a.Chance)
		if m, ok := margin[a.Name]; ok && a.Accuracy < a.Chance+m {
			t.Errorf("%s: held-out accuracy %.2f, want at least chance %.2f + %.2f", a.Name, a.Accuracy, a.Chance, m)
		}
	}
	if res.Eval != 100 || res.Train != 400 {
		t.Errorf("trained on %d rows, held out %d; want 400 and 100", res.Train, res.Eval)
	}

	f, err := safetensors.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for name := range f.Tensors {
		if !strings.HasPrefix(name, "vit.") {
			t.Errorf("tensor %s in the file: only vit.* belongs there", name)
		}
	}
	var vc models.VisionConfig
	if err := json.Unmarshal([]byte(f.Metadata[EncoderVisionKey]), &vc); err != nil || vc != *cfg.Model.Vision {
		t.Errorf("metadata vision %q (%v), want %+v", f.Metadata[EncoderVisionKey], err, *cfg.Model.Vision)
	}
	var stored EncoderResult
	if err := json.Unmarshal([]byte(f.Metadata[EncoderResultKey]), &stored); err != nil || len(stored.Attributes) != len(encoderAttributes) {
		t.Errorf("metadata encoder %q (%v)", f.Metadata[EncoderResultKey], err)
	}
	if f.Metadata["steps"] != "300" || f.Metadata["seed"] != "0" || f.Metadata["world"] != res.World {
		t.Errorf("metadata steps %q seed %q world %q", f.Metadata["steps"], f.Metadata["seed"], f.Metadata["world"])
	}

	cfg.Model.Decoder.Vocab = 300 // the tokenizer's, which a run derives
	m, err := models.New(cfg.Model, 1, 48, models.Options{Seed: 9, MaxImages: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.LoadEncoder(out); err != nil {
		t.Fatal(err)
	}
	vit := 0
	for _, p := range m.Params.All() {
		if !strings.HasPrefix(p.Name, "vit.") {
			continue
		}
		vit++
		if st, ok := f.Tensors[p.Name]; !ok || !slices.Equal(st.Data, p.Data()) {
			t.Errorf("%s: the loaded model's tensor differs from the file's", p.Name)
		}
	}
	if vit != len(f.Tensors) {
		t.Errorf("model has %d vit.* tensors, the file %d", vit, len(f.Tensors))
	}
}

// TestPretrainEncoderDeterministic: same config and options, same bytes;
// another seed, other bytes.
func TestPretrainEncoderDeterministic(t *testing.T) {
	cfg := encoderConfig(t)
	dir := t.TempDir()
	run := func(name string, seed uint64) []byte {
		p := filepath.Join(dir, name)
		if _, err := PretrainEncoder(context.Background(), cfg, p, EncoderOptions{Steps: 6, Batch: 4, Seed: seed, Log: quietLog()}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := run("a", 1), run("b", 1), run("c", 2)
	if !bytes.Equal(a, b) {
		t.Error("two runs with the same seed wrote different files")
	}
	if bytes.Equal(a, c) {
		t.Error("seeds 1 and 2 wrote the same file")
	}
}

func TestPretrainEncoderErrors(t *testing.T) {
	cfg := encoderConfig(t)
	out := filepath.Join(t.TempDir(), "vit.safetensors")
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"no vision", func(c *Config) { c.Model.Vision = nil }, "model.vision"},
		{"missing captions", func(c *Config) {
			c.Shapes.Dir = ""
			src := c.Data.Sources["caption"]
			src.Paths = []string{"/nonexistent/captions"}
			c.Data.Sources["caption"] = src
		}, "/nonexistent/captions does not exist"},
		{"missing held-out", func(c *Config) { c.Eval.Caption = "/nonexistent/eval/caption" }, "/nonexistent/eval/caption/query does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Data.Sources = maps.Clone(cfg.Data.Sources)
			if cfg.Model.Vision != nil {
				v := *cfg.Model.Vision
				c.Model.Vision = &v
			}
			tc.edit(&c)
			_, err := PretrainEncoder(context.Background(), c, out, EncoderOptions{Steps: 1, Batch: 1, Log: quietLog()})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an encoder file was written by a failed run")
			}
		})
	}
}

// TestEncoderFileChecked: a run (prepareEncoder, and Resume from step 0)
// refuses an existing model.vision.init pretrained for another ViT shape
// or on another world, naming the file and the metadata key; another
// resolution, a run's weights file and an encoder written before the
// world was recorded load (the last with a warning).
func TestEncoderFileChecked(t *testing.T) {
	cfg := encoderConfig(t)
	dir := t.TempDir()
	enc := filepath.Join(dir, "vit.safetensors")
	if _, err := PretrainEncoder(context.Background(), cfg, enc, EncoderOptions{Steps: 2, Batch: 2, Seed: 1, Log: quietLog()}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := fileSHA256(filepath.Join(cfg.Data.Sources["caption"].Paths[0], "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata[EncoderWorldKey]; got != manifest {
		t.Fatalf("metadata %s %q, want the caption rows' manifest sha256 %s", EncoderWorldKey, got, manifest)
	}
	rewrite := func(name string, drop ...string) string {
		meta := maps.Clone(f.Metadata)
		for _, k := range drop {
			delete(meta, k)
		}
		p := filepath.Join(dir, name)
		if err := safetensors.WriteFile(p, f.Tensors, meta); err != nil {
			t.Fatal(err)
		}
		return p
	}
	older := rewrite("older.safetensors", EncoderWorldKey)
	weights := rewrite("weights.safetensors", EncoderWorldKey, EncoderVisionKey, EncoderResultKey, "world")
	// Another world: caption rows whose manifest differs.
	otherWorld := filepath.Join(dir, "other-captions")
	if err := os.MkdirAll(otherWorld, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(otherWorld, "manifest.json"), []byte(`{"rows": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	noManifest := filepath.Join(dir, "plain-captions")
	if err := os.MkdirAll(noManifest, 0o755); err != nil {
		t.Fatal(err)
	}
	captions := func(path string) func(c *Config) {
		return func(c *Config) {
			src := c.Data.Sources["caption"]
			src.Paths = []string{path}
			c.Data.Sources["caption"] = src
		}
	}
	tests := []struct {
		name     string
		file     string
		edit     func(c *Config)
		wantErr  []string
		wantWarn string
	}{
		{"same world and shape", enc, func(*Config) {}, nil, ""},
		{"other resolution", enc, func(c *Config) { c.Model.Vision.Resolution = 64 }, nil, ""},
		{"other heads", enc, func(c *Config) { c.Model.Vision.Heads = 4 }, []string{enc, `"vision"`, "heads 2", "model.vision.heads 4"}, ""},
		{"other width", enc, func(c *Config) { c.Model.Vision.Width = 16 }, []string{enc, "width 32", "model.vision.width 16"}, ""},
		{"other depth", enc, func(c *Config) { c.Model.Vision.Depth = 2 }, []string{enc, "depth 1", "model.vision.depth 2"}, ""},
		{"other patch", enc, func(c *Config) { c.Model.Vision.Patch = 8 }, []string{enc, "patch 4", "model.vision.patch 8"}, ""},
		// With an encoder: section the file must be that section's
		// encoder: another world's is stale. Without one it is the
		// user's choice, used with a warning.
		{"other world", enc, func(c *Config) {
			captions(otherWorld)(c)
			c.Encoder = &EncoderPretrain{Steps: 2, Batch: 2, LR: 1e-2, Seed: 1}
		}, []string{enc, `"` + EncoderWorldKey + `"`, manifest, otherWorld, "another world"}, ""},
		{"other world, no encoder: section", enc, captions(otherWorld), nil, "another world"},
		{"rows without manifest", enc, captions(noManifest), nil, "no manifest"},
		{"older encoder file", older, captions(otherWorld), nil, "records no world"},
		{"a run's weights file", weights, func(c *Config) { c.Model.Vision.Heads = 4 }, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Data.Sources = maps.Clone(cfg.Data.Sources)
			v := *cfg.Model.Vision
			c.Model.Vision = &v
			tc.edit(&c)
			c.Model.Vision.Init = tc.file
			var logs bytes.Buffer
			err := prepareEncoder(context.Background(), c, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want one containing %q", err, want)
				}
			}
			if tc.wantWarn != "" && (!strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tc.wantWarn)) {
				t.Errorf("log %q, want a warning containing %q", logs.String(), tc.wantWarn)
			}
			if tc.wantWarn == "" && strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("unexpected warning: %s", logs.String())
			}
		})
	}

	// Resume from step 0 (no checkpoint yet) loads model.vision.init too.
	run := filepath.Join(dir, "run")
	c := cfg
	v := *cfg.Model.Vision
	v.Init, v.Heads = enc, 4
	c.Model.Vision = &v
	tok, err := prepareTokenizer(context.Background(), c, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	c.Model.Decoder.Vocab = 300
	resolved, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{TokenizerFile: tok, ResolvedConfigFile: resolved} {
		if err := os.WriteFile(filepath.Join(run, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err = Resume(context.Background(), run, Options{Log: quietLog()})
	if err == nil || !strings.Contains(err.Error(), "resume: model.vision.init "+enc) || !strings.Contains(err.Error(), "model.vision.heads 4") {
		t.Fatalf("resume with an encoder of other heads: error %v", err)
	}
}
