package slurm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
)

// Executor runs a sweep directory's cells as one Slurm array job: task i
// runs `run-cell DIR ID` for the i-th cell not yet done (the ids travel in
// the job's cells file, never in shell code). It submits and returns; Wait
// follows the job to its end.
type Executor struct {
	Client *Client
	// Resources are the job's: the sweep file's slurm: section with any
	// command-line overrides already applied.
	Resources ablations.SlurmResources
	// Command is the run-cell argv before its flags, DIR and ID; nil:
	// os.Executable() sweep run-cell.
	Command []string
	// Report, when set, is submitted as a plain job that runs after every
	// task has ended, however (afterany): e.g. mmablate report DIR.
	Report []string
	// Poll is Wait's interval (0: 5 s).
	Poll time.Duration
	Log  *slog.Logger
}

var _ executor.Executor = (*Executor)(nil)

func (e *Executor) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// Run submits the sweep (see Submit) and returns once it is queued.
func (e *Executor) Run(ctx context.Context, d *ablations.Dir) error {
	_, err := e.Submit(ctx, d)
	return err
}

// Busy reports whether the sweep's last Slurm job still has a task queued
// or running (false when the sweep was never submitted), so that another
// executor does not run the same cells at the same time.
func (e *Executor) Busy(ctx context.Context, d *ablations.Dir) (bool, error) {
	rec, err := executor.ReadRecord(d)
	if err != nil || rec == nil || rec.Slurm == nil {
		return false, err
	}
	tasks, err := e.Client.Status(ctx, rec.Slurm.JobID)
	if errors.Is(err, ErrUnknownJob) {
		return false, nil
	}
	if err != nil {
		return false, explain(err)
	}
	for _, t := range tasks {
		if !t.State.Final() {
			return true, nil
		}
	}
	return false, nil
}

// Submit writes DIR/slurm/cells-N.sbatch and .tsv for the cells not yet
// done, submits the array job (and the report job, if any), and records
// both in DIR/executor.json. With every cell done it submits nothing and
// returns a nil record. A sweep whose previous job still has tasks queued or
// running is refused: two jobs would run the same cells; one that has ended
// is settled first (see Reconcile).
func (e *Executor) Submit(ctx context.Context, d *ablations.Dir) (*executor.SlurmRecord, error) {
	log := e.log()
	dir, err := filepath.Abs(d.Path)
	if err != nil {
		return nil, err
	}
	prev, err := executor.ReadRecord(d)
	if err != nil {
		return nil, err
	}
	// The last job's failures are settled first, so that the attempts
	// they cost are counted when the cells run again.
	if _, busy, err := e.Reconcile(ctx, d); busy {
		return nil, fmt.Errorf("sweep %s: job %s of its last run still has tasks queued or running; wait for it or `mmablate sweep cancel %s`", dir, prev.Slurm.JobID, dir)
	} else if _, failed := errors.AsType[*executor.SweepError](err); err != nil && !failed {
		return nil, err
	}
	if prev.LocalRunning() {
		return nil, fmt.Errorf("sweep %s: a local executor (pid %d) is running it; `mmablate sweep cancel %s` first", dir, prev.Local.PID, dir)
	}
	var cells [][]string
	for _, c := range d.Manifest.Cells {
		if !executor.Done(d, c.ID) {
			cells = append(cells, []string{c.ID})
		}
	}
	if len(cells) == 0 {
		log.Info("every cell is done; nothing to submit", "dir", dir)
		return nil, nil
	}
	command := e.Command
	if command == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the mmablate binary for run-cell: %w", err)
		}
		command = []string{exe, "sweep", "run-cell"}
	}
	r := e.Resources
	requeue := r.RequeueExit
	if requeue == 0 {
		requeue = executor.ExitInterrupted
	}
	command = append(command[:len(command):len(command)],
		"--executor=slurm", "--workers="+strconv.Itoa(max(1, r.CPUsPerTask)), "--requeue-exit="+strconv.Itoa(requeue), dir)
	jobDir := filepath.Join(dir, "slurm")
	base, err := freeBase(jobDir, "cells")
	if err != nil {
		return nil, err
	}
	job := Job{
		Name: "mmablate-" + d.Manifest.Name, Command: command, Cells: cells, LogDir: filepath.Join(jobDir, "logs"),
		MaxParallel: r.MaxParallel, CPUsPerTask: r.CPUsPerTask, Mem: r.Mem, Time: r.Time,
		Partition: r.Partition, Account: r.Account, QOS: r.QOS, Gres: r.Gres,
	}
	script, err := WriteJob(jobDir, base, job)
	if err != nil {
		return nil, err
	}
	rec := &executor.SlurmRecord{Script: script}
	if rec.JobID, err = e.Client.Submit(ctx, script, SubmitOptions{}); err != nil {
		return nil, explain(err)
	}
	log.Info("submitted", "job", rec.JobID, "cells", len(cells), "script", script)
	// Recorded before the report job, so that a failure there still leaves
	// the array job findable by status and cancel.
	if err := executor.WriteRecord(d, executor.Record{Executor: "slurm", Started: time.Now().UTC(), Slurm: rec}); err != nil {
		return nil, err
	}
	if e.Report != nil {
		report, err := WriteJob(jobDir, strings.Replace(base, "cells", "report", 1), Job{
			Name: "mmablate-" + d.Manifest.Name + "-report", Command: e.Report, LogDir: job.LogDir,
			Partition: r.Partition, Account: r.Account, QOS: r.QOS, Time: r.Time,
		})
		if err != nil {
			return rec, err
		}
		if rec.ReportJobID, err = e.Client.Submit(ctx, report, SubmitOptions{AfterAny: []string{rec.JobID}}); err != nil {
			return rec, explain(err)
		}
		log.Info("submitted the report", "job", rec.ReportJobID, "after", rec.JobID)
		if err := executor.WriteRecord(d, executor.Record{Executor: "slurm", Started: time.Now().UTC(), Slurm: rec}); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// freeBase picks the first prefix-N whose script does not exist, so that a
// new submission never rewrites the cells file of a job that may still run.
func freeBase(dir, prefix string) (string, error) {
	for n := 1; ; n++ {
		base := prefix + "-" + strconv.Itoa(n)
		_, err := os.Stat(filepath.Join(dir, base+".sbatch"))
		if errors.Is(err, os.ErrNotExist) {
			return base, nil
		}
		if err != nil {
			return "", err
		}
	}
}

// explain adds what to do to the errors a user meets first.
func explain(err error) error {
	mt, missing := errors.AsType[*MissingToolError](err)
	switch {
	case missing && mt.Name == "sbatch":
		return fmt.Errorf("%w; or use --executor local", err)
	case strings.Contains(err.Error(), "Unable to contact slurm controller"):
		return fmt.Errorf("%w (is slurmctld running, and does SLURM_CONF name its config? scripts/slurm-local.sh start runs a local one)", err)
	}
	return err
}

// cellsOf reads the cells file beside a submitted script: task index → id.
func cellsOf(script string) ([]string, error) {
	path := strings.TrimSuffix(script, ".sbatch") + ".tsv"
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		id, _, _ := strings.Cut(sc.Text(), "\t")
		if id == "" {
			return nil, fmt.Errorf("%s:%d: empty line", path, n)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// Status merges each cell's directory (DONE, FAILED, RUNNING, metrics)
// with Slurm's state of its task in the last submitted job: a cell not
// done takes its task's state, and a task that failed, was cancelled or
// killed gives the reason when the cell could not write one.
func (e *Executor) Status(ctx context.Context, d *ablations.Dir) ([]executor.CellStatus, error) {
	out, err := executor.DiskStatuses(d)
	if err != nil {
		return nil, err
	}
	rec, err := executor.ReadRecord(d)
	if err != nil || rec == nil || rec.Slurm == nil {
		return out, err
	}
	ids, err := cellsOf(rec.Slurm.Script)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", rec.Slurm.JobID, err)
	}
	tasks, err := e.Client.Status(ctx, rec.Slurm.JobID)
	if err != nil {
		return nil, explain(err)
	}
	byCell := make(map[string]TaskState, len(tasks))
	for _, t := range tasks {
		if t.TaskID >= 0 && t.TaskID < len(ids) {
			byCell[ids[t.TaskID]] = t
		}
	}
	for i := range out {
		t, ok := byCell[out[i].Cell.ID]
		if !ok {
			continue
		}
		merge(&out[i], t)
	}
	return out, nil
}

// merge applies task t's state to a cell's status read from disk.
func merge(st *executor.CellStatus, t TaskState) {
	st.SlurmState = t.SlurmState
	if st.State == ablations.Done {
		return
	}
	switch t.State {
	case Pending:
		// A requeued or retried task waits again: its old FAILED is history.
		st.State, st.Running, st.Reason = ablations.Pending, nil, ""
	case Running:
		st.State, st.Reason = ablations.Running, ""
	case Done:
		// COMPLETED without DONE: run-cell exited 0 but the cell did not
		// finish (another process removed DONE, or it ran elsewhere).
		if st.State != ablations.Failed {
			st.State, st.Reason = ablations.Failed, "slurm task "+t.ID+" completed but run/DONE is missing"
		}
	case Failed, Cancelled:
		st.State, st.Running = ablations.Failed, nil
		if t.State == Cancelled {
			st.State = executor.Cancelled
		}
		// run-cell's own reason (FAILED) beats Slurm's generic one, unless
		// Slurm ended the task itself (timeout, memory, node, signal).
		if st.Reason == "" || t.Signal != 0 || t.SlurmState != "FAILED" {
			st.Reason = taskReason(t)
		}
	}
}

// taskReason says why Slurm ended a task.
func taskReason(t TaskState) string {
	if t.State == Cancelled {
		// Its exit code and reason, if any, are an earlier run's.
		return "slurm task " + t.ID + " cancelled; running the sweep again resumes it"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "slurm task %s %s", t.ID, t.SlurmState)
	switch {
	case t.Signal != 0:
		fmt.Fprintf(&b, " (killed by signal %d)", t.Signal)
	case t.ExitCode != 0:
		fmt.Fprintf(&b, " (exit %d)", t.ExitCode)
	}
	if t.Reason != "" && t.Reason != "NonZeroExitCode" {
		fmt.Fprintf(&b, ": %s", t.Reason)
	}
	return b.String()
}

// Wait polls the job until every task has ended, then settles the sweep
// directory (see Reconcile) and returns a *executor.SweepError listing the
// failed and cancelled cells, or nil.
func (e *Executor) Wait(ctx context.Context, d *ablations.Dir) error {
	poll := e.Poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	log := e.log()
	lastReport := time.Time{}
	for {
		_, busy, err := e.Reconcile(ctx, d)
		if !busy {
			return err
		}
		if time.Since(lastReport) >= 10*time.Second {
			// Reconcile reads no statuses while the job is busy.
			sts, err := e.Status(ctx, d)
			if err != nil {
				log.Warn("cannot read the sweep's progress", "err", err)
			}
			n := map[ablations.State]int{}
			for _, st := range sts {
				n[st.State]++
			}
			log.Info("sweep progress", "pending", n[ablations.Pending], "running", n[ablations.Running], "done", n[ablations.Done],
				"failed", n[ablations.Failed], "cancelled", n[executor.Cancelled])
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting (the job runs on; `mmablate sweep status %s`): %w", d.Path, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Reconcile reads every cell's status and whether the sweep's last job
// still has a task queued or running (busy). Once it has none, it settles
// the sweep directory: a cell that Slurm failed or cancelled without the
// cell writing why (a kill, a time or memory limit) gets its FAILED, and the
// RUNNING records of tasks that died are removed, so that the next run, by
// either executor, takes the cell up again. Then err is a
// *executor.SweepError naming the failed and cancelled cells, if any.
func (e *Executor) Reconcile(ctx context.Context, d *ablations.Dir) (sts []executor.CellStatus, busy bool, err error) {
	if busy, err = e.Busy(ctx, d); err != nil || busy {
		return nil, busy, err
	}
	if sts, err = e.Status(ctx, d); err != nil {
		return nil, false, err
	}
	return sts, false, settle(d, sts)
}

// settle writes the FAILED records Slurm's final states imply and removes
// the RUNNING records of Slurm tasks, which have all ended.
func settle(d *ablations.Dir, sts []executor.CellStatus) error {
	var failed []executor.FailedCell
	for _, st := range sts {
		id := st.Cell.ID
		cs, err := d.CellState(id)
		if err != nil {
			return err
		}
		if cs.Running != nil && cs.Running.SlurmJob != "" {
			if err := d.ClearRunning(id); err != nil {
				return err
			}
		}
		if st.State != ablations.Failed && st.State != executor.Cancelled {
			continue
		}
		failed = append(failed, executor.FailedCell{Name: st.Cell.Name, Reason: st.Reason, Log: st.Log})
		if cs.Failed != nil && cs.Running == nil {
			continue // run-cell said why
		}
		attempts := 1
		if cs.Failed != nil {
			attempts = cs.Failed.Attempts + 1
		}
		f := ablations.FailedInfo{Reason: st.Reason, ExitCode: -1, Time: executor.Now(), Attempts: attempts, Executor: "slurm"}
		if err := d.MarkFailed(id, f); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return &executor.SweepError{Failed: failed}
	}
	return nil
}

// Cancel cancels the sweep's last array job and its report job.
func (e *Executor) Cancel(ctx context.Context, d *ablations.Dir) error {
	rec, err := executor.ReadRecord(d)
	if err != nil {
		return err
	}
	if rec == nil || rec.Slurm == nil {
		return fmt.Errorf("sweep %s was not submitted to Slurm (no slurm job in %s)", d.Path, filepath.Join(d.Path, ablations.ExecutorFile))
	}
	for _, id := range []string{rec.Slurm.JobID, rec.Slurm.ReportJobID} {
		if id == "" {
			continue
		}
		if err := e.Client.Cancel(ctx, id); err != nil {
			return explain(err)
		}
		e.log().Info("cancelled", "job", id)
	}
	return nil
}
