package experiments

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTinyExample is the target of examples/tiny.yaml: a first run on
// a machine that has nothing yet — the shapes world generated, the
// tokenizer trained, 300 steps, the few-shot evaluation and eval.json —
// in under a minute on two cores. Each iteration copies tiny.yaml to a
// fresh directory, so that its relative datasets/ paths are empty there.
// Besides the wall time it reports the process's CPU seconds per run
// (user + system), which a loaded machine does not inflate, and the
// training steps per second.
//
//	go test -run '^$' -bench TinyExample -benchtime 1x ./experiments
func BenchmarkTinyExample(b *testing.B) {
	src, err := os.ReadFile("examples/tiny.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var steps int
	var cpu time.Duration
	for b.Loop() {
		root := b.TempDir()
		path := filepath.Join(root, "experiments", "examples", "tiny.yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, src, 0o644); err != nil {
			b.Fatal(err)
		}
		cfg, err := Load(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		before := cpuTime(b)
		if err := Train(context.Background(), cfg, filepath.Join(root, "runs", "tiny"), Options{Log: quietLog()}); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
		steps += cfg.Train.Steps
		if _, err := os.Stat(filepath.Join(root, "runs", "tiny", DoneFile)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/run")
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
}

// cpuTime is the user + system time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
