package local

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/mmablate/mmablate/ablations/executor/executortest"
)

// benchSteps sizes each benchmark cell: a few seconds of training on one
// core, so process start and evaluation do not dominate.
const benchSteps = 200

// BenchmarkSweepParallel runs a sweep of 8 tiny cells (one op = the whole
// sweep) with the local executor: parallel=1 gives each cell every core
// (train.threads.workers = NumCPU), parallel=NumCPU runs that many cells at
// once with one worker each, and parallel=1,workers=1 is the one-core
// baseline. On 2 cores, parallel efficiency is T(parallel=1)/(2·T(parallel=2)):
//
//	go test -run '^$' -bench SweepParallel -benchtime 1x ./ablations/local
func BenchmarkSweepParallel(b *testing.B) {
	cores := runtime.NumCPU()
	// Make the shared shapes world and tokenizer outside the timings.
	warm := executortest.WriteSweep(b, b.TempDir(), "warm-up", []executortest.Cell{{Name: "w", Config: executortest.RunYAML(world, 99, 2)}})
	if err := testExecutor(1).Run(context.Background(), warm); err != nil {
		b.Fatal(err)
	}
	var cells []executortest.Cell
	for seed := range 8 {
		cells = append(cells, executortest.Cell{Name: fmt.Sprintf("seed=%d", seed), Config: executortest.RunYAML(world, seed, benchSteps)})
	}
	for _, c := range []struct{ parallel, workers int }{{1, cores}, {cores, 1}, {1, 1}} {
		b.Run(fmt.Sprintf("parallel=%d,workers=%d", c.parallel, c.workers), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				d := executortest.WriteSweep(b, b.TempDir(), "bench", cells)
				e := testExecutor(c.parallel)
				e.Workers = c.workers
				b.StartTimer()
				if err := e.Run(context.Background(), d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/sweep")
		})
	}
}
