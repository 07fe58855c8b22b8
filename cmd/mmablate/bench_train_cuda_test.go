package main

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestBenchTrainCUDAUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--device", "tpu"},
		{"--device", "cuda", "--precision", "fp16"},
		{"--device", "cuda", "--gpu-batch", "0"},
		{"--device", "cuda", "--gpu-seq", "-1"},
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

// TestGPUBenchReference: the GPU reference is a valid model of the stated
// size, and the rates follow from steps, seconds and FLOPs.
func TestGPUBenchReference(t *testing.T) {
	cfg := gpuBenchConfig(1024)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := cfg.Decoder; d.Width != 1024 || d.Layers != 12 || d.MaxSeq != 1024 || cfg.Vision != nil {
		t.Errorf("reference decoder %+v", d)
	}
	r := gpuResult("x", "dev", 10, 2, 16*1024, 19e12, 1)
	if r.StepsPerS != 5 || r.TokensPerS != 5*16*1024 || math.Abs(r.TFLOPs-95) > 1e-9 || math.Abs(r.MFU-95e12/gpuPeakBF16) > 1e-12 {
		t.Errorf("gpuResult = %+v", r)
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
