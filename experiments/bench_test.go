package experiments

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mmablate/mmablate/internal/cputime"
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
		before := cputime.Process()
		if err := Train(context.Background(), cfg, filepath.Join(root, "runs", "tiny"), Options{Log: quietLog()}); err != nil {
			b.Fatal(err)
		}
		cpu += cputime.Process() - before
		steps += cfg.Train.Steps
		if _, err := os.Stat(filepath.Join(root, "runs", "tiny", DoneFile)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/run")
	b.ReportMetric(float64(steps)/b.Elapsed().Seconds(), "steps/s")
}
