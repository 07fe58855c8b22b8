package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mmablate/mmablate/models"
)

// The GPU is opened once per test binary: NVRTC compiles the kernels on
// every Open.
var (
	gpuOnce sync.Once
	gpuErr  error
)

// needGPU skips (with the reason printed) where no GPU, driver or CUDA
// library is present, as in CI.
func needGPU(t testing.TB) {
	t.Helper()
	gpuOnce.Do(func() {
		d, err := Open(0)
		if err == nil {
			fmt.Printf("cuda: %s (%s), driver API %d, kernels compiled in %v\n", d.Name, d.SM, d.Driver, d.Compile)
		} else {
			// Printed as well as skipped with: a skipped benchmark says
			// nothing without -test.v.
			fmt.Printf("cuda: no usable GPU, the GPU tests and benchmarks skip: %v\n", err)
		}
		gpuErr = err
	})
	if gpuErr != nil {
		t.Skipf("no usable GPU: %v", gpuErr)
	}
}

// TestOpenFailsCleanly: without a GPU, Open must return an error that names
// the library or driver call, never panic; with one, it must report the
// architecture it compiled for.
func TestOpenFailsCleanly(t *testing.T) {
	d, err := Open(0)
	if err != nil {
		var ce *Error
		if !errors.As(err, &ce) && !errors.Is(err, ErrNoDevice) {
			t.Fatalf("Open error %T %q is neither *cuda.Error nor ErrNoDevice", err, err)
		}
		if !strings.HasPrefix(err.Error(), "cuda: ") {
			t.Errorf("error %q does not start with cuda:", err)
		}
		t.Logf("no GPU here, as expected in CI: %v", err)
		return
	}
	if !strings.HasPrefix(d.SM, "sm_") || d.Name == "" {
		t.Errorf("Open: name %q, arch %q", d.Name, d.SM)
	}
}

func TestParsePrecision(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Precision
		err  bool
	}{{"", FP32, false}, {"fp32", FP32, false}, {"tf32", TF32, false}, {"bf16", BF16, false}, {"fp16", "", true}} {
		got, err := ParsePrecision(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParsePrecision(%q) = %q, %v", tc.in, got, err)
		}
	}
}

// parityCase is one decoder shape of the GPU-vs-CPU parity tests.
type parityCase struct {
	name         string
	B, T         int
	heads, kv    int
	qkNorm       bool
	docsPerSeq   int
	vocab        int // 0: 96
	prec         Precision
	lossTol, rel float64 // |Δloss| and per-tensor max|Δg|/max|g| bounds
	materialised bool    // bf16: the batched products and softmax kernels, not flash attention
}

var parityCases = []parityCase{
	{name: "fp32 gqa qknorm", B: 2, T: 64, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	{name: "fp32 mha", B: 3, T: 256, heads: 4, kv: 4, qkNorm: false, docsPerSeq: 1, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	{name: "fp32 mqa packed", B: 2, T: 256, heads: 4, kv: 1, qkNorm: true, docsPerSeq: 3, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	// The longest rows of the one-warp softmax kernels, then rows longer
	// than that: the block kernels.
	{name: "fp32 gqa 1024", B: 1, T: 1024, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	{name: "fp32 gqa 1280", B: 1, T: 1280, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	// Reduced-precision products: bounds stated in the package README.
	{name: "tf32", B: 2, T: 64, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: TF32, lossTol: 1e-2, rel: 5e-2},
	{name: "bf16", B: 2, T: 64, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	// bf16's attention products with bf16 operands: over the causal row
	// blocks (T ≥ 256), then with the block softmax kernels (T > 1024).
	{name: "bf16 mqa 256", B: 2, T: 256, heads: 4, kv: 1, qkNorm: true, docsPerSeq: 3, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	{name: "bf16 gqa 1280", B: 1, T: 1280, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	// Without qk-norm (RoPE's own backward writes the fused q|k|v
	// gradient), and one head of width 64: the reference's head width,
	// whose vectorised qk-norm kernels give each row 8 lanes (width 16
	// above: 2).
	{name: "bf16 mha rope", B: 2, T: 128, heads: 4, kv: 4, qkNorm: false, docsPerSeq: 2, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	{name: "bf16 hd64", B: 2, T: 128, heads: 1, kv: 1, qkNorm: true, docsPerSeq: 2, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	{name: "fp32 hd64", B: 2, T: 128, heads: 1, kv: 1, qkNorm: true, docsPerSeq: 2, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	// Head width 8 (no flash kernels) and T not a multiple of 8 (no bf16
	// attention operands): bf16 linear layers around fp32 attention.
	{name: "bf16 hd8 T100", B: 2, T: 100, heads: 8, kv: 2, qkNorm: true, docsPerSeq: 2, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	// The cross-entropy's other kernels: a vocabulary not a multiple of 4
	// (one logit at a time), and one longer than ce_fused holds.
	{name: "fp32 vocab 97", B: 2, T: 64, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, vocab: 97, prec: FP32, lossTol: 1e-4, rel: 1e-3},
	{name: "bf16 vocab 32772", B: 1, T: 64, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, vocab: 32772, prec: BF16, lossTol: 3e-2, rel: 1.5e-1},
	// On sm_80 and later the bf16 cases above run flash attention; these
	// keep the materialised path (older GPUs, other head widths) covered.
	{name: "bf16 mat 256", B: 2, T: 256, heads: 4, kv: 1, qkNorm: true, docsPerSeq: 3, prec: BF16, lossTol: 3e-2, rel: 1.5e-1, materialised: true},
	{name: "bf16 mat 1280", B: 1, T: 1280, heads: 4, kv: 2, qkNorm: true, docsPerSeq: 2, prec: BF16, lossTol: 3e-2, rel: 1.5e-1, materialised: true},
}

func (pc parityCase) config() models.Config {
	d := models.DefaultDecoderConfig()
	d.Vocab, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.QKNorm, d.MaxSeq = 96, 64, 2, pc.heads, pc.kv, 176, pc.qkNorm, max(512, pc.T)
	if pc.vocab > 0 {
		d.Vocab = pc.vocab
	}
	return models.Config{Decoder: d}
}

// batch packs docsPerSeq documents into each sequence (positions restart,
// attention must not cross them) and masks a few targets out of the loss.
func (pc parityCase) batch(cfg models.Config) *models.Batch {
	b := models.SyntheticBatch(cfg, pc.B, pc.T, false, 7)
	rng := rand.New(rand.NewPCG(3, 3))
	for s := range pc.B {
		doc, start := int32(0), 0
		for t := range pc.T {
			i := s*pc.T + t
			if next := (int(doc) + 1) * pc.T / pc.docsPerSeq; t == next {
				doc, start = doc+1, t
			}
			b.DocIDs[i], b.Pos[i] = doc, int32(t-start)
			if rng.IntN(7) == 0 {
				b.LossMask[i], b.Targets[i] = 0, -1
			}
		}
	}
	return b
}

// newPair builds the case's model twice with the same weights, the second
// on a Trainer; lrScales (prefix → scale) are set on both before the
// Trainer reads them.
func newPair(t *testing.T, pc parityCase, lrScales ...map[string]float64) (cpu, gpu *models.Model, tr *Trainer) {
	t.Helper()
	cfg := pc.config()
	var err error
	if cpu, err = models.New(cfg, pc.B, pc.T, models.Options{Seed: 11}); err != nil {
		t.Fatal(err)
	}
	if gpu, err = models.New(cfg, pc.B, pc.T, models.Options{Seed: 11}); err != nil {
		t.Fatal(err)
	}
	for _, scales := range lrScales {
		for prefix, s := range scales {
			if cpu.Params.ScaleLR(prefix, s) == 0 || gpu.Params.ScaleLR(prefix, s) == 0 {
				t.Fatalf("no tensor named %s…", prefix)
			}
		}
	}
	if tr, err = NewTrainer(gpu, Options{Precision: pc.prec, materialised: pc.materialised}); err != nil {
		t.Fatal(err)
	}
	if err := gpu.SetAccelerator(tr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpu.Close(); gpu.Close() })
	return cpu, gpu, tr
}

// TestParityGradients: same weights and batch, the GPU and the CPU engine
// agree on the loss and every parameter's gradient.
func TestParityGradients(t *testing.T) {
	needGPU(t)
	for _, pc := range parityCases {
		t.Run(pc.name, func(t *testing.T) {
			cpu, _, tr := newPair(t, pc)
			b := pc.batch(cpu.Config)
			want, err := cpu.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			cpu.Backward(b)
			got, err := tr.ForwardBackward(b)
			if err != nil {
				t.Fatal(err)
			}
			grads := make([]float32, cpu.Params.Len())
			if err := tr.Grads(grads); err != nil {
				t.Fatal(err)
			}
			worst, worstName := 0.0, ""
			for _, p := range cpu.Params.All() {
				r := relDiff(grads[p.Offset:p.Offset+p.Size], p.Grad())
				if r > worst {
					worst, worstName = r, p.Name
				}
			}
			fmt.Printf("parity %-16s loss cpu %.7f gpu %.7f |Δ| %.2e (bound %.0e); grads worst rel %.2e in %s (bound %.0e)\n",
				pc.name, want, got, math.Abs(want-got), pc.lossTol, worst, worstName, pc.rel)
			if math.Abs(want-got) > pc.lossTol {
				t.Errorf("loss: cpu %v gpu %v", want, got)
			}
			if worst > pc.rel {
				t.Errorf("gradient of %s: relative difference %.3g > %.0g", worstName, worst, pc.rel)
			}
		})
	}
}

// relDiff is max|a−b| / max|b| (b the CPU reference).
func relDiff(a, b []float32) float64 { return relDiffFloor(a, b, 0) }

// relDiffFloor is max|a−b| / max(max|b|, floor).
func relDiffFloor(a, b []float32, floor float64) float64 {
	var d, s float64
	for i := range b {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		s = max(s, math.Abs(float64(b[i])))
	}
	s = max(s, floor)
	if s == 0 {
		return d
	}
	return d / s
}

// TestParityTraining: ten AdamW steps (clipping active) give the same loss
// curve and weights on both devices, and a checkpoint written from the GPU
// model loads into a CPU model with the GPU's weights.
func TestParityTraining(t *testing.T) {
	needGPU(t)
	pc := parityCases[2] // GQA, packed documents, causal row blocks
	// Per-tensor learning rates (train.lr_scale) on a layer's attention and
	// the final norm: AdamW's per-chunk scale must match the CPU's.
	cpu, gpu, _ := newPair(t, pc, map[string]float64{"llm.layers.0.attn": 0.1, "llm.norm": 4})
	b := pc.batch(cpu.Config)
	worst := 0.0
	for i := range 10 {
		lr := 3e-3
		cs, err := cpu.Step(b, lr)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := gpu.Step(b, lr)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Step != gs.Step {
			t.Fatalf("step numbers %d and %d", cs.Step, gs.Step)
		}
		worst = max(worst, math.Abs(cs.Loss-gs.Loss))
		if i == 0 || i == 9 {
			fmt.Printf("train step %2d: loss cpu %.6f gpu %.6f; grad norm cpu %.5f gpu %.5f\n", gs.Step, cs.Loss, gs.Loss, cs.GradNorm, gs.GradNorm)
		}
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := gpu.SaveWeights(path, nil); err != nil {
		t.Fatal(err)
	}
	fresh, err := models.New(cpu.Config, pc.B, pc.T, models.Options{Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.LoadWeights(path); err != nil {
		t.Fatal(err)
	}
	wr := relDiff(fresh.Params.Data(), cpu.Params.Data())
	fmt.Printf("train 10 steps: worst |Δloss| %.2e, weights rel %.2e (gpu checkpoint loaded on cpu)\n", worst, wr)
	if worst > 1e-4 {
		t.Errorf("loss curves differ by %.3g", worst)
	}
	if wr > 1e-3 {
		t.Errorf("weights after 10 steps differ by %.3g", wr)
	}
	if gpu.Steps() != 10 {
		t.Errorf("gpu model reports %d steps", gpu.Steps())
	}
}

// TestParityTwoLiveTrainers: two Trainers alive in one process, each
// built in a fresh goroutine (a small stack that grows during the build,
// which is what moved the driver's out-parameters before driver.call
// kept them on the heap: cuMemAlloc then "returned" address 0), step in
// turn and follow the CPU engine's loss curve.
func TestParityTwoLiveTrainers(t *testing.T) {
	needGPU(t)
	pc := parityCases[0]
	cpu, gpuA, _ := newPair(t, pc)
	gpuB := make(chan *models.Model, 1)
	errs := make(chan error, 1)
	go func() {
		m, err := models.New(pc.config(), pc.B, pc.T, models.Options{Seed: 11})
		if err == nil {
			var tr *Trainer
			if tr, err = NewTrainer(m, Options{Precision: pc.prec}); err == nil {
				err = m.SetAccelerator(tr)
			}
		}
		gpuB <- m
		errs <- err
	}()
	second := <-gpuB
	t.Cleanup(func() { second.Close() })
	if err := <-errs; err != nil {
		t.Fatalf("second trainer: %v", err)
	}
	b := pc.batch(cpu.Config)
	for i := range 5 {
		cs, err := cpu.Step(b, 3e-3)
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range []*models.Model{gpuA, second} {
			gs, err := m.Step(b, 3e-3)
			if err != nil {
				t.Fatalf("trainer %d, step %d: %v", j+1, i+1, err)
			}
			if d := math.Abs(gs.Loss - cs.Loss); d > 1e-4 {
				t.Errorf("trainer %d, step %d: loss %.6f, cpu %.6f", j+1, i+1, gs.Loss, cs.Loss)
			}
		}
	}
}

// TestRejectsPruned: the GPU backend refuses what it does not implement
// instead of training something else (before opening a GPU, so this runs
// everywhere).
func TestRejectsPruned(t *testing.T) {
	cfg := models.Config{Decoder: models.DefaultDecoderConfig()}
	cfg.Decoder.FFNPruning, cfg.Decoder.FFNActive = models.PruneStatic, 0.5
	m, err := models.New(cfg, 1, 128, models.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = NewTrainer(m, Options{})
	if err == nil || !strings.Contains(err.Error(), "ffn_pruning") {
		t.Fatalf("NewTrainer with a pruned decoder: %v", err)
	}
}

// imageCases are the multimodal parity cases: the decoder of parityCases[0]
// behind a small ViT and each connector, the whole image path on the GPU
// in one model and on the CPU engine in the other. The 32-px images with
// 8-px patches make a 4×4 grid; the 48-px ones a 6×6 grid, which a 4×4
// pool covers with overlapping cells. fp32 cases have the text parity
// bounds; the bf16 case states its own.
var imageCases = []struct {
	name         string
	vision       models.VisionConfig
	conn         models.ConnectorConfig
	prec         Precision
	lossTol, rel float64
}{
	{"avgpool", vit32, models.ConnectorConfig{Type: models.ConnAvgPool, Tokens: 4}, FP32, 1e-4, 1e-3},
	{"attnpool", vit32, models.ConnectorConfig{Type: models.ConnAttnPool, Tokens: 4}, FP32, 1e-4, 1e-3},
	{"cabstractor", vit32, models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 4, Depth: 1}, FP32, 1e-4, 1e-3},
	{"mlp", vit32, models.ConnectorConfig{Type: models.ConnMLP, Tokens: 16}, FP32, 1e-4, 1e-3},
	{"avgpool frozen vit", frozen(vit32), models.ConnectorConfig{Type: models.ConnAvgPool, Tokens: 4}, FP32, 1e-4, 1e-3},
	{"avgpool 6x6→4x4", vit48, models.ConnectorConfig{Type: models.ConnAvgPool, Tokens: 16}, FP32, 1e-4, 1e-3},
	{"attnpool 6x6 9q", vit48, models.ConnectorConfig{Type: models.ConnAttnPool, Tokens: 9}, FP32, 1e-4, 1e-3},
	{"cabstractor 6x6→4x4 d2", vit48, models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 16, Depth: 2}, FP32, 1e-4, 1e-3},
	{"mlp frozen vit", frozen(vit32), models.ConnectorConfig{Type: models.ConnMLP, Tokens: 16}, FP32, 1e-4, 1e-3},
	{"cabstractor bf16", vit48, models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 16, Depth: 1}, BF16, 3e-2, 1.5e-1},
	// The bf16 ViT: with 49 patches and heads of 24 (batched attention
	// products, score rows padded to 56), and with heads of 16 (flash
	// attention) behind the other connectors and frozen.
	{"mlp bf16 7x7", vit56, models.ConnectorConfig{Type: models.ConnMLP, Tokens: 49}, BF16, 3e-2, 1.5e-1},
	{"attnpool bf16", vit48, models.ConnectorConfig{Type: models.ConnAttnPool, Tokens: 9}, BF16, 3e-2, 1.5e-1},
	{"cabstractor bf16 frozen vit", frozen(vit48), models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 16, Depth: 1}, BF16, 3e-2, 1.5e-1},
}

var (
	vit32 = models.VisionConfig{Resolution: 32, Patch: 8, Width: 48, Depth: 1, Heads: 4}
	vit48 = models.VisionConfig{Resolution: 48, Patch: 8, Width: 64, Depth: 2, Heads: 4}
	vit56 = models.VisionConfig{Resolution: 56, Patch: 8, Width: 96, Depth: 2, Heads: 4} // head width 24: no flash kernel
)

func frozen(v models.VisionConfig) models.VisionConfig {
	v.Freeze = true
	return v
}

// TestParityImages: multimodal models, the image path and the decoder on
// the GPU, agree with the CPU engine on the loss and every parameter's
// gradient, the ViT's and the connector's included, and over five AdamW
// steps on the loss curve and the weights.
func TestParityImages(t *testing.T) {
	needGPU(t)
	pc := parityCases[0]
	for _, ic := range imageCases {
		t.Run(ic.name, func(t *testing.T) {
			cfg := pc.config()
			vc, conn := ic.vision, ic.conn
			cfg.Vision, cfg.Connector = &vc, &conn
			cpu, err := models.New(cfg, pc.B, pc.T, models.Options{Seed: 11})
			if err != nil {
				t.Fatal(err)
			}
			defer cpu.Close()
			gpu, err := models.New(cfg, pc.B, pc.T, models.Options{Seed: 11})
			if err != nil {
				t.Fatal(err)
			}
			defer gpu.Close()
			tr, err := NewTrainer(gpu, Options{Precision: ic.prec})
			if err != nil {
				t.Fatal(err)
			}
			if ic.prec == BF16 && !tr.img.bf16 {
				t.Fatal("bf16 precision did not take the bf16 image path")
			}
			if err := gpu.SetAccelerator(tr); err != nil {
				t.Fatal(err)
			}
			b := models.SyntheticBatch(cfg, pc.B, pc.T, true, 7)
			want, err := cpu.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			cpu.Backward(b)
			got, err := tr.ForwardBackward(b)
			if err != nil {
				t.Fatal(err)
			}
			grads := make([]float32, cpu.Params.Len())
			if err := tr.Grads(grads); err != nil {
				t.Fatal(err)
			}
			// A tensor whose exact gradient is zero (attnpool's key bias:
			// the softmax ignores a score shift shared by every key) holds
			// only rounding noise on both sides, so each tensor's difference
			// is judged against at least 1e-3 of the model's largest
			// gradient.
			floor := 0.0
			for _, g := range cpu.Params.Grad() {
				floor = max(floor, 1e-3*math.Abs(float64(g)))
			}
			worst, worstName, worstImg, worstImgName := 0.0, "", 0.0, ""
			for _, p := range cpu.Params.All() {
				r := relDiffFloor(grads[p.Offset:p.Offset+p.Size], p.Grad(), floor)
				if p.Frozen && r != 0 {
					t.Errorf("frozen %s has a GPU gradient (rel %.3g)", p.Name, r)
				}
				if strings.HasPrefix(p.Name, "llm.") {
					if r > worst {
						worst, worstName = r, p.Name
					}
				} else if r > worstImg {
					worstImg, worstImgName = r, p.Name
				}
			}
			var steps float64
			for range 5 {
				cs, err := cpu.Step(b, 3e-3)
				if err != nil {
					t.Fatal(err)
				}
				gs, err := gpu.Step(b, 3e-3)
				if err != nil {
					t.Fatal(err)
				}
				steps = max(steps, math.Abs(cs.Loss-gs.Loss))
			}
			if err := gpu.SetAccelerator(nil); err != nil { // pulls the GPU's weights
				t.Fatal(err)
			}
			wr := relDiff(gpu.Params.Data(), cpu.Params.Data())
			fmt.Printf("parity images %-24s %s loss cpu %.7f gpu %.7f |Δ| %.2e; grads worst rel %.2e in %s, image path %.2e in %s; 5 steps |Δloss| %.2e, weights rel %.2e\n",
				ic.name, ic.prec, want, got, math.Abs(want-got), worst, worstName, worstImg, worstImgName, steps, wr)
			if math.Abs(want-got) > ic.lossTol || steps > ic.lossTol {
				t.Errorf("loss: cpu %v gpu %v; over 5 steps up to %.3g apart (bound %.0g)", want, got, steps, ic.lossTol)
			}
			if worst > ic.rel || worstImg > ic.rel {
				t.Errorf("gradients: %s %.3g, %s %.3g (bound %.0g)", worstName, worst, worstImgName, worstImg, ic.rel)
			}
			if wr > ic.rel {
				t.Errorf("weights after 5 steps differ by %.3g", wr)
			}
		})
	}
}

// TestParitySideStream: the bf16 ViT backward with its weight gradients on
// the side stream gives the gradients it gives with everything on the main
// stream, so no side-stream product reads a buffer the main stream has
// already overwritten (which gives errors of the gradients' own size). The
// bound leaves room for the atomic sums' order (flash's dq, the bias and
// norm sums), which can flip a bf16 rounding. The ViT is deep and wide
// enough that the streams overlap.
func TestParitySideStream(t *testing.T) {
	needGPU(t)
	pc := parityCases[0]
	cfg := pc.config()
	vc := models.VisionConfig{Resolution: 64, Patch: 8, Width: 256, Depth: 4, Heads: 4}
	conn := models.ConnectorConfig{Type: models.ConnCAbstractor, Tokens: 16, Depth: 1}
	cfg.Vision, cfg.Connector = &vc, &conn
	m, err := models.New(cfg, pc.B, pc.T, models.Options{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr, err := NewTrainer(m, Options{Precision: BF16})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetAccelerator(tr); err != nil {
		t.Fatal(err)
	}
	if tr.img.aux == nil {
		t.Skip("no side stream on this driver: the ViT backward runs on the main stream only")
	}
	b := models.SyntheticBatch(cfg, pc.B, pc.T, true, 7)
	grads := func() []float32 {
		if _, err := tr.ForwardBackward(b); err != nil {
			t.Fatal(err)
		}
		g := make([]float32, m.Params.Len())
		if err := tr.Grads(g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	withSide := grads()
	aux := tr.img.aux
	tr.img.aux = nil
	mainOnly := grads()
	tr.img.aux = aux
	worst, name := 0.0, ""
	for _, p := range m.Params.All() {
		if r := relDiff(withSide[p.Offset:p.Offset+p.Size], mainOnly[p.Offset:p.Offset+p.Size]); r > worst {
			worst, name = r, p.Name
		}
	}
	fmt.Printf("side stream vs main stream only: gradients worst rel %.2e in %s\n", worst, name)
	if worst > 2e-2 {
		t.Errorf("gradients differ by %.3g in %s", worst, name)
	}
}
