package slurm

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
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

// fakeSweep is a three-cell sweep directory whose first cell is done.
func fakeSweep(t *testing.T) *ablations.Dir {
	t.Helper()
	d := executortest.WriteSweep(t, t.TempDir(), "fake", []executortest.Cell{
		{Name: "done", Config: "a"}, {Name: "b", Config: "b"}, {Name: "c", Config: "c"}})
	done := d.RunDir(d.Manifest.Cells[0].ID)
	if err := os.MkdirAll(done, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(done, experiments.DoneFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSubmitSweep(t *testing.T) {
	d := fakeSweep(t)
	script := filepath.Join(d.Path, "slurm", "cells-1.sbatch")
	report := filepath.Join(d.Path, "slurm", "report-1.sbatch")
	r := &fakeRunner{replies: map[string]reply{
		"sbatch --parsable " + script:                          {out: "42\n"},
		"sbatch --parsable --dependency=afterany:42 " + report: {out: "43\n"},
		"scontrol show job -o 42":                              {out: "JobId=44 ArrayJobId=42 ArrayTaskId=1 JobState=RUNNING Reason=None ExitCode=0:0\n"},
	}}
	c := NewClient(r)
	c.JobCompPath = filepath.Join(t.TempDir(), "absent.txt")
	e := &Executor{Client: c, Command: []string{"/bin/mmablate", "sweep", "run-cell"}, Report: []string{"/bin/mmablate", "report", d.Path},
		Resources: ablations.SlurmResources{CPUsPerTask: 2, MaxParallel: 2, Mem: "4G", Partition: "debug"}, Log: executortest.Quiet()}
	rec, err := e.Submit(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if rec.JobID != "42" || rec.ReportJobID != "43" || rec.Script != script {
		t.Errorf("record %+v", rec)
	}
	if got, err := executor.ReadRecord(d); err != nil || got.Executor != "slurm" || *got.Slurm != *rec {
		t.Errorf("executor.json %+v, %v", got, err)
	}
	// The cells not done, one id per line; the script runs run-cell with
	// the sweep's flags and reads the id from that file.
	ids := d.Manifest.Cells[1].ID + "\n" + d.Manifest.Cells[2].ID + "\n"
	if b, err := os.ReadFile(strings.TrimSuffix(script, ".sbatch") + ".tsv"); err != nil || string(b) != ids {
		t.Errorf("cells file %q, %v; want %q", b, err, ids)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array='0-1%2'", "#SBATCH --cpus-per-task='2'", "#SBATCH --mem='4G'", "#SBATCH --requeue",
		"exec '/bin/mmablate' 'sweep' 'run-cell' '--executor=slurm' '--workers=2' '--requeue-exit=75' '" + d.Path + "' \"${cell[@]}\""} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %q:\n%s", want, b)
		}
	}
	// Job 42 still runs: a second submission would run its cells twice.
	if _, err := e.Submit(context.Background(), d); err == nil || !strings.Contains(err.Error(), "job 42 of its last run still has tasks queued or running") {
		t.Errorf("second submission: err = %v", err)
	}
}

func TestSubmitNothingToDo(t *testing.T) {
	d := executortest.WriteSweep(t, t.TempDir(), "fake", []executortest.Cell{{Name: "done", Config: "a"}})
	run := d.RunDir(d.Manifest.Cells[0].ID)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, experiments.DoneFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{}
	rec, err := (&Executor{Client: NewClient(r), Log: executortest.Quiet()}).Submit(context.Background(), d)
	if rec != nil || err != nil || len(r.calls) != 0 {
		t.Errorf("got %+v, %v, calls %q; want nothing submitted", rec, err, r.calls)
	}
}

func TestSubmitErrorsSayWhatToDo(t *testing.T) {
	d := fakeSweep(t)
	t.Setenv("PATH", t.TempDir())
	_, err := (&Executor{Client: NewClient(ExecRunner{}), Command: []string{"mmablate"}, Log: executortest.Quiet()}).Submit(context.Background(), d)
	if want := "sbatch not found in PATH: install slurm-client or run scripts/slurm-local.sh start; or use --executor local"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("no sbatch: err = %v, want %q", err, want)
	}
	script := filepath.Join(d.Path, "slurm", "cells-2.sbatch") // cells-1 was written above
	r := &fakeRunner{replies: map[string]reply{"sbatch --parsable " + script: {stderr: "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n"}}}
	_, err = (&Executor{Client: NewClient(r), Command: []string{"mmablate"}, Log: executortest.Quiet()}).Submit(context.Background(), d)
	if err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller") || !strings.Contains(err.Error(), "is slurmctld running") {
		t.Errorf("controller down: err = %v", err)
	}
}

func TestMergeTaskState(t *testing.T) {
	tests := []struct {
		name       string
		disk       ablations.State
		diskReason string
		task       TaskState
		want       ablations.State
		reason     string
	}{
		{"done wins", ablations.Done, "", TaskState{ID: "1_0", State: Cancelled, SlurmState: "CANCELLED"}, ablations.Done, ""},
		{"queued", ablations.Pending, "", TaskState{ID: "1_0", State: Pending, SlurmState: "PENDING"}, ablations.Pending, ""},
		{"requeued after a failure", ablations.Failed, "old", TaskState{ID: "1_0", State: Pending, SlurmState: "PENDING"}, ablations.Pending, ""},
		{"running", ablations.Running, "", TaskState{ID: "1_0", State: Running, SlurmState: "RUNNING"}, ablations.Running, ""},
		{"run-cell's reason kept", ablations.Failed, "train.steps: -3", TaskState{ID: "1_0", State: Failed, SlurmState: "FAILED", ExitCode: 1}, ablations.Failed, "train.steps: -3"},
		{"killed", ablations.Running, "", TaskState{ID: "1_2", State: Failed, SlurmState: "FAILED", Signal: 9}, ablations.Failed, "slurm task 1_2 FAILED (killed by signal 9)"},
		{"out of memory", ablations.Failed, "stale", TaskState{ID: "1_0", State: Failed, SlurmState: "OUT_OF_MEMORY", ExitCode: 0, Signal: 9}, ablations.Failed, "slurm task 1_0 OUT_OF_MEMORY (killed by signal 9)"},
		{"timeout", ablations.Running, "", TaskState{ID: "1_0", State: Failed, SlurmState: "TIMEOUT", ExitCode: 75}, ablations.Failed, "slurm task 1_0 TIMEOUT (exit 75)"},
		{"cancelled", ablations.Pending, "", TaskState{ID: "1_0", State: Cancelled, SlurmState: "CANCELLED", Signal: 15}, executor.Cancelled, "slurm task 1_0 cancelled; running the sweep again resumes it"},
		{"completed without DONE", ablations.Pending, "", TaskState{ID: "1_0", State: Done, SlurmState: "COMPLETED"}, ablations.Failed, "slurm task 1_0 completed but run/DONE is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := executor.CellStatus{State: tt.disk, Reason: tt.diskReason}
			merge(&st, tt.task)
			if st.State != tt.want || st.Reason != tt.reason || st.SlurmState != tt.task.SlurmState {
				t.Errorf("got %s %q (%s), want %s %q", st.State, st.Reason, st.SlurmState, tt.want, tt.reason)
			}
		})
	}
}

func TestCancelSweep(t *testing.T) {
	d := fakeSweep(t)
	r := &fakeRunner{replies: map[string]reply{"scancel 42": {}, "scancel 43": {}}}
	e := &Executor{Client: NewClient(r), Log: executortest.Quiet()}
	if err := e.Cancel(context.Background(), d); err == nil || !strings.Contains(err.Error(), "was not submitted to Slurm") {
		t.Errorf("never submitted: err = %v", err)
	}
	if err := executor.WriteRecord(d, executor.Record{Executor: "slurm", Slurm: &executor.SlurmRecord{JobID: "42", ReportJobID: "43"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Cancel(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.calls, ";"); got != "scancel 42;scancel 43" {
		t.Errorf("calls %q", got)
	}
	var ce *CommandError
	r.replies["scancel 42"] = reply{stderr: "scancel: error: Kill job error on job id 42: Invalid job id specified\n"}
	if err := e.Cancel(context.Background(), d); !errors.As(err, &ce) {
		t.Errorf("scancel failing: err = %v", err)
	}
}

// TestReconcileSettlesAKilledTask: the job has ended; the task killed by a
// signal left its RUNNING and no FAILED.
func TestReconcileSettlesAKilledTask(t *testing.T) {
	d := fakeSweep(t)
	cells := d.Manifest.Cells
	jobDir := filepath.Join(d.Path, "slurm")
	if err := os.MkdirAll(jobDir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(jobDir, "cells-1.sbatch")
	if err := os.WriteFile(strings.TrimSuffix(script, ".sbatch")+".tsv", []byte(cells[1].ID+"\n"+cells[2].ID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := executor.WriteRecord(d, executor.Record{Executor: "slurm", Slurm: &executor.SlurmRecord{JobID: "42", Script: script}}); err != nil {
		t.Fatal(err)
	}
	if err := d.MarkRunning(cells[1].ID, ablations.RunningInfo{PID: 1 << 30, Host: proc.Hostname(), SlurmJob: "42_0"}); err != nil {
		t.Fatal(err)
	}
	r := &fakeRunner{replies: map[string]reply{"scontrol show job -o 42": {out: "" +
		"JobId=43 ArrayJobId=42 ArrayTaskId=0 JobState=FAILED Reason=NonZeroExitCode ExitCode=0:9\n" +
		"JobId=42 ArrayJobId=42 ArrayTaskId=1 JobState=RUNNING Reason=None ExitCode=0:0\n"}}}
	c := NewClient(r)
	c.JobCompPath = filepath.Join(t.TempDir(), "absent.txt")
	e := &Executor{Client: c, Log: executortest.Quiet()}
	if _, busy, err := e.Reconcile(context.Background(), d); !busy || err != nil {
		t.Fatalf("task 1 running: busy %v, err %v", busy, err)
	}
	if cs, _ := d.CellState(cells[1].ID); cs.Running == nil || cs.Failed != nil {
		t.Fatalf("settled while the job runs: %+v", cs)
	}
	r.replies["scontrol show job -o 42"] = reply{out: "" +
		"JobId=43 ArrayJobId=42 ArrayTaskId=0 JobState=FAILED Reason=NonZeroExitCode ExitCode=0:9\n" +
		"JobId=42 ArrayJobId=42 ArrayTaskId=1 JobState=CANCELLED Reason=None ExitCode=0:15\n"}
	sts, busy, err := e.Reconcile(context.Background(), d)
	se, ok := errors.AsType[*executor.SweepError](err)
	if busy || !ok || len(se.Failed) != 2 || len(sts) != 3 {
		t.Fatalf("busy %v, err %v, %d statuses", busy, err, len(sts))
	}
	cs, err := d.CellState(cells[1].ID)
	if err != nil || cs.State != ablations.Failed || cs.Running != nil || cs.Failed.Reason != "slurm task 42_0 FAILED (killed by signal 9)" || cs.Failed.Executor != "slurm" {
		t.Errorf("killed cell: %+v %+v, %v", cs, cs.Failed, err)
	}
	if cs, _ := d.CellState(cells[2].ID); cs.State != ablations.Failed || !strings.Contains(cs.Failed.Reason, "cancelled") {
		t.Errorf("cancelled cell: %+v", cs)
	}
}

// TestWaitLogsProgress: while the job runs, Wait's progress line counts
// the cells' states (Reconcile reads none while the job is busy).
func TestWaitLogsProgress(t *testing.T) {
	d := fakeSweep(t)
	script := filepath.Join(d.Path, "slurm", "cells-1.sbatch")
	r := &fakeRunner{replies: map[string]reply{
		"sbatch --parsable " + script: {out: "42\n"},
		"scontrol show job -o 42":     {out: "JobId=44 ArrayJobId=42 ArrayTaskId=1 JobState=RUNNING Reason=None ExitCode=0:0\n"},
	}}
	c := NewClient(r)
	c.JobCompPath = filepath.Join(t.TempDir(), "absent.txt")
	var logs bytes.Buffer
	e := &Executor{Client: c, Command: []string{"/bin/mmablate", "sweep", "run-cell"}, Poll: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := e.Submit(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Wait(ctx, d); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v; want it to stop waiting at the deadline", err)
	}
	if want := "pending=1 running=1 done=1"; !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, logs.String())
	}
}
