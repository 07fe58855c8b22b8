package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

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
			if r.Case != c || r.StepsPerS <= 0 || r.CPUCores <= 0 || r.TokensPerS != r.StepsPerS*benchBatch*benchSeq || r.GFLOPs <= 0 || r.Loss < 5 || r.Loss > 7 {
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

// TestPrintBenchReport: the table states each case's tokens/s and peak-RSS
// ratios and each product's engine/raw and engine/1024³ shares.
func TestPrintBenchReport(t *testing.T) {
	rep := benchReport{Threads: 2, BLAS: "openblas", Core: "Haswell",
		Results: []benchResult{
			{Case: "text", Impl: "go", Threads: 2, StepsPerS: 5, TokensPerS: 5120, PeakRSSMB: 230},
			{Case: "text", Impl: "pytorch", Threads: 2, StepsPerS: 4, TokensPerS: 4096, PeakRSSMB: 920},
		},
		Ratios:    map[string]float64{"text": 1.25},
		RSSRatios: map[string]float64{"text": 0.25},
		Matmul: []matmulResult{{Case: "text", Layer: "llm mlp.w1", Products: []productResult{
			{Pass: "forward", Shape: "x[1024×256]·W[704×256]ᵀ", EngineGFLOP: 180, RawGFLOP: 200},
		}}},
		Sgemm1024: 240,
	}
	var out bytes.Buffer
	if err := printBenchReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	// Column widths follow the content, so compare fields.
	var rows []string
	for _, line := range strings.Split(out.String(), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	table := strings.Join(rows, "\n")
	for _, want := range []string{
		"text: go/pytorch tokens/s 1.25, peak RSS 0.25",
		"raw cblas_sgemm 1024³: 240.0 GFLOP/s",
		"text llm mlp.w1 forward x[1024×256]·W[704×256]ᵀ 180.0 200.0 0.90 0.75",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestWaitIdle drives waitIdle with a fake CPU clock: busyWindows 10 ms
// windows in which spinning threads burn two cores, then idle ones.
func TestWaitIdle(t *testing.T) {
	for _, tc := range []struct {
		name        string
		busyWindows int
		unknown     bool // the platform reports no CPU time
		want        time.Duration
	}{
		{"already idle", 0, false, 10 * time.Millisecond},
		{"spinning threads go to sleep after 0.1 s", 10, false, 110 * time.Millisecond},
		{"never idle: gives up after a second", 1 << 30, false, time.Second},
		{"no CPU clock: sleeps out the timeout", 0, true, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var used, slept time.Duration
			windows := 0
			cpu := func() time.Duration {
				if tc.unknown {
					return 0
				}
				return time.Second + used // a process that has already run
			}
			sleep := func(d time.Duration) {
				slept += d
				if windows < tc.busyWindows {
					used += 2 * d
				} else {
					used += d / 100 // the Go runtime's own background work
				}
				windows++
			}
			waitIdle(cpu, sleep)
			if slept != tc.want {
				t.Errorf("waitIdle slept %v, want %v", slept, tc.want)
			}
		})
	}
}
