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

// gpuBenchCases are the GPU benchmark's cases: the reference decoder alone,
// and the same decoder behind ViT-B/16 and the C-Abstractor.
var gpuBenchCases = []string{"text", "images"}

// gpuImageTokens is the images case's image tokens per image.
const gpuImageTokens = models.GPUReferenceImageTokens

// gpuBenchConfig is case c's model: models.GPUReferenceConfig, with images
// for the "images" case.
func gpuBenchConfig(c string, seq int) models.Config {
	return models.GPUReferenceConfig(seq, c == "images")
}

// checkGPUCases rejects --gpu-cases that name no case, an unknown one or
// one twice, and an images case whose sequence leaves no text after the
// image's placeholders.
func checkGPUCases(cases []string, seq int) error {
	if len(cases) == 0 {
		return usagef("--gpu-cases is empty: want text and/or images")
	}
	for i, c := range cases {
		if !slices.Contains(gpuBenchCases, c) {
			return usagef("--gpu-cases %q: want text and/or images", c)
		}
		if slices.Contains(cases[:i], c) {
			return usagef("--gpu-cases names %q twice", c)
		}
		if c == "images" && seq <= gpuImageTokens {
			return usagef("--gpu-seq %d: the images case needs more than its %d image tokens", seq, gpuImageTokens)
		}
	}
	return nil
}

// gpuBenchOpts are `bench train --device cuda`'s settings.
type gpuBenchOpts struct {
	Cases                     []string // of gpuBenchCases, in order
	Peer, Python, Ref         string   // Peer "" or "pytorch"
	Precision                 cuda.Precision
	Batch, Seq, Steps, Warmup int
	Compile, JSON             bool
}

// gpuBenchResult is one side of one case of the GPU benchmark.
type gpuBenchResult struct {
	Case       string  `json:"case"` // "text" or "images"
	Impl       string  `json:"impl"` // "go cuda <precision>" or "pytorch eager bf16 autocast", …
	Device     string  `json:"device"`
	Steps      int     `json:"steps"`
	StepsPerS  float64 `json:"steps_per_s"`
	TokensPerS float64 `json:"tokens_per_s"`
	TFLOPs     float64 `json:"model_tflop_per_s"`
	MFU        float64 `json:"mfu"` // of cuda.PeakBF16
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

// gpuCaseInfo describes one case's model for the table's header.
type gpuCaseInfo struct {
	Case   string
	Cfg    models.Config
	Batch  int
	Seq    int
	Params int
	FLOP   float64 // model FLOPs per training step (models.Model.FLOPs)
}

// runBenchTrainCUDA times each case on GPU 0 through the CUDA backend and,
// with peer "pytorch", through bench/pytorch/mmablate_ref_cuda.py in eager
// mode with bf16 autocast (and torch.compile when o.Compile is set), one
// after the other in this invocation.
func runBenchTrainCUDA(ctx context.Context, out io.Writer, o gpuBenchOpts) error {
	var (
		infos   []gpuCaseInfo
		results []gpuBenchResult
	)
	for _, c := range o.Cases {
		info, r, err := benchGoCUDA(c, o)
		if err != nil {
			return fmt.Errorf("%s case: %w", c, err)
		}
		infos, results = append(infos, info), append(results, r)
		if o.Peer == "pytorch" {
			pr, err := runGPUPeers(ctx, o, info)
			if err != nil {
				return fmt.Errorf("%s case: %w", c, err)
			}
			results = append(results, pr...)
		}
	}
	return writeGPUBench(out, o.JSON, infos, results)
}

// writeGPUBench prints the results as a table (printGPUBench) or, with
// asJSON, as one JSON array of gpuBenchResult.
func writeGPUBench(out io.Writer, asJSON bool, infos []gpuCaseInfo, results []gpuBenchResult) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return printGPUBench(out, infos, results)
}

// benchGoCUDA times one case's training steps through the CUDA backend
// and frees the GPU's memory for the peer before it returns.
func benchGoCUDA(c string, o gpuBenchOpts) (gpuCaseInfo, gpuBenchResult, error) {
	cfg := gpuBenchConfig(c, o.Seq)
	images := c == "images"
	maxImages := 0
	if images {
		maxImages = o.Batch // one image per sequence: activations for B images, not B·T/tokens
	}
	m, err := models.New(cfg, o.Batch, o.Seq, models.Options{Seed: 1, MaxImages: maxImages})
	if err != nil {
		return gpuCaseInfo{}, gpuBenchResult{}, err
	}
	defer m.Close()
	b := models.SyntheticBatch(cfg, o.Batch, o.Seq, images, 1)
	fwd, bwd := m.FLOPs(b.NumImages)
	total, _ := m.NumParams()
	info := gpuCaseInfo{Case: c, Cfg: cfg, Batch: o.Batch, Seq: o.Seq, Params: total, FLOP: float64(fwd + bwd)}
	slog.Info("bench train cuda", "case", c, "params", total, "batch", o.Batch, "seq", o.Seq, "precision", o.Precision, "gflop_per_step", info.FLOP/1e9)
	tr, err := cuda.NewTrainer(m, cuda.Options{Precision: o.Precision})
	if err != nil {
		return info, gpuBenchResult{}, err
	}
	if err := m.SetAccelerator(tr); err != nil {
		tr.Close()
		return info, gpuBenchResult{}, err
	}
	if _, _, err := timeSteps(m, b, o.Warmup, nil); err != nil {
		return info, gpuBenchResult{}, err
	}
	idle0, timed := tr.IdleTime()
	sec, loss, err := timeSteps(m, b, o.Steps, tr.Device().Sync)
	if err != nil {
		return info, gpuBenchResult{}, err
	}
	idle, _ := tr.IdleTime()
	dev := tr.Device()
	r := gpuResult(c, fmt.Sprintf("go cuda %s", o.Precision), dev.Name, o.Steps, sec, o.Batch*o.Seq, info.FLOP, loss)
	r.Note = fmt.Sprintf("%s, NVRTC compile %v", dev.SM, dev.Compile.Round(time.Millisecond))
	// Each timed step adds the gap since the step before it: the last
	// warmup step's counts for the first, so there are steps gaps after a
	// warmup and steps−1 without one.
	gaps := o.Steps
	if o.Warmup == 0 {
		gaps--
	}
	if timed && gaps > 0 {
		ms := float64(idle-idle0) / float64(time.Millisecond) / float64(gaps)
		r.GPUIdleMS = &ms
		r.Note += fmt.Sprintf(", GPU idle between steps %.3f ms/step", ms)
	}
	if err := m.SetAccelerator(nil); err != nil { // frees the GPU memory for the peer
		return info, gpuBenchResult{}, err
	}
	return info, r, nil
}

// gpuPeerArgs is the peer's command line after the interpreter for one
// case: eager, or under torch.compile when compiled is set.
func gpuPeerArgs(o gpuBenchOpts, c, cfgPath string, compiled bool) []string {
	args := []string{o.Ref, "--config", cfgPath, "--batch-size", fmt.Sprint(o.Batch), "--seq", fmt.Sprint(o.Seq),
		"--steps", fmt.Sprint(o.Steps), "--warmup", fmt.Sprint(o.Warmup), "--amp", "bf16"}
	if c == "images" {
		args = append(args, "--images")
	}
	if compiled {
		args = append(args, "--compile")
	}
	return args
}

// runGPUPeers runs the PyTorch peer on one case's model: eager, then under
// torch.compile with o.Compile. A peer that fails is a row whose note says
// why (torch.compile may not run everywhere); a peer that prints no result
// is an error. Rates use the Go side's FLOP count (the same model).
func runGPUPeers(ctx context.Context, o gpuBenchOpts, info gpuCaseInfo) ([]gpuBenchResult, error) {
	cfgPath, err := writePeerConfig(info.Cfg)
	if err != nil {
		return nil, err
	}
	defer os.Remove(cfgPath)
	variants := []string{"pytorch eager bf16 autocast"}
	if o.Compile {
		variants = append(variants, "pytorch torch.compile bf16 autocast")
	}
	var results []gpuBenchResult
	for i, name := range variants {
		slog.Info("bench train cuda", "case", info.Case, "peer", name)
		var stdout, stderr bytes.Buffer
		c := exec.CommandContext(ctx, o.Python, gpuPeerArgs(o, info.Case, cfgPath, i == 1)...)
		c.Stdout, c.Stderr = &stdout, &stderr
		if err := c.Run(); err != nil {
			results = append(results, gpuBenchResult{Case: info.Case, Impl: name, Note: fmt.Sprintf("failed: %v: %s", err, peerFailure(stderr.Bytes()))})
			continue
		}
		var pr gpuBenchResult
		if err := json.Unmarshal(stdout.Bytes(), &pr); err != nil {
			return nil, fmt.Errorf("%s: reading result %q: %w", name, stdout.String(), err)
		}
		if pr.StepsPerS <= 0 {
			return nil, fmt.Errorf("%s: result %q has no steps_per_s", name, bytes.TrimSpace(stdout.Bytes()))
		}
		r := gpuResult(info.Case, name, pr.Device, o.Steps, float64(o.Steps)/pr.StepsPerS, info.Batch*info.Seq, info.FLOP, pr.Loss)
		r.PeakGPUMB, r.CompileS, r.Torch = pr.PeakGPUMB, pr.CompileS, pr.Torch
		results = append(results, r)
	}
	return results, nil
}

// printGPUBench prints each case's model, then one row per side and case
// with Go's tokens/s on that case over the row's (go/this), then what the
// rates count.
func printGPUBench(out io.Writer, infos []gpuCaseInfo, results []gpuBenchResult) error {
	for _, in := range infos {
		d := in.Cfg.Decoder
		fmt.Fprintf(out, "%s: decoder width %d, %d layers, %d heads (%d kv), SwiGLU %d, vocab %d; batch %d × %d tokens",
			in.Case, d.Width, d.Layers, d.Heads, d.KVHeads, d.FFNHidden, d.Vocab, in.Batch, in.Seq)
		if v, c := in.Cfg.Vision, in.Cfg.Connector; v != nil && c != nil {
			g := v.Resolution / v.Patch
			fmt.Fprintf(out, "; ViT %d px, patch %d (%d patches), width %d, %d blocks, %d heads, trained; %s (depth %d) to %d image tokens; one image per sequence",
				v.Resolution, v.Patch, g*g, v.Width, v.Depth, v.Heads, c.Type, c.Depth, c.Tokens)
		}
		fmt.Fprintf(out, "; %.1f M params; %.2f TFLOP per step\n", float64(in.Params)/1e6, in.FLOP/1e12)
	}
	goRate := map[string]float64{}
	for _, r := range results {
		if strings.HasPrefix(r.Impl, "go ") {
			goRate[r.Case] = r.TokensPerS
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "case\timpl\tdevice\tsteps/s\ttokens/s\tTFLOP/s\tMFU\tgo/this\tloss\tnote\n")
	for _, r := range results {
		ratio := ""
		if g := goRate[r.Case]; r.TokensPerS > 0 && g > 0 && !strings.HasPrefix(r.Impl, "go ") {
			ratio = fmt.Sprintf("%.2f", g/r.TokensPerS)
		}
		note := r.Note
		if r.CompileS > 0 {
			note = strings.TrimSpace(fmt.Sprintf("compile+warmup %.0f s %s", r.CompileS, note))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.0f\t%.1f\t%.1f%%\t%s\t%.4f\t%s\n", r.Case, r.Impl, r.Device, r.StepsPerS, r.TokensPerS, r.TFLOPs, 100*r.MFU, ratio, r.Loss, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "tokens/s counts every sequence token of the batch (B×T per step, an images case's placeholders included); "+
		"MFU: model FLOPs per second over %.1f TFLOP/s (H100/H200 SXM dense bf16 peak); model FLOPs count matrix products only "+
		"(decoder, ViT and connector, forward and backward) and the full T×T attention square (the CUDA backend computes its causal half "+
		"with flash attention in bf16, 5/8 of it in causal row blocks in fp32 and tf32; the peer all of it)\n", cuda.PeakBF16/1e12)
	return nil
}

func gpuResult(c, impl, device string, steps int, sec float64, tokens int, flop, loss float64) gpuBenchResult {
	return gpuBenchResult{Case: c, Impl: impl, Device: device, Steps: steps, StepsPerS: float64(steps) / sec,
		TokensPerS: float64(steps*tokens) / sec, TFLOPs: flop * float64(steps) / sec / 1e12,
		MFU: flop * float64(steps) / sec / cuda.PeakBF16, Loss: loss}
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
