package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
	"github.com/mmablate/mmablate/ablations/executor/executortest"
	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/internal/proc"
)

// world is the shapes world every test cell shares, made by the first cell.
var world string

func TestMain(m *testing.M) { executortest.Main(m, &world) }

// testExecutor runs cells in this test binary, with env added.
func testExecutor(parallel int, env ...string) *Executor {
	return &Executor{Parallel: parallel, Workers: 1, Log: executortest.Quiet(), Command: executortest.Command(env...)}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFailuresAreIsolatedAndRetried(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(executortest.RunYAML(world, 2, 8), "steps: 8", "steps: -3", 1)
	d := executortest.WriteSweep(t, dir, "faults", []executortest.Cell{
		{Name: "ok", Config: executortest.RunYAML(world, 1, 8)},
		{Name: "bad-config", Config: bad},
		{Name: "killed", Config: executortest.RunYAML(world, 3, 8)},
		{Name: "panics", Config: executortest.RunYAML(world, 4, 8)},
	})
	ids := d.Manifest.Cells
	ctx := context.Background()
	err := testExecutor(2, executortest.KillEnv+"="+ids[2].ID, executortest.PanicEnv+"="+ids[3].ID).Run(ctx, d)
	se, ok := errors.AsType[*executor.SweepError](err)
	if !ok {
		t.Fatalf("err = %v, want a SweepError", err)
	}
	if len(se.Failed) != 3 {
		t.Fatalf("failed cells %+v, want 3", se.Failed)
	}
	for _, want := range []string{"bad-config: ", "train.steps", "killed: killed by signal 9", "panics: exit status 2: panic: executortest: injected panic", "cell.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("summary lacks %q:\n%v", want, err)
		}
	}
	wantStates := []ablations.State{ablations.Done, ablations.Failed, ablations.Failed, ablations.Failed}
	sts, err := (&Executor{}).Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range sts {
		if st.State != wantStates[i] {
			t.Errorf("%s: state %s (%s), want %s", st.Cell.Name, st.State, st.Reason, wantStates[i])
		}
		if _, err := os.Stat(filepath.Join(st.Dir, ablations.RunningFile)); err == nil {
			t.Errorf("%s: RUNNING left behind", st.Cell.Name)
		}
	}
	if sts[0].Step != 8 || sts[0].Steps != 8 || sts[0].Loss <= 0 {
		t.Errorf("ok: step %d/%d loss %v, want 8/8 and a loss", sts[0].Step, sts[0].Steps, sts[0].Loss)
	}
	if cs, _ := d.CellState(ids[2].ID); cs.Failed == nil || cs.Failed.Signal != "killed" || cs.Failed.ExitCode != 137 || cs.Failed.Attempts != 1 {
		t.Errorf("killed: FAILED %+v", cs.Failed)
	}
	okFinal := readFile(t, filepath.Join(d.RunDir(ids[0].ID), experiments.FinalWeightsFile))
	okLog := readFile(t, sts[0].Log)

	// Again without the faults: the done cell is skipped, the killed and
	// panicking ones now finish, the bad config fails again (attempt 2).
	err = testExecutor(2).Run(ctx, d)
	se, ok = errors.AsType[*executor.SweepError](err)
	if !ok || len(se.Failed) != 1 || se.Failed[0].Name != "bad-config" {
		t.Fatalf("second run: err = %v, want bad-config alone failed", err)
	}
	sts, err = (&Executor{}).Status(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []ablations.State{ablations.Done, ablations.Failed, ablations.Done, ablations.Done} {
		if sts[i].State != want {
			t.Errorf("second run: %s: %s (%s), want %s", sts[i].Cell.Name, sts[i].State, sts[i].Reason, want)
		}
	}
	if sts[1].Attempts != 2 {
		t.Errorf("bad-config: attempts %d, want 2", sts[1].Attempts)
	}
	if !bytes.Equal(readFile(t, sts[0].Log), okLog) {
		t.Error("the done cell ran again")
	}
	if !bytes.Equal(readFile(t, filepath.Join(d.RunDir(ids[0].ID), experiments.FinalWeightsFile)), okFinal) {
		t.Error("the done cell's weights changed")
	}
}

// TestResumeAfterInterruption stops a sweep mid-training, as Ctrl-C does,
// and checks the next run ends with the bytes of an uninterrupted one.
func TestResumeAfterInterruption(t *testing.T) {
	const steps = 120
	cfg := executortest.RunYAML(world, 7, steps)
	ref := t.TempDir()
	rd := executortest.WriteSweep(t, ref, "reference", []executortest.Cell{{Name: "c", Config: cfg}})
	if err := testExecutor(1).Run(context.Background(), rd); err != nil {
		t.Fatal(err)
	}
	want := readFile(t, filepath.Join(rd.RunDir(rd.Manifest.Cells[0].ID), experiments.FinalWeightsFile))

	dir := t.TempDir()
	d := executortest.WriteSweep(t, dir, "interrupted", []executortest.Cell{{Name: "c", Config: cfg}})
	c := d.Manifest.Cells[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the cell is past its first checkpoint (step 4).
		for {
			if p, _ := executor.ReadProgress(d.RunDir(c.ID)); p.Step >= 6 {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err := testExecutor(1).Run(ctx, d)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	st, err := executor.DiskStatus(d, c)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != ablations.Pending || st.Step >= steps {
		t.Fatalf("after the interruption: %s at step %d, want pending before step %d (reason %q)", st.State, st.Step, steps, st.Reason)
	}
	if err := testExecutor(1).Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, filepath.Join(d.RunDir(c.ID), experiments.FinalWeightsFile))
	if !bytes.Equal(got, want) {
		t.Error("resumed cell's final.safetensors differs from the uninterrupted run's")
	}
	if !strings.Contains(string(readFile(t, st.Log)), "resuming") {
		t.Error("the second run did not resume")
	}
}

func TestCancelSignalsLocalProcesses(t *testing.T) {
	dir := t.TempDir()
	d := executortest.WriteSweep(t, dir, "cancel", []executortest.Cell{{Name: "a", Config: "a"}, {Name: "b", Config: "b"}})
	b := d.Manifest.Cells[1]
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd
	}
	exe, cell := start(), start()
	if err := executor.WriteRecord(d, executor.Record{Executor: "local", Local: &executor.LocalRecord{PID: exe.Process.Pid, Host: proc.Hostname()}}); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkRunning(b.ID, ablations.RunningInfo{PID: cell.Process.Pid, Host: proc.Hostname()}); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.CellState(b.ID); st.State != ablations.Running {
		t.Errorf("cell with a live RUNNING: %s, want running", st.State)
	}
	if err := testExecutor(1).Run(context.Background(), d); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("already being run by pid %d", exe.Process.Pid)) {
		t.Errorf("a second executor on the sweep: err = %v", err)
	}
	if err := (&Executor{Log: executortest.Quiet()}).Cancel(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{exe, cell} {
		err := cmd.Wait()
		if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ProcessState.String() != "signal: terminated" {
			t.Errorf("pid %d: %v, want terminated by SIGTERM", cmd.Process.Pid, err)
		}
	}
	// RUNNING of a dead process: pending again.
	if st, _ := d.CellState(b.ID); st.State != ablations.Pending {
		t.Errorf("cell with a stale RUNNING: %s, want pending", st.State)
	}
}
