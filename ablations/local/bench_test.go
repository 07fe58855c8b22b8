package local

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mmablate/mmablate/ablations/executor/executortest"
)

// benchSteps sizes each benchmark cell: a few seconds of training on one
// core, so process start and evaluation do not dominate.
const benchSteps = 200

// BenchmarkSweepParallel times a sweep of 8 tiny cells with the local
// executor three ways, interleaved within each op so that load from other
// processes falls on all three alike; each is reported as its fastest over
// the ops (-benchtime Nx):
//
//	serial_s   --parallel 1 with one worker: one core, one cell at a time
//	threads_s  --parallel 1 as the CLI runs it: every core inside each cell
//	parallel_s --parallel NumCPU: a cell per core
//
// efficiency_% = serial_s / (NumCPU · parallel_s), 100 being ideal: how
// well cells running side by side use the cores compared with one core
// running them one by one. On a machine shared with other work the wall
// times carry its load; serial_cpu_s and parallel_cpu_s, the CPU time the
// cells' processes used (least over the ops), tell a slowdown of the cells
// themselves (cores sharing caches or a physical core) from time lost to
// other processes.
//
//	go test -run '^$' -bench SweepParallel -benchtime 3x ./ablations/local
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
	ways := []struct {
		name              string
		parallel, workers int
	}{{"serial_s", 1, 1}, {"threads_s", 1, cores}, {"parallel_s", cores, 1}}
	best := make([]time.Duration, len(ways))
	cpu := make([]time.Duration, len(ways))
	round := 0
	for b.Loop() {
		// Rotate the order so that no way always runs first.
		for k := range ways {
			i := (k + round) % len(ways)
			b.StopTimer()
			d := executortest.WriteSweep(b, b.TempDir(), "bench", cells)
			e := testExecutor(ways[i].parallel)
			e.Workers = ways[i].workers
			b.StartTimer()
			cpu0, start := childCPU(b), time.Now()
			if err := e.Run(context.Background(), d); err != nil {
				b.Fatal(err)
			}
			if t := time.Since(start); best[i] == 0 || t < best[i] {
				best[i] = t
			}
			if t := childCPU(b) - cpu0; cpu[i] == 0 || t < cpu[i] {
				cpu[i] = t
			}
		}
		round++
	}
	for i, w := range ways {
		b.ReportMetric(best[i].Seconds(), w.name)
	}
	b.ReportMetric(100*best[0].Seconds()/(float64(cores)*best[2].Seconds()), "efficiency_%")
	b.ReportMetric(cpu[0].Seconds(), "serial_cpu_s")
	b.ReportMetric(cpu[2].Seconds(), "parallel_cpu_s")
}

// childCPU is the user and system time of this process's waited-for
// children so far.
func childCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
