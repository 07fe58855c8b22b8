package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebitengine/purego"

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
func needGPU(t *testing.T) {
	t.Helper()
	gpuOnce.Do(func() {
		d, err := Open(0)
		if err == nil {
			fmt.Printf("cuda: %s (%s), driver API %d, kernels compiled in %v\n", d.Name, d.SM, d.Driver, d.Compile)
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
	prec         Precision
	lossTol, rel float64 // |Δloss| and per-tensor max|Δg|/max|g| bounds
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
}

func (pc parityCase) config() models.Config {
	d := models.DefaultDecoderConfig()
	d.Vocab, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.QKNorm, d.MaxSeq = 96, 64, 2, pc.heads, pc.kv, 176, pc.qkNorm, max(512, pc.T)
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

func newPair(t *testing.T, pc parityCase) (cpu, gpu *models.Model, tr *Trainer) {
	t.Helper()
	cfg := pc.config()
	var err error
	if cpu, err = models.New(cfg, pc.B, pc.T, models.Options{Seed: 11}); err != nil {
		t.Fatal(err)
	}
	if gpu, err = models.New(cfg, pc.B, pc.T, models.Options{Seed: 11}); err != nil {
		t.Fatal(err)
	}
	if tr, err = NewTrainer(gpu, Options{Precision: pc.prec}); err != nil {
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
	cpu, gpu, _ := newPair(t, pc)
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
}

var (
	vit32 = models.VisionConfig{Resolution: 32, Patch: 8, Width: 48, Depth: 1, Heads: 4}
	vit48 = models.VisionConfig{Resolution: 48, Patch: 8, Width: 64, Depth: 2, Heads: 4}
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

// TestGemmRates prints cuBLAS throughput per precision on the reference
// model's largest product and on 4096³ (MMABLATE_GPU_BENCH=1 only: a
// measurement, not a check).
func TestGemmRates(t *testing.T) {
	needGPU(t)
	if os.Getenv("MMABLATE_GPU_BENCH") == "" {
		t.Skip("set MMABLATE_GPU_BENCH=1 to measure")
	}
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.enter()()
	for _, sh := range [][3]int{{16384, 2816, 1024}, {4096, 4096, 4096}} {
		m, n, k := sh[0], sh[1], sh[2]
		a, _ := d.alloc(m * k)
		b, _ := d.alloc(n * k)
		c, _ := d.alloc(m * n)
		for _, mode := range []string{"fp32", "tf32", "bf16 (fp32 in, FAST_16BF)", "bf16 native (bf16 in, fp32 out)"} {
			run := func() error {
				switch mode {
				case "bf16 native (bf16 in, fp32 out)":
					d.scalars[0], d.scalars[1] = 1, 0
					al, be := d.host+2*maxArgs*8, d.host+2*maxArgs*8+4
					r, _, _ := purego.SyscallN(d.blas.gemmEx, d.blas.handle, cublasOpT, cublasOpN, uintptr(n), uintptr(m), uintptr(k),
						al, b.P, cudaR16BF, uintptr(k), a.P, cudaR16BF, uintptr(k), be, c.P, cudaR32F, uintptr(n), cublasCompute32F, cublasGemmDefault)
					return d.blas.check("cublasGemmEx bf16", r)
				case "fp32":
					return d.gemm(FP32, false, true, m, n, k, 1, a.P, k, b.P, k, 0, c.P, n)
				case "tf32":
					return d.gemm(TF32, false, true, m, n, k, 1, a.P, k, b.P, k, 0, c.P, n)
				}
				return d.gemm(BF16, false, true, m, n, k, 1, a.P, k, b.P, k, 0, c.P, n)
			}
			for range 3 {
				if err := run(); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.sync(); err != nil {
				t.Fatal(err)
			}
			start, reps := time.Now(), 20
			for range reps {
				run()
			}
			if err := d.sync(); err != nil {
				t.Fatal(err)
			}
			sec := time.Since(start).Seconds()
			fmt.Printf("gemm %5d×%5d×%5d %-32s %6.1f TFLOP/s (zero data)\n", m, n, k, mode, 2*float64(m)*float64(n)*float64(k)*float64(reps)/sec/1e12)
		}
		for _, x := range []Buf{a, b, c} {
			d.drv.call("cuMemFree", d.drv.cuMemFree, x.P)
		}
	}
}

// TestImageStepRate times training steps of the GPU-sized multimodal
// reference on the GPU in bf16 (MMABLATE_GPU_BENCH=1 only: a measurement,
// not a check): the decoder of `bench train --device cuda` (width 1024, 12
// layers, sequence 1024, batch 16) behind a ViT-B/16 at 224 px (width 768,
// 12 blocks, 196 patches) and each connector with 144 image tokens, one
// image per sequence. MFU is over the H100/H200 dense bf16 peak.
func TestImageStepRate(t *testing.T) {
	needGPU(t)
	if os.Getenv("MMABLATE_GPU_BENCH") == "" {
		t.Skip("set MMABLATE_GPU_BENCH=1 to measure")
	}
	const B, T, steps, peak = 16, 1024, 10, 989.4e12
	for _, conn := range []models.ConnectorConfig{
		{Type: models.ConnCAbstractor, Tokens: 144, Depth: 1},
		{Type: models.ConnAvgPool, Tokens: 144},
	} {
		d := models.DefaultDecoderConfig()
		d.Vocab, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.MaxSeq = 32768, 1024, 12, 16, 4, 2816, T
		cfg := models.Config{Decoder: d, Vision: &models.VisionConfig{Resolution: 224, Patch: 16, Width: 768, Depth: 12, Heads: 12}, Connector: &conn}
		m, err := models.New(cfg, B, T, models.Options{Seed: 1, MaxImages: B})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, Options{Precision: BF16})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetAccelerator(tr); err != nil {
			t.Fatal(err)
		}
		b := models.SyntheticBatch(cfg, B, T, true, 1)
		for range 2 {
			if _, err := m.Step(b, 1e-4); err != nil {
				t.Fatal(err)
			}
		}
		idle0, _ := tr.IdleTime()
		start := time.Now()
		var loss float64
		for range steps {
			st, err := m.Step(b, 1e-4)
			if err != nil {
				t.Fatal(err)
			}
			loss = st.Loss
		}
		if err := tr.Device().Sync(); err != nil {
			t.Fatal(err)
		}
		sec := time.Since(start).Seconds() / steps
		idle, _ := tr.IdleTime()
		fwd, bwd := m.FLOPs(B)
		flop := float64(fwd + bwd)
		fmt.Printf("multimodal bf16 %s (%d tokens): %.1f ms/step, %.0f tokens/s, %.0f images/s, %.1f model TFLOP/s, MFU %.1f%%, GPU idle %.2f ms/step, loss %.4f (%s)\n",
			conn.Type, conn.Tokens, 1e3*sec, B*T/sec, B/sec, flop/sec/1e12, 100*flop/sec/peak,
			float64(idle-idle0)/float64(time.Millisecond)/steps, loss, tr.Device().Name)
		// Where the image path's time goes: each part alone, repeated and
		// synchronised, and the same model's step on a batch without images.
		phase := func(f func() error) float64 {
			defer tr.d.enter()()
			start := time.Now()
			for range steps {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.d.sync(); err != nil {
				t.Fatal(err)
			}
			return 1e3 * time.Since(start).Seconds() / steps
		}
		ip := tr.img
		vf := phase(func() error { return ip.vitForward(B) })
		cf := phase(func() error { return ip.conn.forward(B) })
		cb := phase(func() error { return ip.conn.backward(B, true) })
		vb := phase(func() error { return ip.vitBackward(B) })
		text := models.SyntheticBatch(cfg, B, T, false, 1)
		start = time.Now()
		for range steps {
			if _, err := m.Step(text, 1e-4); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Device().Sync(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("  image path parts (ms): vit forward %.2f, connector forward %.2f, connector backward %.2f, vit backward %.2f; the same model's step without images %.1f ms\n",
			vf, cf, cb, vb, 1e3*time.Since(start).Seconds()/steps)
		if err := m.SetAccelerator(nil); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
}

// TestDecoderStepBreakdown times the parts of a text step of the GPU
// reference decoder (bench train --device cuda: width 1024, 12 layers,
// 16/4 heads, SwiGLU 2816, vocab 32768, batch 16 × 1024, bf16), each alone,
// repeated and synchronised, scaled to one step (MMABLATE_GPU_BENCH=1 only:
// a measurement, not a check), to show where the step's time goes.
func TestDecoderStepBreakdown(t *testing.T) {
	needGPU(t)
	if os.Getenv("MMABLATE_GPU_BENCH") == "" {
		t.Skip("set MMABLATE_GPU_BENCH=1 to measure")
	}
	const B, T, reps = 16, 1024, 10
	d := models.DefaultDecoderConfig()
	d.Vocab, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.MaxSeq = 32768, 1024, 12, 16, 4, 2816, T
	cfg := models.Config{Decoder: d}
	m, err := models.New(cfg, B, T, models.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr, err := NewTrainer(m, Options{Precision: BF16})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	b := models.SyntheticBatch(cfg, B, T, false, 1)
	for range 2 {
		if _, err := tr.Step(b, 1e-4); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for range reps {
		if _, err := tr.Step(b, 1e-4); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.d.Sync(); err != nil {
		t.Fatal(err)
	}
	step := 1e3 * time.Since(start).Seconds() / reps
	n, D, F, V, L := tr.n, d.Width, d.FFNHidden, d.Vocab, d.Layers
	a, lp, dd := &tr.acts[0], tr.layers[0], tr.d
	parts := []struct {
		name  string
		times int // per step
		f     func() error
	}{
		{"attention q·kᵀ and p·v products", L, func() error { return tr.attention(a) }}, // less the softmax below
		{"attention softmax forward", L, func() error { return dd.attnSoftmax(a.probs, tr.docs, B, d.Heads, T, tr.bs, true) }},
		{"attention backward products", L, func() error { return tr.attentionBack(a) }}, // less the softmax below
		{"attention softmax backward", L, func() error { return dd.attnSoftmaxBackward(tr.scratch, a.probs, B*d.Heads, T, tr.bs, true) }},
		{"7 linear forward products", L, func() error {
			return errors.Join(tr.linear(a.q, a.an, lp.wq, n, D, tr.qd), tr.linear(a.k, a.an, lp.wk, n, D, tr.kvd),
				tr.linear(a.v, a.an, lp.wv, n, D, tr.kvd), tr.linear(tr.branch, a.att, lp.wo, n, tr.qd, D),
				tr.linear(a.h1, a.mn, lp.w1, n, D, F), tr.linear(a.h3, a.mn, lp.w3, n, D, F), tr.linear(tr.branch, a.gg, lp.w2, n, F, D))
		}},
		{"7 linear backward products (dx and dW)", L, func() error {
			return errors.Join(tr.linearBack(tr.dG, tr.dx, a.gg, lp.w2, n, F, D, 0), tr.linearBack(tr.dnorm, tr.dG, a.mn, lp.w1, n, D, F, 0),
				tr.linearBack(tr.dnorm, tr.dH3, a.mn, lp.w3, n, D, F, 1), tr.linearBack(tr.datt, tr.dh, a.att, lp.wo, n, tr.qd, D, 0),
				tr.linearBack(tr.dnorm, tr.dq, a.an, lp.wq, n, D, tr.qd, 0), tr.linearBack(tr.dnorm, tr.dk, a.an, lp.wk, n, D, tr.kvd, 1),
				tr.linearBack(tr.dnorm, tr.dv, a.an, lp.wv, n, D, tr.kvd, 1))
		}},
		{"norms, rope, swiglu, residual forward", L, func() error {
			return errors.Join(dd.rmsForward(a.an, a.arstd, tr.xs[0], tr.w.Off(lp.attnNorm), n, D, normEps),
				dd.rmsForward(a.qN, a.qrstd, a.q, tr.w.Off(lp.qNorm), n*d.Heads, tr.hd, normEps),
				dd.rmsForward(a.kN, a.krstd, a.k, tr.w.Off(lp.kNorm), n*d.KVHeads, tr.hd, normEps),
				dd.ropeApply(a.qRot, a.qN, tr.pos, tr.cos, tr.sin, n, d.Heads, tr.hd, 1, false),
				dd.ropeApply(a.kRot, a.kN, tr.pos, tr.cos, tr.sin, n, d.KVHeads, tr.hd, 1, false),
				dd.addInto(a.h, tr.xs[0], tr.branch, n*D), dd.rmsForward(a.mn, a.mrstd, a.h, tr.w.Off(lp.mlpNorm), n, D, normEps),
				dd.swigluForward(a.gg, a.s, a.h1, a.h3, n*F), dd.addInto(tr.xs[1], a.h, tr.branch, n*D))
		}},
		{"head: logits product and cross-entropy forward", 1, func() error {
			return errors.Join(tr.linear(tr.logits, tr.fn, tr.embed, n, D, V), dd.ceForward(tr.ceStats, tr.rowloss, tr.logits, tr.tgt, tr.mask, n, V))
		}},
		{"head: cross-entropy backward and logits products", 1, func() error {
			return errors.Join(dd.ceBackward(tr.dlogits, tr.logits, tr.ceStats, tr.tgt, tr.mask, n, V, 1e-5),
				tr.linearBack(tr.dnorm, tr.dlogits, tr.fn, tr.embed, n, D, V, 0))
		}},
		{"gradient norm and AdamW", 1, func() error {
			_, err := dd.reduce(tr.partials, tr.g, tr.g.N, true)
			return errors.Join(err, dd.launch("adamw", dd.k.adamw, grid1(tr.chunks), block1(ewBlock), 0,
				tr.w, tr.g, tr.mom, tr.vel, tr.chunkLo, tr.chunkHi, tr.chunkFlags, float32(1),
				float32(0.9), float32(0.95), float32(1e-8), float32(0), float32(1), float32(1)))
		}},
	}
	defer tr.d.enter()()
	total := 0.0
	var ms []float64
	for _, p := range parts {
		start := time.Now()
		for range reps {
			if err := p.f(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.d.sync(); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, 1e3*time.Since(start).Seconds()/reps*float64(p.times))
	}
	ms[0] -= ms[1] // the products alone
	ms[2] -= ms[3]
	for i, p := range parts {
		total += ms[i]
		fmt.Printf("  %-48s %7.2f ms/step\n", p.name, ms[i])
	}
	fmt.Printf("decoder step %.1f ms (%s, bf16); the parts above sum to %.1f ms\n", step, tr.d.Name, total)
}
