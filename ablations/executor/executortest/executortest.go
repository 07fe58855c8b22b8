// Package executortest writes small sweep directories by hand, as
// ablations.Prepare would, and runs cells in a re-executed test binary, for
// the tests of the sweep executors.
package executortest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
)

// RunYAML is a run config that trains in about a second on a shapes world
// that generates in about a second: 16 px images, two decoder layers of
// width 48, steps steps with a checkpoint every 4, then zero-shot captioning
// of 8 images and perplexity. world is an absolute directory shared by every cell (the
// first cell to need it makes it, under a lock).
func RunYAML(world string, seed, steps int) string {
	return fmt.Sprintf(`name: cell
seed: %[2]d
shapes:
  dir: %[1]s
  seed: 1
  size: 16
  scenes: 80
  docs: 12
  texts: 40
  eval_caption: 8
  eval_vqa: 0
  support: 4
tokenizer: {path: %[1]s/tokenizer.json, vocab: 300}
data:
  sources:
    caption:     {paths: [%[1]s/captions], weight: 2}
    interleaved: {paths: [%[1]s/interleaved], weight: 2}
    text:        {paths: [%[1]s/text], weight: 1}
  packing: {batch_size: 4, seq_len: 48}
model:
  decoder: {width: 48, layers: 2, heads: 2, kv_heads: 1, ffn_hidden: 96, max_seq: 48}
  vision: {resolution: 16, patch: 8, width: 32, depth: 1, heads: 2}
  connector: {type: avgpool, tokens: 4}
train:
  steps: %[3]d
  warmup: 2
  checkpoint_every: 4
  keep_checkpoints: 2
  log_every: 2
  threads: {blas: 1, workers: 1}
eval: {caption: %[1]s/eval/caption, vqa: "", text: %[1]s/text, shots: [0], trials: 1, max_queries: 8, perplexity_samples: 4}
`, world, seed, steps)
}

// Cell is one cell to write.
type Cell struct {
	Name   string
	Config string // the run config's YAML
}

// WriteSweep writes dir/sweep.json and, per cell, cells/<id>/cell.json and
// config.yaml, with ids hashed from the configs as ablations does, and
// opens it. Cell i has the one axis "i" = i.
func WriteSweep(t testing.TB, dir, name string, cells []Cell) *ablations.Dir {
	t.Helper()
	m := ablations.Manifest{Version: ablations.ManifestVersion, Name: name, File: filepath.Join(dir, "sweep.yaml"),
		Created: time.Now().UTC().Format(time.RFC3339), CodeVersion: "unknown", Seeds: []int{0},
		Axes: []ablations.Axis{{Name: "i", Keys: []string{"seed"}}}}
	for i, c := range cells {
		sum := sha256.Sum256([]byte(c.Config))
		id := hex.EncodeToString(sum[:])[:12]
		info := ablations.CellInfo{ID: id, Name: c.Name, Index: i, Dir: "cells/" + id, Axes: map[string]any{"i": i}}
		m.Axes[0].Values = append(m.Axes[0].Values, i)
		cd := filepath.Join(dir, "cells", id)
		if err := os.MkdirAll(cd, 0o755); err != nil {
			t.Fatal(err)
		}
		writeJSON(t, filepath.Join(cd, ablations.CellFile), info)
		if err := os.WriteFile(filepath.Join(cd, ablations.ConfigFile), []byte(c.Config), 0o644); err != nil {
			t.Fatal(err)
		}
		m.Cells = append(m.Cells, info)
	}
	writeJSON(t, filepath.Join(dir, ablations.ManifestFile), m)
	d, err := ablations.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// HelperEnv, set to "1", makes a test binary run MaybeRunCell's run-cell.
const HelperEnv = "MMABLATE_EXECUTORTEST_RUNCELL"

// Faults injected into a helper process, by cell id:
//   - KillEnv: the helper kills itself with SIGKILL before training;
//   - PanicEnv: a goroutine panics (exit 2, the panic on stderr).
const (
	KillEnv  = "MMABLATE_EXECUTORTEST_KILL"
	PanicEnv = "MMABLATE_EXECUTORTEST_PANIC"
)

// MaybeRunCell, called first in TestMain, turns a test binary started with
// HelperEnv=1 into `mmablate sweep run-cell [flags] DIR ID`: it runs the cell
// and exits with run-cell's status. Otherwise it returns.
func MaybeRunCell() {
	if os.Getenv(HelperEnv) != "1" {
		return
	}
	fs := flag.NewFlagSet("run-cell", flag.ExitOnError)
	workers := fs.Int("workers", 0, "")
	exec := fs.String("executor", "local", "")
	requeue := fs.Int("requeue-exit", executor.ExitInterrupted, "")
	// The test binary's own flags come first when the test passes them.
	args := os.Args[1:]
	for len(args) > 0 && len(args[0]) > 6 && args[0][:6] == "-test." {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "executortest run-cell: want [flags] DIR ID, got", os.Args[1:])
		os.Exit(2)
	}
	dir, id := fs.Arg(0), fs.Arg(1)
	switch id {
	case os.Getenv(KillEnv):
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case os.Getenv(PanicEnv):
		done := make(chan struct{})
		go func() { panic("executortest: injected panic in cell " + id) }()
		<-done
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := executor.Main(ctx, dir, id, executor.RunCellOptions{Workers: *workers, Executor: *exec,
		InterruptExit: *requeue, LogToCell: *exec == "slurm"}, os.Stderr)
	stop()
	os.Exit(code)
}

// Main is the TestMain of an executor test package: MaybeRunCell, then
// the tests with *world set to a shapes world directory (made by the first
// cell that needs it) in a temporary directory removed afterwards.
func Main(m *testing.M, world *string) {
	MaybeRunCell()
	dir, err := os.MkdirTemp("", "executortest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*world = filepath.Join(dir, "shapes")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Quiet is a logger that drops everything, for executors under test.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Command is a local executor's Command that runs each cell in this test
// binary as run-cell (see MaybeRunCell), with env added to its environment.
func Command(env ...string) func(dir, id string, workers int) (*exec.Cmd, error) {
	return func(dir, id string, workers int) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "--workers="+strconv.Itoa(workers), "--executor=local", dir, id)
		cmd.Env = append(append(os.Environ(), HelperEnv+"=1"), env...)
		return cmd, nil
	}
}
