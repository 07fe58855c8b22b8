package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"testing"

	"github.com/mmablate/mmablate/models/engine"
)

// TestBenchWorker runs one timed step of each reference case in-process:
// the batch layout must pass the model's checks and the result must be a
// measurement, not zeros.
func TestBenchWorker(t *testing.T) {
	// benchWorker sets process-wide thread counts, as a child process may.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer engine.SetBLASThreads(engine.BLASThreads())
	for _, c := range benchCases {
		t.Run(c, func(t *testing.T) {
			var out bytes.Buffer
			if err := benchWorker(&out, c, 1, 1, 0); err != nil {
				t.Fatal(err)
			}
			var r benchResult
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("%v: %q", err, out.String())
			}
			if r.Case != c || r.StepsPerS <= 0 || r.TokensPerS != r.StepsPerS*benchBatch*benchSeq || r.GFLOPs <= 0 || r.Loss < 5 || r.Loss > 7 {
				t.Errorf("result %+v: want positive rates and an initial loss near ln 511 ≈ 6.2", r)
			}
		})
	}
}

func TestBenchTrainUsage(t *testing.T) {
	cmd := newBenchTrainCmd()
	cmd.SetArgs([]string{"--peer", "jax"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	var ue *usageError
	if err := cmd.Execute(); !errors.As(err, &ue) {
		t.Errorf("--peer jax: error %v, want a usage error", err)
	}
}
