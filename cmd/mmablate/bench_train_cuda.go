package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mmablate/mmablate/models"
	"github.com/mmablate/mmablate/models/engine/cuda"
)

// gpuPeakBF16 is the H100/H200 SXM dense bf16 tensor-core peak (NVIDIA's
// datasheet, 989.4 TFLOP/s), the denominator of model FLOP utilisation.
const gpuPeakBF16 = 989.4e12

// gpuBenchConfig is the GPU-sized reference decoder of `bench train
// --device cuda`: width 1024, 12 layers, 16 heads (4 kv heads), SwiGLU
// 2816, vocab 32768, sequence 1024.
func gpuBenchConfig(seq int) models.Config {
	d := models.DefaultDecoderConfig()
	d.Vocab, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.MaxSeq = 32768, 1024, 12, 16, 4, 2816, seq
	return models.Config{Decoder: d}
}

// gpuBenchResult is one side of the GPU benchmark.
type gpuBenchResult struct {
	Impl       string  `json:"impl"` // "go cuda <precision>" or "pytorch eager bf16 autocast", …
	Device     string  `json:"device"`
	Steps      int     `json:"steps"`
	StepsPerS  float64 `json:"steps_per_s"`
	TokensPerS float64 `json:"tokens_per_s"`
	TFLOPs     float64 `json:"model_tflop_per_s"`
	MFU        float64 `json:"mfu"` // of gpuPeakBF16
	Loss       float64 `json:"loss"`
	PeakGPUMB  float64 `json:"peak_gpu_mb,omitempty"`
	// GPUIdleMS is the Go side's mean GPU idle time between consecutive
	// timed steps (CUDA events, cuda.Trainer.IdleTime): the host's gap
	// between handing over one step and the next, the same batch each time.
	GPUIdleMS *float64 `json:"gpu_idle_ms_per_step,omitempty"`
	CompileS  float64  `json:"compile_s,omitempty"`
	Torch     string   `json:"torch,omitempty"`
	Note      string   `json:"note,omitempty"`
}

// runBenchTrainCUDA times the reference decoder on GPU 0 through the CUDA
// backend and, with peer "pytorch", through bench/pytorch/mmablate_ref_cuda.py
// in eager mode with bf16 autocast (and torch.compile when compile is set),
// one after the other in this invocation.
func runBenchTrainCUDA(ctx context.Context, out io.Writer, peer, python, ref string, prec cuda.Precision, batch, seq, steps, warmup int, compile, asJSON bool) error {
	cfg := gpuBenchConfig(seq)
	m, err := models.New(cfg, batch, seq, models.Options{Seed: 1})
	if err != nil {
		return err
	}
	defer m.Close()
	fwd, bwd := m.FLOPs(0)
	flop := float64(fwd + bwd)
	total, _ := m.NumParams()
	slog.Info("bench train cuda", "params", total, "batch", batch, "seq", seq, "precision", prec, "gflop_per_step", flop/1e9)
	tr, err := cuda.NewTrainer(m, cuda.Options{Precision: prec})
	if err != nil {
		return err
	}
	if err := m.SetAccelerator(tr); err != nil {
		tr.Close()
		return err
	}
	b := models.SyntheticBatch(cfg, batch, seq, false, 1)
	var results []gpuBenchResult
	if _, _, err := timeSteps(m, b, warmup, nil); err != nil {
		return err
	}
	idle0, timed := tr.IdleTime()
	sec, loss, err := timeSteps(m, b, steps, tr.Device().Sync)
	if err != nil {
		return err
	}
	idle, _ := tr.IdleTime()
	dev := tr.Device()
	results = append(results, gpuResult(fmt.Sprintf("go cuda %s", prec), dev.Name, steps, sec, batch*seq, flop, loss))
	results[0].Note = fmt.Sprintf("%s, NVRTC compile %v", dev.SM, dev.Compile.Round(time.Millisecond))
	// Each timed step adds the gap since the step before it: the last
	// warmup step's counts for the first, so there are steps gaps after a
	// warmup and steps−1 without one.
	gaps := steps
	if warmup == 0 {
		gaps--
	}
	if timed && gaps > 0 {
		ms := float64(idle-idle0) / float64(time.Millisecond) / float64(gaps)
		results[0].GPUIdleMS = &ms
		results[0].Note += fmt.Sprintf(", GPU idle between steps %.3f ms/step", ms)
	}
	if err := m.SetAccelerator(nil); err != nil { // frees the GPU memory for the peer
		return err
	}
	if peer == "pytorch" {
		cfgPath, err := writePeerConfig(cfg)
		if err != nil {
			return err
		}
		defer os.Remove(cfgPath)
		variants := []struct {
			name string
			args []string
		}{{"pytorch eager bf16 autocast", []string{"--amp", "bf16"}}}
		if compile {
			variants = append(variants, struct {
				name string
				args []string
			}{"pytorch torch.compile bf16 autocast", []string{"--amp", "bf16", "--compile"}})
		}
		for _, v := range variants {
			slog.Info("bench train cuda", "peer", v.name)
			args := append([]string{ref, "--config", cfgPath, "--batch-size", fmt.Sprint(batch), "--seq", fmt.Sprint(seq),
				"--steps", fmt.Sprint(steps), "--warmup", fmt.Sprint(warmup)}, v.args...)
			var stdout, stderr bytes.Buffer
			c := exec.CommandContext(ctx, python, args...)
			c.Stdout, c.Stderr = &stdout, &stderr
			if err := c.Run(); err != nil {
				results = append(results, gpuBenchResult{Impl: v.name, Note: fmt.Sprintf("failed: %v: %s", err, peerFailure(stderr.Bytes()))})
				continue
			}
			var pr gpuBenchResult
			if err := json.Unmarshal(stdout.Bytes(), &pr); err != nil {
				return fmt.Errorf("%s: reading result %q: %w", v.name, stdout.String(), err)
			}
			r := gpuResult(v.name, pr.Device, steps, float64(steps)/pr.StepsPerS, batch*seq, flop, pr.Loss)
			r.PeakGPUMB, r.CompileS, r.Torch = pr.PeakGPUMB, pr.CompileS, pr.Torch
			results = append(results, r)
		}
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintf(out, "reference decoder: width %d, %d layers, %d heads (%d kv), SwiGLU %d, vocab %d; batch %d × %d tokens; %.1f M params; %.2f TFLOP per step (matrix products, full T×T attention)\n",
		cfg.Decoder.Width, cfg.Decoder.Layers, cfg.Decoder.Heads, cfg.Decoder.KVHeads, cfg.Decoder.FFNHidden, cfg.Decoder.Vocab, batch, seq, float64(total)/1e6, flop/1e12)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "impl\tdevice\tsteps/s\ttokens/s\tTFLOP/s\tMFU\tgo/peer\tloss\tnote\n")
	for _, r := range results {
		ratio := ""
		if r.TokensPerS > 0 && r.Impl != results[0].Impl {
			ratio = fmt.Sprintf("%.2f", results[0].TokensPerS/r.TokensPerS)
		}
		note := r.Note
		if r.CompileS > 0 {
			note = fmt.Sprintf("compile+warmup %.0f s %s", r.CompileS, note)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.0f\t%.1f\t%.1f%%\t%s\t%.4f\t%s\n", r.Impl, r.Device, r.StepsPerS, r.TokensPerS, r.TFLOPs, 100*r.MFU, ratio, r.Loss, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "MFU: model FLOPs per second over %.1f TFLOP/s (H100/H200 SXM dense bf16 peak); model FLOPs count the full T×T attention square (the CUDA backend computes 5/8 of it in causal row blocks when T ≥ 256 is a multiple of 4, the peer all of it)\n", gpuPeakBF16/1e12)
	return nil
}

func gpuResult(impl, device string, steps int, sec float64, tokens int, flop, loss float64) gpuBenchResult {
	return gpuBenchResult{Impl: impl, Device: device, Steps: steps, StepsPerS: float64(steps) / sec,
		TokensPerS: float64(steps*tokens) / sec, TFLOPs: flop * float64(steps) / sec / 1e12,
		MFU: flop * float64(steps) / sec / gpuPeakBF16, Loss: loss}
}

// pyException matches the line of a Python traceback that names the
// exception ("RuntimeError: …", "torch._dynamo.exc.Unsupported: …").
var pyException = regexp.MustCompile(`^[A-Za-z_][\w.]*(Error|Exception|Unsupported|Interrupt)\b`)

// peerFailure is what a failed peer's stderr says went wrong: the last line
// naming a Python exception (torch.compile prints hints after it), else
// the last non-empty line.
func peerFailure(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range slices.Backward(lines) {
		if l = strings.TrimSpace(l); pyException.MatchString(l) {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
