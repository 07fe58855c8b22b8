package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmablate/mmablate/internal/cputime"
	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine"
	"github.com/mmablate/mmablate/models/engine/cuda"
)

// benchCases are engine.md's reference model, text-only and with images.
var benchCases = []string{"text", "images"}

const (
	benchBatch = 8
	benchSeq   = 128
	benchLR    = 1e-3
)

// benchResult is one side's measurement of one case.
type benchResult struct {
	Case       string  `json:"case"`
	Impl       string  `json:"impl"` // "go" or "pytorch"
	Threads    int     `json:"threads"`
	Steps      int     `json:"steps"`
	StepsPerS  float64 `json:"steps_per_s"`
	TokensPerS float64 `json:"tokens_per_s"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	GFLOPs     float64 `json:"gflop_per_s,omitempty"` // model FLOPs (README convention) per second
	Loss       float64 `json:"loss"`
	// CPUCores is the process's CPU time over wall time during the timed
	// steps: the cores a side really used, to check equal thread counts.
	CPUCores float64 `json:"cpu_cores,omitempty"`
	CPUSec   float64 `json:"cpu_s,omitempty"` // the CPU seconds behind CPUCores (all threads)
}

// matmulResult is the largest layer of a case (by forward FLOPs): each of
// its three products timed as the layer issues them in a training step
// (engine.ParallelGemm: rows split over a pool of --threads workers, OpenBLAS
// on one thread inside it) and through cblas_sgemm called directly with
// --threads OpenBLAS threads on the same shape.
type matmulResult struct {
	Case     string          `json:"case"`
	Layer    string          `json:"layer"`
	Products []productResult `json:"products"`
}

// productResult is one product of a layer y = x·Wᵀ with x [rows, in] and
// W [out, in]: forward (x·Wᵀ), input_grad (dy·W) or weight_grad (dyᵀ·x).
type productResult struct {
	Pass        string  `json:"pass"`
	Shape       string  `json:"shape"`
	EngineGFLOP float64 `json:"engine_gflop_per_s"`
	RawGFLOP    float64 `json:"openblas_gflop_per_s,omitempty"`
}

type benchReport struct {
	Threads   int                `json:"threads"`
	BLAS      string             `json:"blas"`
	Core      string             `json:"blas_core,omitempty"` // OpenBLAS's kernel family for this CPU
	Results   []benchResult      `json:"results"`
	Ratios    map[string]float64 `json:"go_over_pytorch_steps_per_s,omitempty"` // = the tokens/s ratio (same batch)
	RSSRatios map[string]float64 `json:"go_over_pytorch_peak_rss,omitempty"`
	Matmul    []matmulResult     `json:"largest_matmul"`
	// Sgemm1024 is cblas_sgemm's rate on a square 1024³ product with
	// --threads threads: the CPU's practical peak through OpenBLAS.
	Sgemm1024 float64 `json:"openblas_sgemm_1024_gflop_per_s,omitempty"`
}

func newBenchTrainCmd() *cobra.Command {
	var (
		peer, python, ref, worker string
		threads, steps, warmup    int
		asJSON                    bool
		device, precision         string
		gpuBatch, gpuSeq          int
		compile                   bool
		gpuCases                  []string
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Measure training throughput of the reference model, optionally against PyTorch",
		Long: `bench train times forward + backward + gradient clipping + AdamW on the
reference model of docs/engine.md (vocab 512, width 256, 4 layers, 4 heads,
SwiGLU 704, batch 8 × 128 tokens), text-only and with images (128×128 RGB,
patch 16, 2-layer ViT of width 256, cabstractor to 64 tokens, one image per
sequence). Each case runs in its own child process so that its peak resident
memory (getrusage maxrss of the child) is its own.

With --peer pytorch the same shapes run through bench/pytorch/mmablate_ref.py
in the same invocation, with the same thread count: torch.set_num_threads(N)
and OPENBLAS_NUM_THREADS=1 for the peer (otherwise PyTorch's and OpenBLAS's
threads oversubscribe the cores), OpenBLAS threads = N and GOMAXPROCS = N for
Go. The table then shows Go's steps/s over PyTorch's.

It also times the three products (forward, input gradient, weight gradient)
of each case's largest layer as a training step issues them (rows split over
a pool of N goroutines, OpenBLAS on one thread inside it), and cblas_sgemm
called directly with N OpenBLAS threads on the same shape, plus a square
1024³ cblas_sgemm: engine/raw is the engine's share of what OpenBLAS reaches
on that shape. The two alternate, and each raw round is followed by a wait
until OpenBLAS's own threads, which spin for about 0.1 s after a call, have
gone idle: an engine round inside that window shares its cores with them.

The OpenBLAS kernel family in use is printed with the matmul lines; on a
virtual machine that hides its CPU model OpenBLAS may pick "Prescott" (SSE3)
kernels and run several times slower, which OPENBLAS_CORETYPE corrects.

GFLOP/s counts matrix products only, 2·m·n·k forward and twice that backward
(models/README.md). Numbers from a shared machine are noisy: compare sides of
one run, not runs.

Example (the project's 2-core development machine, otherwise idle, Debian's
OpenBLAS and python3-torch 1.13; shapes abbreviated). "cores used" is CPU
time over wall time during the timed steps; the engine's serial stretches
show as less than 2:

  mmablate bench train --peer pytorch --threads 2 --steps 20 --warmup 3

  case    impl     threads  cores used  steps/s  tokens/s  peak RSS MB  GFLOP/s  go/pytorch
  text    go       2        1.87        6.194    6343      252          137.2    1.90
  text    pytorch  2        1.89        3.257    3335      515          72.1
  images  go       2        1.84        3.628    3715      414          127.8    1.57
  images  pytorch  2        1.92        2.306    2362      609          81.3
  text: go/pytorch tokens/s 1.90, peak RSS 0.49
  images: go/pytorch tokens/s 1.57, peak RSS 0.68

  largest layer's products per case (2 threads, BLAS openblas Haswell; raw cblas_sgemm 1024³: 204.0 GFLOP/s):
    case    layer                         pass         shape     engine GFLOP/s  raw sgemm GFLOP/s  engine/raw  engine/1024³
    text    llm mlp.w1                    forward      x·Wᵀ      162.1           186.4              0.87        0.79
    text    llm mlp.w1                    weight_grad  dyᵀ·x     163.4           171.6              0.95        0.80
    images  cabstractor conv3x3 (im2col)  weight_grad  dyᵀ·x     181.3           198.0              0.92        0.89
    ...

On an idle 16-core Xeon VM against PyTorch 2.11 with MKL and oneDNN the same
command gave 0.96–1.17 (text) and 0.70–0.88 (images): the peer, not the
engine, differs most between machines.

  largest layer's products per case (2 threads, BLAS openblas Cooperlake; raw cblas_sgemm 1024³: 324.1 GFLOP/s):
    case    layer                         pass         shape     engine GFLOP/s  raw sgemm GFLOP/s  engine/raw  engine/1024³
    text    llm mlp.w1                    forward      x·Wᵀ      274.6           278.9              0.98        0.85
    text    llm mlp.w1                    weight_grad  dyᵀ·x     241.8           230.4              1.05        0.75
    images  cabstractor conv3x3 (im2col)  forward      x·Wᵀ      246.8           243.0              1.02        0.76
    ...

Flags:
  --peer pytorch   also run the PyTorch reference (needs --python with torch, --ref)
  --threads N      threads per side (default 2)
  --steps N        timed steps per case (default 10); --warmup N untimed steps first (default 2)
  --json           one JSON object: results, go_over_pytorch_steps_per_s (= the tokens/s ratio),
                   go_over_pytorch_peak_rss, largest_matmul, openblas_sgemm_1024_gflop_per_s

On a GPU (a CGO_ENABLED=0 build, make build-cuda, runs anywhere the NVIDIA
driver is):

  mmablate bench train --device cuda --peer pytorch --python python3 [--compile]

times two cases (--gpu-cases text,images selects them) through the CUDA
backend (--precision bf16|tf32|fp32, default bf16), each followed by
bench/pytorch/mmablate_ref_cuda.py (the same model in PyTorch eager with bf16
autocast; with --compile also under torch.compile; random weights on both
sides) on the same GPU in the same invocation:

  text    a GPU-sized decoder: width 1024, 12 layers, 16 heads with 4 kv
          heads, SwiGLU 2816, vocab 32768; --gpu-batch 16 × --gpu-seq 1024
          tokens
  images  the same decoder behind a ViT-B/16 at 224 px (width 768, 12
          blocks, 12 heads, 196 patches; trained, not frozen) and the
          C-Abstractor (MM1's base connector, depth 1) with 144 image
          tokens: one image per sequence, whose 144 placeholders open it

It prints tokens/s (every token of the batch, B×T per step, the images
case's placeholders included), model TFLOP/s and MFU (the model's own FLOP
count, decoder + ViT + connector, over the H100/H200 dense bf16 peak, 989
TFLOP/s) and Go's tokens/s over each peer's, per case. On one NVIDIA H200
against torch 2.11.0+cu130 (2026-12-02 16:15 UTC; columns abbreviated; an
invocation ten minutes before, whose binary's pooling backward was slower,
ran text at 45.3% and images at 41.4%):

  case    impl                                 tokens/s  TFLOP/s  MFU    go/this
  text    go cuda bf16                         384339    447.3    45.2%
  text    pytorch eager bf16 autocast          83875     97.6     9.9%   4.58
  text    pytorch torch.compile bf16 autocast  206736    240.6    24.3%  1.86
  images  go cuda bf16                         319116    411.1    41.5%
  images  pytorch eager bf16 autocast          72218     93.0     9.4%   4.42
  images  pytorch torch.compile bf16 autocast  155707    200.6    20.3%  2.05`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if threads < 1 || steps < 1 || warmup < 0 {
				return usagef("--threads and --steps must be at least 1, --warmup at least 0")
			}
			if worker != "" {
				return benchWorker(cmd.OutOrStdout(), worker, threads, steps, warmup)
			}
			if peer != "" && peer != "pytorch" {
				return usagef("--peer %q: the only peer is pytorch", peer)
			}
			switch device {
			case "cpu":
			case "cuda":
				prec, err := cuda.ParsePrecision(precision)
				if err != nil || gpuBatch < 1 || gpuSeq < 1 {
					return usagef("--precision %q, --gpu-batch %d, --gpu-seq %d: want fp32|tf32|bf16 and positive sizes", precision, gpuBatch, gpuSeq)
				}
				if err := checkGPUCases(gpuCases, gpuSeq); err != nil {
					return err
				}
				if !cmd.Flags().Changed("ref") {
					ref = filepath.Join("bench", "pytorch", "mmablate_ref_cuda.py")
				}
				return runBenchTrainCUDA(cmd.Context(), cmd.OutOrStdout(), gpuBenchOpts{Cases: gpuCases, Peer: peer, Python: python, Ref: ref,
					Precision: prec, Batch: gpuBatch, Seq: gpuSeq, Steps: steps, Warmup: warmup, Compile: compile, JSON: asJSON})
			default:
				return usagef("--device %q: want cpu or cuda", device)
			}
			return runBenchTrain(cmd.Context(), cmd.OutOrStdout(), peer, python, ref, threads, steps, warmup, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&peer, "peer", "", `also run the PyTorch reference on the same shapes ("pytorch")`)
	f.StringVar(&python, "python", "/usr/bin/python3", "Python interpreter with torch, for --peer pytorch")
	f.StringVar(&ref, "ref", filepath.Join("bench", "pytorch", "mmablate_ref.py"), "path of the PyTorch reference script")
	f.IntVar(&threads, "threads", 2, "threads for each side (OpenBLAS and Go workers; torch.set_num_threads for the peer)")
	f.IntVar(&steps, "steps", 10, "timed training steps per case")
	f.IntVar(&warmup, "warmup", 2, "untimed steps before timing (first-touch of buffers, thread start-up)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	f.StringVar(&device, "device", "cpu", "cpu, or cuda for the GPU benchmark (see above)")
	f.StringVar(&precision, "precision", "bf16", "with --device cuda: matrix-product arithmetic, bf16, tf32 or fp32")
	f.IntVar(&gpuBatch, "gpu-batch", 16, "with --device cuda: sequences per batch")
	f.IntVar(&gpuSeq, "gpu-seq", 1024, "with --device cuda: tokens per sequence")
	f.BoolVar(&compile, "compile", false, "with --device cuda --peer pytorch: also time the peer under torch.compile")
	f.StringSliceVar(&gpuCases, "gpu-cases", gpuBenchCases, "with --device cuda: the cases to time, text and/or images")
	f.StringVar(&worker, "worker", "", "internal: run one case in this process and print its JSON result")
	f.MarkHidden("worker")
	return cmd
}

func runBenchTrain(ctx context.Context, out io.Writer, peer, python, ref string, threads, steps, warmup int, asJSON bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var cfgPath string
	if peer != "" {
		if cfgPath, err = writePeerConfig(models.DefaultConfig()); err != nil {
			return err
		}
		defer os.Remove(cfgPath)
	}
	rep := benchReport{Threads: threads, BLAS: engine.BLASName(), Core: blasCore(),
		Ratios: map[string]float64{}, RSSRatios: map[string]float64{}}
	common := []string{"--threads", fmt.Sprint(threads), "--steps", fmt.Sprint(steps), "--warmup", fmt.Sprint(warmup)}
	for _, c := range benchCases {
		slog.Info("bench train", "case", c, "impl", "go", "threads", threads, "steps", steps)
		goCmd := exec.CommandContext(ctx, self, append([]string{"bench", "train", "--worker", c}, common...)...)
		// OpenBLAS sizes its thread pool from the environment when the
		// library loads, before SetBLASThreads runs: unset, it starts one
		// thread per core, idle threads the measured side should not carry
		// (models/engine's doc). The peer's count is fixed the same way
		// (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(N)).
		goCmd.Env = append(os.Environ(), fmt.Sprintf("OPENBLAS_NUM_THREADS=%d", threads))
		r, err := runBenchChild(ctx, goCmd)
		if err != nil {
			return fmt.Errorf("go %s: %w", c, err)
		}
		rep.Results = append(rep.Results, r)
		if peer == "" {
			continue
		}
		slog.Info("bench train", "case", c, "impl", "pytorch", "threads", threads, "steps", steps)
		pyArgs := append([]string{ref, "bench", "--config", cfgPath, "--batch-size", fmt.Sprint(benchBatch), "--seq", fmt.Sprint(benchSeq)}, common...)
		if c == "images" {
			pyArgs = append(pyArgs, "--images")
		}
		py := exec.CommandContext(ctx, python, pyArgs...)
		py.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
		pr, err := runBenchChild(ctx, py)
		if err != nil {
			return fmt.Errorf("pytorch %s (%s %s): %w", c, python, ref, err)
		}
		pr.Case, pr.Impl, pr.Steps = c, "pytorch", steps
		if pr.StepsPerS > 0 {
			pr.CPUCores = pr.CPUSec * pr.StepsPerS / float64(steps)
		}
		pr.GFLOPs = r.GFLOPs * pr.StepsPerS / r.StepsPerS // same model, same FLOP count
		rep.Results = append(rep.Results, pr)
		rep.Ratios[c] = r.StepsPerS / pr.StepsPerS
		if pr.PeakRSSMB > 0 {
			rep.RSSRatios[c] = r.PeakRSSMB / pr.PeakRSSMB
		}
	}
	engine.SetBLASThreads(threads)
	runtime.GOMAXPROCS(threads)
	pool := engine.NewPool(threads)
	defer pool.Close()
	for _, c := range benchCases {
		rep.Matmul = append(rep.Matmul, benchLargestMatmul(c, pool, threads))
	}
	if rawSgemmAvailable {
		rep.Sgemm1024 = benchSquareSgemm(threads)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printBenchReport(out, rep)
}

// writePeerConfig writes cfg as JSON to a temporary file for the PyTorch
// peer's --config and returns its path; the caller removes it.
func writePeerConfig(cfg models.Config) (string, error) {
	tmp, err := os.CreateTemp("", "mmablate-bench-*.json")
	if err != nil {
		return "", err
	}
	err = json.NewEncoder(tmp).Encode(cfg)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// runBenchChild runs one side of one case and reads its JSON result; the
// peak RSS is the child's own, from the kernel's rusage.
func runBenchChild(ctx context.Context, c *exec.Cmd) (benchResult, error) {
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return benchResult{}, fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var r benchResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return benchResult{}, fmt.Errorf("reading result %q: %w", stdout.String(), err)
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMB = float64(ru.Maxrss) / 1024 // Linux reports KiB
	}
	return r, nil
}

func benchConfig(c string) models.Config {
	cfg := models.DefaultConfig()
	if c == "text" {
		cfg.Vision, cfg.Connector = nil, nil
	}
	return cfg
}

// benchWorker is the child process: one case, one JSON line on out.
func benchWorker(out io.Writer, c string, threads, steps, warmup int) error {
	if c != "text" && c != "images" {
		return usagef("--worker %q: want text or images", c)
	}
	engine.SetBLASThreads(threads)
	runtime.GOMAXPROCS(threads)
	cfg := benchConfig(c)
	m, err := models.New(cfg, benchBatch, benchSeq, models.Options{Seed: 1, Workers: threads})
	if err != nil {
		return err
	}
	defer m.Close()
	b := models.SyntheticBatch(cfg, benchBatch, benchSeq, c == "images", 1)
	if _, _, err := timeSteps(m, b, warmup, nil); err != nil {
		return err
	}
	cpu0 := cputime.Process().Seconds()
	sec, loss, err := timeSteps(m, b, steps, nil)
	if err != nil {
		return err
	}
	cpu := cputime.Process().Seconds() - cpu0
	fwd, bwd := m.FLOPs(b.NumImages)
	r := benchResult{Case: c, Impl: "go", Threads: threads, Steps: steps,
		StepsPerS:  float64(steps) / sec,
		TokensPerS: float64(steps*benchBatch*benchSeq) / sec,
		GFLOPs:     float64(fwd+bwd) * float64(steps) / sec / 1e9,
		Loss:       loss, CPUSec: cpu, CPUCores: cpu / sec}
	return json.NewEncoder(out).Encode(r)
}

// timeSteps times steps training steps on b and returns their seconds and
// the last step's loss (a warmup is a call whose results are dropped).
// sync, when not nil, waits for work queued on a device before the clock
// stops.
func timeSteps(m *models.Model, b *models.Batch, steps int, sync func() error) (sec, loss float64, err error) {
	start := time.Now()
	for range steps {
		st, err := m.Step(b, benchLR) // reads the loss back: on a device, one sync per step, as PyTorch's .item()
		if err != nil {
			return 0, 0, err
		}
		loss = st.Loss
	}
	if sync != nil {
		if err := sync(); err != nil {
			return 0, 0, err
		}
	}
	return time.Since(start).Seconds(), loss, nil
}

// benchLargestMatmul times the three products of the case's largest layer
// (by forward FLOPs) as a training step issues them, through the engine on
// pool, and through cblas_sgemm with threads OpenBLAS threads.
func benchLargestMatmul(c string, pool *engine.Pool, threads int) matmulResult {
	cfg := benchConfig(c)
	d := cfg.Decoder
	n := benchBatch * benchSeq
	// A layer y = x·Wᵀ with x [rows, in], W [out, in].
	type layer struct {
		name          string
		rows, out, in int
	}
	cands := []layer{
		{"llm attn.wq", n, d.Width, d.Width},
		{"llm mlp.w1", n, d.FFNHidden, d.Width},
		{"llm mlp.w2", n, d.Width, d.FFNHidden},
		{"llm logits", n, d.Vocab, d.Width},
	}
	if v := cfg.Vision; v != nil {
		g := v.Resolution / v.Patch
		rows := benchBatch * g * g
		cands = append(cands,
			layer{"vit attn.qkv", rows, 3 * v.Width, v.Width},
			layer{"vit mlp.fc1", rows, 4 * v.Width, v.Width},
			layer{"cabstractor conv3x3 (im2col)", rows, v.Width, 9 * v.Width})
	}
	best := cands[0]
	for _, l := range cands[1:] {
		if l.rows*l.out*l.in > best.rows*best.out*best.in {
			best = l
		}
	}
	r, o, i := best.rows, best.out, best.in
	res := matmulResult{Case: c, Layer: best.name}
	for _, p := range []struct {
		pass    string
		tA, tB  bool
		m, n, k int
		shape   string
	}{
		{"forward", false, true, r, o, i, fmt.Sprintf("x[%d×%d]·W[%d×%d]ᵀ", r, i, o, i)},
		{"input_grad", false, false, r, i, o, fmt.Sprintf("dy[%d×%d]·W[%d×%d]", r, o, o, i)},
		{"weight_grad", true, false, o, i, r, fmt.Sprintf("dy[%d×%d]ᵀ·x[%d×%d]", r, o, r, i)},
	} {
		eng, raw := timeProduct(pool, threads, p.tA, p.tB, p.m, p.n, p.k)
		res.Products = append(res.Products, productResult{Pass: p.pass, Shape: p.shape, EngineGFLOP: eng, RawGFLOP: raw})
	}
	return res
}

// timeProduct measures C = op(A)·op(B) (op(A) m×k, op(B) k×n) through
// engine.ParallelGemm on pool, as the layers call it, and (when available)
// through cblas_sgemm with threads OpenBLAS threads, in GFLOP/s. The two
// alternate and each keeps its best round, so clock-frequency drift and a
// neighbour's load do not favour whichever runs first.
func timeProduct(pool *engine.Pool, threads int, tA, tB bool, m, n, k int) (eng, raw float64) {
	rng := rand.New(rand.NewPCG(2, 2))
	fill := func(size int) []float32 {
		s := make([]float32, size)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	a, b, out := fill(m*k), fill(k*n), make([]float32, m*n)
	lda, ldb := k, n
	if tA {
		lda = m
	}
	if tB {
		ldb = k
	}
	engineGemm := func() { engine.ParallelGemm(pool, tA, tB, m, n, k, 1, a, lda, b, ldb, 0, out, n) }
	rawGemm := func() {
		// The pool's regions leave OpenBLAS on one thread; the raw call gets
		// the threads a product outside the engine would.
		engine.SetBLASThreads(threads)
		rawSgemm(tA, tB, m, n, k, a, b, out)
	}
	flop := 2 * float64(m) * float64(n) * float64(k)
	engineGemm()
	for range 5 {
		eng = max(eng, gflopRate(flop, engineGemm))
		if rawSgemmAvailable {
			raw = max(raw, gflopRate(flop, rawGemm))
			waitBLASIdle()
		}
	}
	return eng, raw
}

// waitBLASIdle returns once this process has stopped using CPU (at most a
// second later). After a multi-threaded call OpenBLAS's worker threads spin
// for its thread timeout (2^28 cycles by default, about 0.1 s) before they
// sleep, and an engine product timed in that window shares its cores with
// them: on the C-Abstractor's weight-gradient product the engine measured
// 90 GFLOP/s right after a raw round and 153–167 after a pause, against
// 185–195 raw. Training never runs in that window (its products run
// OpenBLAS on one thread), so neither does the comparison.
func waitBLASIdle() { waitIdle(cputime.Process, time.Sleep) }

// waitIdle sleeps in 10 ms windows until one in which cpu (this process's
// CPU time) advanced by less than a fifth of the window, at most a second in
// all. Where cpu reads 0 the platform cannot say, and it sleeps out
// OpenBLAS's default timeout with a margin.
func waitIdle(cpu func() time.Duration, sleep func(time.Duration)) {
	const window, limit = 10 * time.Millisecond, time.Second
	if cpu() == 0 {
		sleep(300 * time.Millisecond)
		return
	}
	for slept := time.Duration(0); slept < limit; slept += window {
		before := cpu()
		sleep(window)
		if cpu()-before < window/5 {
			return
		}
	}
}

// benchSquareSgemm is cblas_sgemm's best rate on a 1024³ product with
// threads OpenBLAS threads.
func benchSquareSgemm(threads int) float64 {
	const n = 1024
	engine.SetBLASThreads(threads)
	rng := rand.New(rand.NewPCG(3, 3))
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	f := func() { rawSgemm(false, false, n, n, n, a, b, c) }
	f()
	best := 0.0
	for range 5 {
		best = max(best, gflopRate(2*n*n*n, f))
	}
	return best
}

// gflopRate runs f for at least 100 ms (and 3 calls) and returns flop·calls
// per second in GFLOP/s.
func gflopRate(flop float64, f func()) float64 {
	reps, start := 0, time.Now()
	for time.Since(start) < 100*time.Millisecond || reps < 3 {
		f()
		reps++
	}
	return flop * float64(reps) / time.Since(start).Seconds() / 1e9
}

func printBenchReport(out io.Writer, rep benchReport) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "case\timpl\tthreads\tcores used\tsteps/s\ttokens/s\tpeak RSS MB\tGFLOP/s\tgo/pytorch\n")
	for _, r := range rep.Results {
		ratio := ""
		if x, ok := rep.Ratios[r.Case]; ok && r.Impl == "go" {
			ratio = fmt.Sprintf("%.2f", x)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.3f\t%.0f\t%.0f\t%.1f\t%s\n", r.Case, r.Impl, r.Threads, r.CPUCores, r.StepsPerS, r.TokensPerS, r.PeakRSSMB, r.GFLOPs, ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range benchCases {
		if x, ok := rep.RSSRatios[c]; ok {
			fmt.Fprintf(out, "%s: go/pytorch tokens/s %.2f, peak RSS %.2f\n", c, rep.Ratios[c], x)
		}
	}
	fmt.Fprintf(out, "\nlargest layer's products per case (%d threads, BLAS %s %s", rep.Threads, rep.BLAS, rep.Core)
	if rep.Sgemm1024 > 0 {
		fmt.Fprintf(out, "; raw cblas_sgemm 1024³: %.1f GFLOP/s", rep.Sgemm1024)
	}
	fmt.Fprintln(out, "):")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  case\tlayer\tpass\tshape\tengine GFLOP/s\traw sgemm GFLOP/s\tengine/raw\tengine/1024³\n")
	for _, m := range rep.Matmul {
		for _, p := range m.Products {
			raw, ratio, sq := "n/a", "n/a", "n/a"
			if p.RawGFLOP > 0 {
				raw, ratio = fmt.Sprintf("%.1f", p.RawGFLOP), fmt.Sprintf("%.2f", p.EngineGFLOP/p.RawGFLOP)
			}
			if rep.Sgemm1024 > 0 {
				sq = fmt.Sprintf("%.2f", p.EngineGFLOP/rep.Sgemm1024)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\n", m.Case, m.Layer, p.Pass, p.Shape, p.EngineGFLOP, raw, ratio, sq)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !rawSgemmAvailable {
		fmt.Fprintln(out, "  (pure-Go build: no OpenBLAS to compare with)")
	}
	if rep.Core == "Prescott" {
		fmt.Fprintln(out, "note: OpenBLAS fell back to its SSE3 (Prescott) kernels, as it does when a virtual machine hides\n"+
			"the CPU model; set OPENBLAS_CORETYPE (Haswell, SkylakeX, ...) to compare at this CPU's real speed.")
	}
	return nil
}
