package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/models/engine/cuda"
)

func TestBenchTrainCUDAUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--device", "tpu"},
		{"--device", "cuda", "--precision", "fp16"},
		{"--device", "cuda", "--gpu-batch", "0"},
		{"--device", "cuda", "--gpu-seq", "-1"},
		{"--device", "cuda", "--gpu-cases", "video"},
		{"--device", "cuda", "--gpu-cases", "text,text"},
		{"--device", "cuda", "--gpu-cases", ""},
		{"--device", "cuda", "--gpu-seq", "144"}, // images by default: no text after 144 placeholders
	} {
		cmd := newBenchTrainCmd()
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		var ue *usageError
		if err := cmd.Execute(); !errors.As(err, &ue) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
}

// TestCheckGPUCases: the accepted --gpu-cases, the default both cases.
func TestCheckGPUCases(t *testing.T) {
	for _, tc := range []struct {
		cases []string
		seq   int
		ok    bool
	}{
		{gpuBenchCases, 1024, true},
		{[]string{"images"}, 145, true},
		{[]string{"text"}, 16, true},
		{[]string{"images", "text"}, 1024, true},
		{[]string{"images"}, 144, false},
		{[]string{"text", "images", "text"}, 1024, false},
		{nil, 1024, false},
		{[]string{"TEXT"}, 1024, false},
	} {
		if err := checkGPUCases(tc.cases, tc.seq); (err == nil) != tc.ok {
			t.Errorf("checkGPUCases(%q, %d) = %v, want ok %v", tc.cases, tc.seq, err, tc.ok)
		}
	}
	if !reflect.DeepEqual(gpuBenchCases, []string{"text", "images"}) {
		t.Errorf("default cases %q", gpuBenchCases)
	}
}

// TestGPUBenchReference: both GPU references are valid models of the
// stated sizes, and the rates follow from steps, seconds and FLOPs.
func TestGPUBenchReference(t *testing.T) {
	for _, c := range gpuBenchCases {
		cfg := gpuBenchConfig(c, 1024)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		d := cfg.Decoder
		if d.Width != 1024 || d.Layers != 12 || d.Heads != 16 || d.KVHeads != 4 || d.FFNHidden != 2816 || d.Vocab != 32768 || d.MaxSeq != 1024 {
			t.Errorf("%s: reference decoder %+v", c, d)
		}
		if c == "text" {
			if cfg.Vision != nil || cfg.Connector != nil {
				t.Errorf("text case has an image path: %+v %+v", cfg.Vision, cfg.Connector)
			}
			continue
		}
		// ViT-B/16 at 224 px: 14×14 = 196 patches; C-Abstractor to 12×12.
		if v := cfg.Vision; v == nil || v.Resolution != 224 || v.Patch != 16 || v.Width != 768 || v.Depth != 12 || v.Heads != 12 || v.Freeze {
			t.Errorf("images case vision %+v", v)
		}
		if cn := cfg.Connector; cn == nil || cn.Type != "cabstractor" || cn.Tokens != 144 || cn.Depth != 1 {
			t.Errorf("images case connector %+v", cn)
		}
	}
	r := gpuResult("text", "x", "dev", 10, 2, 16*1024, 19e12, 1)
	if r.Case != "text" || r.StepsPerS != 5 || r.TokensPerS != 5*16*1024 || math.Abs(r.TFLOPs-95) > 1e-9 || math.Abs(r.MFU-95e12/cuda.PeakBF16) > 1e-12 {
		t.Errorf("gpuResult = %+v", r)
	}
}

// fakePython writes a shell script standing in for the interpreter: it
// logs its arguments and the config file it was given to dir, then prints
// a peer result; with --compile it fails as a Python traceback would.
func fakePython(t *testing.T, dir string) string {
	t.Helper()
	script := `#!/bin/sh
echo "$*" >> "` + dir + `/calls"
compiled=no
while [ $# -gt 0 ]; do
  case "$1" in
    --config) cat "$2" >> "` + dir + `/configs"; echo >> "` + dir + `/configs"; shift ;;
    --compile) compiled=yes ;;
  esac
  shift
done
if [ $compiled = yes ]; then
  echo 'Traceback (most recent call last):' >&2
  echo 'torch._dynamo.exc.Unsupported: data-dependent branch' >&2
  echo 'Set TORCHDYNAMO_VERBOSE=1 for the internal stack trace' >&2
  exit 1
fi
echo '{"steps_per_s": 4, "tokens_per_s": 1, "loss": 10.25, "peak_gpu_mb": 2048, "compile_s": 0, "torch": "2.11.0", "device": "NVIDIA H200"}'
`
	p := filepath.Join(dir, "python")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGPUPeers: the peer gets the case's shapes and model (--images and a
// config with the ViT and connector for the images case), its rates come
// from its steps/s and the Go side's FLOP count, and a failing
// torch.compile run is a row naming its exception.
func TestGPUPeers(t *testing.T) {
	dir := t.TempDir()
	o := gpuBenchOpts{Python: fakePython(t, dir), Ref: "ref_cuda.py", Batch: 2, Seq: 256, Steps: 3, Warmup: 1, Compile: true}
	info := gpuCaseInfo{Case: "images", Cfg: gpuBenchConfig("images", 256), Batch: 2, Seq: 256, FLOP: 2e12}
	got, err := runGPUPeers(context.Background(), o, info)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d results, want eager and compile: %+v", len(got), got)
	}
	eager, comp := got[0], got[1]
	if eager.Case != "images" || eager.Impl != "pytorch eager bf16 autocast" || eager.Device != "NVIDIA H200" || eager.Steps != 3 ||
		math.Abs(eager.StepsPerS-4) > 1e-12 || math.Abs(eager.TokensPerS-4*2*256) > 1e-9 || math.Abs(eager.TFLOPs-8) > 1e-9 ||
		eager.Loss != 10.25 || eager.PeakGPUMB != 2048 || eager.Torch != "2.11.0" {
		t.Errorf("eager result %+v", eager)
	}
	if comp.Impl != "pytorch torch.compile bf16 autocast" || comp.TokensPerS != 0 ||
		!strings.Contains(comp.Note, "failed: ") || !strings.HasSuffix(comp.Note, "torch._dynamo.exc.Unsupported: data-dependent branch") {
		t.Errorf("compile result %+v", comp)
	}
	calls, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if len(lines) != 2 {
		t.Fatalf("calls %q", lines)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if f[0] != "ref_cuda.py" || f[1] != "--config" {
			t.Errorf("call %d: %q", i, l)
		}
		want := "--batch-size 2 --seq 256 --steps 3 --warmup 1 --amp bf16 --images"
		if i == 1 {
			want += " --compile"
		}
		if rest := strings.Join(f[3:], " "); rest != want {
			t.Errorf("call %d: %q, want %q after the config", i, rest, want)
		}
	}
	configs, err := os.ReadFile(filepath.Join(dir, "configs"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Vision    *struct{ Resolution, Patch, Width, Depth, Heads int }
		Connector *struct {
			Type          string
			Tokens, Depth int
		}
	}
	if err := json.Unmarshal(bytes.SplitN(configs, []byte("\n"), 2)[0], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Vision == nil || cfg.Vision.Resolution != 224 || cfg.Vision.Width != 768 || cfg.Connector == nil ||
		cfg.Connector.Type != "cabstractor" || cfg.Connector.Tokens != 144 {
		t.Errorf("peer config %s", configs)
	}
	if args := gpuPeerArgs(o, "text", "c.json", false); strings.Contains(strings.Join(args, " "), "--images") {
		t.Errorf("text case peer args %q", args)
	}
}

// TestGPUPeerNoResult: a peer that exits 0 without a result is an error
// naming the variant, not a row of zeros.
func TestGPUPeerNoResult(t *testing.T) {
	dir := t.TempDir()
	py := filepath.Join(dir, "python")
	if err := os.WriteFile(py, []byte("#!/bin/sh\necho '{}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := gpuBenchOpts{Python: py, Ref: "r.py", Batch: 1, Seq: 16, Steps: 1}
	_, err := runGPUPeers(context.Background(), o, gpuCaseInfo{Case: "text", Cfg: gpuBenchConfig("text", 16), Batch: 1, Seq: 16, FLOP: 1})
	if err == nil || !strings.Contains(err.Error(), "pytorch eager bf16 autocast") {
		t.Errorf("error %v", err)
	}
}

// gpuBenchSample is a two-case report as a device run would produce it.
func gpuBenchSample() ([]gpuCaseInfo, []gpuBenchResult) {
	idle := 0.012
	infos := []gpuCaseInfo{
		{Case: "text", Cfg: gpuBenchConfig("text", 1024), Batch: 16, Seq: 1024, Params: 170_000_000, FLOP: 19.4e12},
		{Case: "images", Cfg: gpuBenchConfig("images", 1024), Batch: 16, Seq: 1024, Params: 258_000_000, FLOP: 23.1e12},
	}
	results := []gpuBenchResult{
		gpuResult("text", "go cuda bf16", "NVIDIA H200", 10, 1.2, 16*1024, 19.4e12, 7.1234),
		gpuResult("text", "pytorch eager bf16 autocast", "NVIDIA H200", 10, 2.0, 16*1024, 19.4e12, 7.1301),
		gpuResult("text", "pytorch torch.compile bf16 autocast", "NVIDIA H200", 10, 0.8, 16*1024, 19.4e12, 7.1299),
		gpuResult("images", "go cuda bf16", "NVIDIA H200", 10, 1.6, 16*1024, 23.1e12, 7.2),
		gpuResult("images", "pytorch eager bf16 autocast", "NVIDIA H200", 10, 2.4, 16*1024, 23.1e12, 7.21),
		{Case: "images", Impl: "pytorch torch.compile bf16 autocast", Note: "failed: exit status 1: RuntimeError: CUDA out of memory"},
	}
	results[0].GPUIdleMS, results[0].Note = &idle, "sm_90, NVRTC compile 160ms, GPU idle between steps 0.012 ms/step"
	results[2].CompileS, results[2].PeakGPUMB, results[2].Torch = 41, 30000, "2.11.0"
	return infos, results
}

// TestPrintGPUBench pins the table (UPDATE_GOLDEN=1 rewrites
// testdata/bench-train-cuda.golden): each case's model, a row per side
// and case, Go over each peer of the same case.
func TestPrintGPUBench(t *testing.T) {
	infos, results := gpuBenchSample()
	var buf bytes.Buffer
	if err := writeGPUBench(&buf, false, infos, results); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "bench-train-cuda.golden", buf.String())
}

// TestGPUBenchJSON: --json is one array of results, each naming its case.
func TestGPUBenchJSON(t *testing.T) {
	infos, results := gpuBenchSample()
	var buf bytes.Buffer
	if err := writeGPUBench(&buf, true, infos, results); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, buf.Bytes())
	}
	if len(got) != len(results) {
		t.Fatalf("%d results, want %d", len(got), len(results))
	}
	for i, r := range got {
		if r["case"] != results[i].Case || r["impl"] != results[i].Impl {
			t.Errorf("result %d: case %v impl %v, want %s %s", i, r["case"], r["impl"], results[i].Case, results[i].Impl)
		}
	}
	if got[0]["gpu_idle_ms_per_step"] != 0.012 || got[3]["tokens_per_s"] != 16*1024*10/1.6 {
		t.Errorf("fields: %v, %v", got[0], got[3])
	}
}

// TestPeerFailure: a failed peer is summarised by its exception line, not
// by the hints torch.compile prints after it.
func TestPeerFailure(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Traceback (most recent call last):\n  File \"x.py\", line 1\ntorch._dynamo.exc.Unsupported: data-dependent branch\n\nSet TORCHDYNAMO_VERBOSE=1 for the internal stack trace\n",
			"torch._dynamo.exc.Unsupported: data-dependent branch"},
		{"RuntimeError: CUDA out of memory\n", "RuntimeError: CUDA out of memory"},
		{"Killed\n\n", "Killed"},
		{"", ""},
	} {
		if got := peerFailure([]byte(tc.in)); got != tc.want {
			t.Errorf("peerFailure(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
