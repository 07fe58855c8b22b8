package experiments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/data/tokenizer"
	"github.com/mmablate/mmablate/mixer"
)

// TestValidateDevice: device and precision are checked together, naming
// the key; other sections' errors do not matter here.
func TestValidateDevice(t *testing.T) {
	for _, tc := range []struct {
		device, precision string
		vision            bool
		bad               string // key the error must name; "" = neither key
		pruning           string // model.decoder.ffn_pruning
	}{
		{"cpu", "", true, "", ""},
		{"cpu", "fp32", true, "", ""},
		{"cpu", "bf16", true, "precision", ""},
		{"cuda", "", false, "", ""},
		{"cuda", "bf16", false, "", ""},
		{"cuda", "tf32", false, "", ""},
		{"cuda", "fp16", false, "precision", ""},
		{"cuda", "", true, "", ""},
		{"cuda", "", false, "device", "static"},
		{"cpu", "", true, "", "instruction"},
		{"tpu", "", false, "device", ""},
	} {
		c := Default()
		c.Device, c.Precision = tc.device, tc.precision
		c.Model.Decoder.FFNPruning = tc.pruning
		if !tc.vision {
			c.Model.Vision, c.Model.Connector = nil, nil
		}
		err := c.Validate()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, key := range []string{"device", "precision"} {
			has := strings.Contains(msg, key+":")
			if has != (key == tc.bad) {
				t.Errorf("device %q precision %q vision %v: error %q; want key %q named", tc.device, tc.precision, tc.vision, msg, tc.bad)
			}
		}
	}
}

// TestOnDevice: the device override of a resumed run replaces device and
// precision, drops a precision that belonged to the old device, and is
// validated like the config.
func TestOnDevice(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		device, precision       string // the config's
		optDevice, optPrecision string
		wantDevice, wantPrec    string
		vision                  bool
		bad                     string // key the error names; "" = none
	}{
		{"no override", "cuda", "bf16", "", "", "cuda", "bf16", false, ""},
		{"gpu run to cpu", "cuda", "bf16", "cpu", "", "cpu", "", false, ""},
		{"cpu run to gpu", "cpu", "", "cuda", "", "cuda", "", false, ""},
		{"cpu run to gpu bf16", "cpu", "", "cuda", "bf16", "cuda", "bf16", false, ""},
		{"same device keeps precision", "cuda", "tf32", "cuda", "", "cuda", "tf32", false, ""},
		{"precision only", "cuda", "fp32", "", "bf16", "cuda", "bf16", false, ""},
		{"vision model to gpu", "cpu", "", "cuda", "", "cuda", "", true, ""},
		{"bf16 on the cpu", "cuda", "", "cpu", "bf16", "", "", false, "precision"},
		{"unknown device", "cpu", "", "tpu", "", "", "", false, "device"},
	} {
		c := Default()
		c.Device, c.Precision = tc.device, tc.precision
		if !tc.vision {
			c.Model.Vision, c.Model.Connector = nil, nil
		}
		// Default's other sections do not validate: only the device and
		// precision keys matter here, as in TestValidateDevice.
		got, err := Options{Device: tc.optDevice, Precision: tc.optPrecision}.onDevice(c)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, key := range []string{"device", "precision"} {
			if has := strings.Contains(msg, key+":"); has != (key == tc.bad) {
				t.Errorf("%s: error %q; want key %q named", tc.name, msg, tc.bad)
			}
		}
		if tc.bad == "" && (got.Device != tc.wantDevice || got.Precision != tc.wantPrec) {
			t.Errorf("%s: device %q precision %q; want %q %q", tc.name, got.Device, got.Precision, tc.wantDevice, tc.wantPrec)
		}
	}
}

// textYAML is a text-only run on the tests' shapes world (the same world
// parameters as runYAML; its own tokenizer, trained on text only): small
// enough for a second on the CPU, and a model the GPU backend trains.
func textYAML(world string) string {
	return fmt.Sprintf(`name: text
seed: 3
shapes: {dir: %[1]s, size: 16, scenes: 80, docs: 12, texts: 40, eval_caption: 0, eval_vqa: 0, support: 0}
tokenizer: {path: %[1]s/tokenizer-text.json, vocab: 300}
data:
  sources:
    text: {paths: [%[1]s/text], weight: 1}
  packing: {batch_size: 4, seq_len: 64}
model:
  decoder: {width: 64, layers: 2, heads: 4, kv_heads: 2, ffn_hidden: 128, max_seq: 64, qk_norm: true}
  vision: null
  connector: null
train:
  steps: 40
  lr: 3.0e-3
  warmup: 5
  clip: 1.0
  checkpoint_every: 10
  keep_checkpoints: 10
  log_every: 1
  threads: {blas: 1, workers: 1}
eval: {caption: "", vqa: "", text: %[1]s/text, perplexity_samples: 4}
`, world)
}

// trainText trains textYAML on device into a fresh directory.
func trainText(t *testing.T, device string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "text.yaml")
	if err := os.WriteFile(p, []byte(textYAML(worldDir())), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run-"+device)
	cfg, err := Load(p, []string{"device=" + device})
	if err != nil {
		t.Fatal(err)
	}
	if err := Train(context.Background(), cfg, dir, Options{Log: quietLog()}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unfinishAt makes a finished run look interrupted after checkpoint step:
// the later checkpoints and the outputs of the end go.
func unfinishAt(t *testing.T, dir string, step int) {
	t.Helper()
	unfinish(t, dir)
	steps, err := committedSteps(filepath.Join(dir, checkpointsDir))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range steps {
		found = found || s == step
		if s > step {
			if err := os.Remove(filepath.Join(dir, checkpointsDir, stateFile(s))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !found {
		t.Fatalf("%s has no checkpoint %d (has %v)", dir, step, steps)
	}
}

// curvePoint is what the device tests read back from metrics.jsonl.
type curvePoint struct {
	Step       int      `json:"step"`
	Loss       float64  `json:"loss"`
	Device     string   `json:"device"`
	Precision  string   `json:"precision"`
	DataWaitMS *float64 `json:"data_wait_ms"`
	GPUIdleMS  *float64 `json:"gpu_idle_ms"`
}

func readCurve(t *testing.T, dir string) []curvePoint {
	t.Helper()
	var out []curvePoint
	for line := range bytes.Lines(readFile(t, filepath.Join(dir, MetricsFile))) {
		var p curvePoint
		if err := json.Unmarshal(line, &p); err != nil {
			t.Fatalf("%s: %v", MetricsFile, err)
		}
		out = append(out, p)
	}
	return out
}

// TestResumeOnAnotherDevice: the device override on the way into Resume.
// Where there is no GPU, a multimodal run asked to continue on one fails
// naming the library and leaves the run as it was; a text run likewise,
// and then it resumes on the CPU to the same bytes as the uninterrupted
// run, every metrics line saying cpu. With a GPU,
// TestGPUResumeAcrossDevices runs the real moves.
func TestResumeOnAnotherDevice(t *testing.T) {
	gpu := gpuPresent() == nil
	if !gpu {
		mm := finishedRun(t)
		unfinish(t, mm)
		before := readFile(t, filepath.Join(mm, MetricsFile))
		err := Resume(context.Background(), mm, Options{Log: quietLog(), Device: "cuda"})
		if err == nil || !strings.Contains(err.Error(), "device cuda: cuda:") {
			t.Fatalf("resume of a multimodal run on cuda without a GPU: %v; want the CUDA backend's error", err)
		}
		sameBytes(t, "metrics.jsonl after the failed move", readFile(t, filepath.Join(mm, MetricsFile)), before)
	}
	ref := trainText(t, "cpu")
	want := readFile(t, filepath.Join(ref, FinalWeightsFile))
	dir := trainText(t, "cpu")
	unfinishAt(t, dir, 20)
	if gpu {
		t.Log("a GPU is present: the no-GPU error paths are not exercised here")
	} else {
		err := Resume(context.Background(), dir, Options{Log: quietLog(), Device: "cuda"})
		if err == nil || !strings.Contains(err.Error(), "device cuda: cuda:") {
			t.Fatalf("resume on cuda without a GPU: %v; want the CUDA backend's error", err)
		}
	}
	if err := Resume(context.Background(), dir, Options{Log: quietLog(), Device: "cpu"}); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "final.safetensors resumed with --device cpu", readFile(t, filepath.Join(dir, FinalWeightsFile)), want)
	curve := readCurve(t, dir)
	if len(curve) != 40 {
		t.Fatalf("%d metrics lines, want 40", len(curve))
	}
	for _, p := range curve {
		if p.Device != "cpu" || p.Precision != "" || p.DataWaitMS == nil || *p.DataWaitMS < 0 || p.GPUIdleMS != nil {
			t.Fatalf("metrics line %+v: want device cpu, no precision, a data wait and no GPU idle time", p)
		}
	}
}

// TestFeederMatchesMixer: batches drawn ahead through the feeder are the
// mixer's batches in the same order, and the feeder's State after each is
// the mixer's State after the same number of batches, not after the one
// drawn ahead (images included: runYAML is multimodal).
func TestFeederMatchesMixer(t *testing.T) {
	referenceFinal(t) // the world and its tokenizer
	cfg, err := Load(configFile(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	tokBytes, err := prepareTokenizer(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tokBytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.withVocab(tok.VocabSize()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	open := func() *mixer.Mixer {
		m, err := openMixer(ctx, cfg, tok, cfg.Train.ShuffleBuffer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	direct, fed := open(), open()
	const n = 12
	feed := newFeeder(ctx, fed, n)
	defer feed.close()
	images := 0
	for i := range n {
		want, err := direct.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := feed.next()
		if err != nil {
			t.Fatal(err)
		}
		images += got.NumImages
		if !reflect.DeepEqual(normBatch(*got), normBatch(*want)) {
			t.Fatalf("batch %d differs from the mixer's", i)
		}
		ws, err := direct.State()
		if err != nil {
			t.Fatal(err)
		}
		wj, _ := json.Marshal(ws)
		gj, _ := json.Marshal(feed.state())
		if !bytes.Equal(wj, gj) {
			t.Fatalf("state after batch %d:\n got %s\nwant %s", i, gj, wj)
		}
		if !reflect.DeepEqual(feed.stats(), direct.Stats()) {
			t.Fatalf("stats after batch %d: got %+v, want %+v", i, feed.stats(), direct.Stats())
		}
	}
	if images == 0 {
		t.Fatal("no batch held an image: the image copy is untested")
	}
	if feed.ahead != nil {
		t.Fatal("the feeder drew a batch past the last one asked for")
	}
}

// normBatch drops the difference between a nil and an empty slice.
func normBatch(b mixer.Batch) mixer.Batch {
	if len(b.Instruction) == 0 {
		b.Instruction = nil
	}
	if len(b.Images) == 0 {
		b.Images = nil
	}
	return b
}

// stallStream serves serve text samples, then blocks in Next until its
// context is cancelled, like a stream waiting on a slow disk.
type stallStream struct{ serve, served int }

func (s *stallStream) Next(ctx context.Context) (data.Sample, error) {
	if s.served < s.serve {
		s.served++
		id := fmt.Sprint(s.served)
		return data.Sample{ID: id, Kind: data.KindText, Segments: []data.Segment{{Text: id, Tokens: []int32{10, 11, 12}}}}, nil
	}
	<-ctx.Done()
	return data.Sample{}, ctx.Err()
}

func (s *stallStream) State() data.State        { return data.State{WorldSize: 1} }
func (s *stallStream) Restore(data.State) error { return nil }
func (s *stallStream) Close() error             { return nil }

// TestFeederCloseCancelsDraw: closing the feeder (an interrupt, a failed
// step) does not wait for the batch being drawn ahead to finish.
func TestFeederCloseCancelsDraw(t *testing.T) {
	cfg := mixer.Config{Sources: map[string]mixer.Source{"text": {Weight: 1, Paths: []string{"unused"}}},
		Packing: mixer.Packing{BatchSize: 1, SeqLen: 8}}
	mix, err := mixer.New(cfg, map[string]data.Stream{"text": &stallStream{serve: 2}},
		mixer.Specials{Pad: 0, Image: 1, EndOfChunk: 2, BOS: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer mix.Close()
	feed := newFeeder(context.Background(), mix, 10)
	if _, err := feed.next(); err != nil { // two samples fill the first batch
		t.Fatal(err)
	}
	if feed.ahead == nil {
		t.Fatal("no draw in flight after the first batch")
	}
	closed := make(chan struct{})
	go func() { feed.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close still waits for a draw the stream never finishes")
	}
}
