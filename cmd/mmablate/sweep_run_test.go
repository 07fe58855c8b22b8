package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor/executortest"
	"github.com/mmablate/mmablate/experiments"
)

// asMmablateEnv, set to "1", makes the test binary behave as mmablate: the
// local executor re-executes os.Executable() as `mmablate sweep run-cell`.
const asMmablateEnv = "MMABLATE_CMD_TEST_AS_MMABLATE"

func TestMain(m *testing.M) {
	if os.Getenv(asMmablateEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		root := newRootCmd()
		root.SetArgs(os.Args[1:])
		err := root.ExecuteContext(ctx)
		stop()
		if err != nil {
			os.Stderr.WriteString("mmablate: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSweepRunStatusCancel(t *testing.T) {
	t.Setenv(asMmablateEnv, "1")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(executortest.RunYAML(filepath.Join(dir, "shapes"), 0, 6)), 0o644); err != nil {
		t.Fatal(err)
	}
	sweep := filepath.Join(dir, "sweep.yaml")
	if err := os.WriteFile(sweep, []byte("name: cli\nbase: base.yaml\naxes:\n  train.lr: [0.001, 0.002]\nlabels: {train.lr: lr}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	got, err := runCLI("sweep", "run", sweep, "--out", out, "--parallel", "2")
	if err != nil {
		t.Fatalf("sweep run: %v\n%s", err, got)
	}
	d, err := ablations.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Manifest.Cells {
		if _, err := os.Stat(filepath.Join(d.RunDir(c.ID), experiments.DoneFile)); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	got, err = runCLI("sweep", "status", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Name, State string
		Step, Steps int
	}
	if err := json.Unmarshal([]byte(got), &rows); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if len(rows) != 2 || rows[0].Name != "lr=0.001,seed=0" || rows[0].State != "done" || rows[0].Step != 6 || rows[1].Steps != 6 {
		t.Errorf("status --json: %+v", rows)
	}
	// Nothing runs now: cancel has nothing to stop.
	if got, err := runCLI("sweep", "cancel", out); err != nil {
		t.Errorf("cancel: %v\n%s", err, got)
	}
}

// TestSweepStatusTable checks the table on a sweep with a done, a failed
// and a pending cell.
func TestSweepStatusTable(t *testing.T) {
	dir := t.TempDir()
	d := executortest.WriteSweep(t, dir, "table", []executortest.Cell{
		{Name: "res=32,seed=0", Config: "a"}, {Name: "res=64,seed=0", Config: "b"}, {Name: "res=128,seed=0", Config: "c"}})
	cells := d.Manifest.Cells
	run := d.RunDir(cells[0].ID)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	metrics := `{"step":2,"loss":3.5}` + "\n" + `{"step":4,"loss":2.125}` + "\n"
	for name, content := range map[string]string{experiments.DoneFile: "", experiments.MetricsFile: metrics} {
		if err := os.WriteFile(filepath.Join(run, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.MarkFailed(cells[1].ID, ablations.FailedInfo{Reason: "killed by signal 9 (killed)\nafter 2s", ExitCode: 137, Signal: "killed", Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := runCLI("sweep", "status", dir)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "sweep-status.golden", got)
}

func TestSweepRunUsage(t *testing.T) {
	dir := t.TempDir()
	executortest.WriteSweep(t, dir, "usage", []executortest.Cell{{Name: "a", Config: "a"}})
	sweep := filepath.Join(dir, "sweep.yaml")
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(executortest.RunYAML(filepath.Join(dir, "shapes"), 0, 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sweep, []byte("name: usage\nbase: base.yaml\naxes: {train.lr: [0.001]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "run", "x.yaml", "--executor", "k8s"}, `--executor "k8s": want local or slurm`},
		{[]string{"sweep", "run", "x.yaml", "--parallel", "0"}, "--parallel 0: want at least 1"},
		{[]string{"sweep", "run", "x.yaml", "--partition", "gpu"}, "--partition is for --executor slurm"},
		{[]string{"sweep", "run", "x.yaml", "--executor", "slurm", "--parallel", "2"}, "--parallel is for --executor local"},
		{[]string{"sweep", "run"}, "takes 1 argument(s), got 0"},
		{[]string{"sweep", "run", sweep, "--executor", "slurm", "--cpus-per-task", "0", "--out", filepath.Join(dir, "never")}, "--cpus-per-task 0: want at least 1"},
		{[]string{"sweep", "run", sweep, "--executor", "slurm", "--max-parallel", "-1", "--out", filepath.Join(dir, "never")}, "--max-parallel -1: want 0 (no cap) or more"},
		{[]string{"sweep", "status"}, "takes 1 argument(s), got 0"},
		{[]string{"sweep", "run-cell", dir, "abc", "--workers", "-1"}, "--workers -1: want at least 1"},
		{[]string{"sweep", "run-cell", dir, "abc", "--executor", "pbs"}, `--executor "pbs": want local or slurm`},
	} {
		_, err := runCLI(tt.args...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("a usage error wrote the sweep directory")
	}
	// Not a sweep directory: a plain error that says so.
	if _, err := runCLI("sweep", "status", t.TempDir()); !errors.Is(err, ablations.ErrNotSweepDir) {
		t.Errorf("status of an empty directory: err = %v", err)
	}
}
