package executor_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
	"github.com/mmablate/mmablate/ablations/executor/executortest"
	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/internal/proc"
)

func TestRunCellRecords(t *testing.T) {
	ctx := context.Background()
	d := executortest.WriteSweep(t, t.TempDir(), "records", []executortest.Cell{
		{Name: "busy", Config: "a"}, {Name: "done", Config: "b"}, {Name: "bad", Config: "train: {steps: -1}\n"}})
	busy, done, bad := d.Manifest.Cells[0].ID, d.Manifest.Cells[1].ID, d.Manifest.Cells[2].ID
	opts := executor.RunCellOptions{Executor: "local", Log: executortest.Quiet()}

	// A live process here runs the cell: refused, its records untouched.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()
	if err := d.MarkRunning(busy, ablations.RunningInfo{PID: sleep.Process.Pid, Host: proc.Hostname(), Executor: "local"}); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkFailed(busy, ablations.FailedInfo{Reason: "earlier", Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	err := executor.RunCell(ctx, d, busy, opts)
	if err == nil || !strings.Contains(err.Error(), "is already running") {
		t.Errorf("busy cell: err = %v", err)
	}
	if st, _ := d.CellState(busy); st.Running == nil || st.Failed == nil || st.Failed.Reason != "earlier" {
		t.Errorf("busy cell's records changed: %+v", st)
	}

	// A done cell is left alone, a stale FAILED cleared.
	if err := os.MkdirAll(d.RunDir(done), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.RunDir(done), experiments.DoneFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkFailed(done, ablations.FailedInfo{Reason: "stale", Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := executor.RunCell(ctx, d, done, opts); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.CellState(done); st.State != ablations.Done || st.Failed != nil {
		t.Errorf("done cell: %+v", st)
	}

	// A failing cell: FAILED names the key, counts attempts, RUNNING goes.
	for attempt := 1; attempt <= 2; attempt++ {
		if err := executor.RunCell(ctx, d, bad, opts); err == nil {
			t.Fatal("bad config ran")
		}
		st, err := d.CellState(bad)
		if err != nil || st.State != ablations.Failed || st.Running != nil || st.Failed.Attempts != attempt ||
			st.Failed.ExitCode != 1 || st.Failed.Executor != "local" || !strings.Contains(st.Failed.Reason, "train.steps") {
			t.Errorf("attempt %d: %+v %+v, %v", attempt, st, st.Failed, err)
		}
	}
	if err := executor.RunCell(ctx, d, "0123456789ab", opts); err == nil || !strings.Contains(err.Error(), "has no cell") {
		t.Errorf("unknown cell: err = %v", err)
	}
}

func TestMainExitStatus(t *testing.T) {
	d := executortest.WriteSweep(t, t.TempDir(), "main", []executortest.Cell{{Name: "bad", Config: "train: {steps: -1}\n"}})
	var stderr strings.Builder
	if code := executor.Main(context.Background(), d.Path, d.Manifest.Cells[0].ID, executor.RunCellOptions{LogToCell: true}, &stderr); code != 1 {
		t.Errorf("failed cell: exit %d, want 1", code)
	}
	log, err := os.ReadFile(filepath.Join(d.CellDir(d.Manifest.Cells[0].ID), ablations.LogFile))
	if err != nil || !strings.Contains(string(log), "train.steps") || !strings.Contains(stderr.String(), "train.steps") {
		t.Errorf("the reason is not in both cell.log and stderr:\n%s\n--\n%s", log, stderr.String())
	}
	if code := executor.Main(context.Background(), t.TempDir(), "0123456789ab", executor.RunCellOptions{}, io.Discard); code != 1 {
		t.Errorf("not a sweep directory: exit %d, want 1", code)
	}
}
