package slurm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
	"github.com/mmablate/mmablate/ablations/executor/executortest"
	"github.com/mmablate/mmablate/ablations/local"
	"github.com/mmablate/mmablate/experiments"
)

// world is the shapes world the sweep tests' cells share.
var world string

// Slurm's tasks run this binary as `run-cell` (see testCommand).
func TestMain(m *testing.M) { executortest.Main(m, &world) }

// testCommand makes Slurm's tasks run this test binary as run-cell: sbatch
// passes the submitting process's environment on to the tasks.
func testCommand(t *testing.T) []string {
	t.Setenv(executortest.HelperEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}
}

// TestSweepOnLocalCluster runs a three-cell sweep through the slurm
// executor. One task's process gets SIGTERM mid-training: it exits 75, Slurm
// requeues it and the rerun resumes the cell. Another's gets SIGKILL: the
// failure is reported for that cell alone. The cells that finish end with
// the bytes a local-executor run of the same cells gives.
func TestSweepOnLocalCluster(t *testing.T) {
	startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cells := []executortest.Cell{
		{Name: "a", Config: executortest.RunYAML(world, 1, 20)},
		// Long enough to be caught running and stopped.
		{Name: "requeued", Config: executortest.RunYAML(world, 2, 200)},
		// Long enough to be caught running and killed.
		{Name: "victim", Config: executortest.RunYAML(world, 3, 100000)},
	}
	d := executortest.WriteSweep(t, t.TempDir(), "slurm-sweep", cells)
	ref := executortest.WriteSweep(t, t.TempDir(), "local-reference", cells[:2])
	// The reference runs with the threads the Slurm tasks get: one worker
	// each (cpus_per_task 1), so the bytes must match.
	loc := &local.Executor{Parallel: 2, Workers: 1, Log: executortest.Quiet(), Command: executortest.Command()}
	if err := loc.Run(ctx, ref); err != nil {
		t.Fatal(err)
	}

	e := &Executor{Client: NewClient(ExecRunner{}), Command: testCommand(t), Poll: 250 * time.Millisecond, Log: executortest.Quiet(),
		Resources: ablations.SlurmResources{CPUsPerTask: 1, MaxParallel: 3, Time: "00:05:00"}}
	rec, err := e.Submit(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil || rec.JobID == "" {
		t.Fatalf("record %+v", rec)
	}
	if got, err := executor.ReadRecord(d); err != nil || got == nil || got.Slurm == nil || got.Slurm.JobID != rec.JobID {
		t.Fatalf("executor.json: %+v, %v", got, err)
	}
	if _, err := e.Submit(ctx, d); err == nil || !strings.Contains(err.Error(), "still has task") {
		t.Errorf("second submission while the job runs: err = %v", err)
	}

	requeued, victim := d.Manifest.Cells[1], d.Manifest.Cells[2]
	if err := syscall.Kill(waitRunning(ctx, t, d, requeued.ID), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(waitRunning(ctx, t, d, victim.ID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = e.Wait(ctx, d)
	se, ok := errors.AsType[*executor.SweepError](err)
	if !ok || len(se.Failed) != 1 || se.Failed[0].Name != "victim" {
		t.Fatalf("Wait: %v; want the victim alone failed", err)
	}
	if !strings.Contains(se.Failed[0].Reason, "signal 9") {
		t.Errorf("victim's reason %q, want the signal", se.Failed[0].Reason)
	}
	sts, err := e.Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []ablations.State{ablations.Done, ablations.Done, ablations.Failed} {
		if sts[i].State != want {
			t.Errorf("%s: %s (%s, %s), want %s", sts[i].Cell.Name, sts[i].State, sts[i].SlurmState, sts[i].Reason, want)
		}
	}
	if sts[2].SlurmState != "FAILED" {
		t.Errorf("victim's Slurm state %q, want FAILED", sts[2].SlurmState)
	}
	cs, err := d.CellState(victim.ID)
	if err != nil || cs.State != ablations.Failed || cs.Running != nil || cs.Failed.Executor != "slurm" {
		t.Errorf("victim on disk: %+v, %v; want FAILED written and RUNNING gone", cs, err)
	}
	if log, err := os.ReadFile(filepath.Join(d.CellDir(requeued.ID), ablations.LogFile)); err != nil ||
		!bytes.Contains(log, []byte("cell interrupted")) || !bytes.Contains(log, []byte("resuming")) {
		t.Errorf("the requeued cell was not interrupted and resumed (%v):\n%s", err, log)
	}
	for i, c := range ref.Manifest.Cells {
		for _, name := range []string{experiments.FinalWeightsFile, experiments.EvalFile} {
			want := readSum(t, filepath.Join(ref.RunDir(c.ID), name))
			if got := readSum(t, filepath.Join(d.RunDir(d.Manifest.Cells[i].ID), name)); got != want {
				t.Errorf("%s %s: sha256 %x under Slurm, %x locally", c.Name, name, got, want)
			}
		}
		// Under Slurm run-cell appends its log to cell.log too.
		if b, _ := os.ReadFile(filepath.Join(d.CellDir(c.ID), ablations.LogFile)); !bytes.Contains(b, []byte("run-cell (slurm "+rec.JobID+"_")) {
			t.Errorf("%s: cell.log lacks the slurm task's header:\n%s", c.Name, b)
		}
	}
}

// waitRunning waits until cell id's RUNNING names a process that has begun
// training, and returns its pid.
func waitRunning(ctx context.Context, t *testing.T, d *ablations.Dir, id string) int {
	t.Helper()
	for {
		st, err := d.CellState(id)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := executor.ReadProgress(d.RunDir(id)); st.Running != nil && p.Step > 0 {
			if st.Running.SlurmJob == "" {
				t.Fatalf("RUNNING %+v names no slurm task", st.Running)
			}
			return st.Running.PID
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cell %s never started training: %+v", id, st)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
