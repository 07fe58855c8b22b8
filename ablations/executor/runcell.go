package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/internal/proc"
)

// ExitInterrupted is run-cell's exit status when a signal stopped the cell
// at a checkpoint: Slurm requeues a task that exits with it (RequeueExit),
// and the local executor leaves the cell pending for the next run.
const ExitInterrupted = ablations.DefaultRequeueExit

// RunCellOptions are run-cell's settings.
type RunCellOptions struct {
	// Workers, when > 0, sets train.threads.workers (and train.threads.blas
	// to 1) so that parallel cells split the cores. Threads change the bits
	// of a run but not the cell's id; a resumed run keeps the threads it
	// started with, so that it ends as an uninterrupted run would.
	Workers int
	// Executor names who started the process: "local" or "slurm".
	Executor string
	// SlurmJob is the array task running the cell ("12_3"), if any.
	SlurmJob string
	Log      *slog.Logger
	// Bar, when set, gets the training progress bar (a terminal).
	Bar io.Writer
	// InterruptExit is Main's exit status after an interruption (0:
	// ExitInterrupted); a Slurm cluster requeues on its RequeueExit.
	InterruptExit int
	// LogToCell makes Main append its log to the cell's cell.log as well as
	// stderr: under Slurm the process's own output goes to the task's log.
	LogToCell bool
}

// RunCell trains cell id into its run directory, or resumes it when the run
// directory holds a run; a finished cell is left alone. It clears FAILED,
// counting the attempt, keeps RUNNING while it works, and on an error (a
// panic of this goroutine included) writes FAILED with the reason. A
// cancelled ctx stops training at the next step boundary after a
// checkpoint: the error wraps experiments.ErrInterrupted and no FAILED is
// written.
func RunCell(ctx context.Context, d *ablations.Dir, id string, opts RunCellOptions) (err error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	c, ok := d.Cell(id)
	if !ok {
		return fmt.Errorf("sweep %s has no cell %q (see %s)", d.Path, id, filepath.Join(d.Path, ablations.ManifestFile))
	}
	if Done(d, id) {
		log.Info("cell already done", "cell", c.Name, "dir", d.CellDir(id))
		return d.ClearFailed(id)
	}
	prev, err := d.CellState(id)
	if err != nil {
		return err
	}
	// A RUNNING of a live process here means two runs of one cell. One of
	// another host or Slurm task cannot be checked here; when a scheduler
	// reruns the cell it is stale, so it is replaced.
	if r := prev.Running; prev.State == ablations.Running && r.PID != os.Getpid() && r.Host == proc.Hostname() && r.SlurmJob == "" {
		return fmt.Errorf("cell %s is already running (pid %d, see %s)", c.Name, r.PID, filepath.Join(d.CellDir(id), ablations.RunningFile))
	}
	attempt := 1
	if prev.Failed != nil {
		attempt = prev.Failed.Attempts + 1
	}
	if err := d.ClearFailed(id); err != nil {
		return err
	}
	if err := d.MarkRunning(id, ablations.RunningInfo{PID: os.Getpid(), Host: proc.Hostname(), Started: Now(),
		Executor: opts.Executor, SlurmJob: opts.SlurmJob}); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic", "cell", c.Name, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
		if cerr := d.ClearRunning(id); cerr != nil && err == nil {
			err = cerr
		}
		if err == nil || errors.Is(err, experiments.ErrInterrupted) {
			return
		}
		f := ablations.FailedInfo{Reason: err.Error(), ExitCode: 1, Time: Now(), Attempts: attempt, Executor: opts.Executor}
		if werr := d.MarkFailed(id, f); werr != nil {
			err = errors.Join(err, werr)
		}
	}()
	log.Info("cell start", "cell", c.Name, "id", id, "attempt", attempt, "workers", opts.Workers)
	err = trainOrResume(ctx, d, id, opts, log)
	// A signal during set-up (data, tokenizer) cancels before there is a
	// step boundary: an interruption too, not a failure.
	if err != nil && ctx.Err() != nil && !errors.Is(err, experiments.ErrInterrupted) {
		err = fmt.Errorf("%w before training began: %w", experiments.ErrInterrupted, err)
	}
	return err
}

func trainOrResume(ctx context.Context, d *ablations.Dir, id string, opts RunCellOptions, log *slog.Logger) error {
	eo := experiments.Options{Log: log, Bar: opts.Bar}
	run := d.RunDir(id)
	// config.resolved.yaml marks a run that Resume can continue (from its
	// newest checkpoint, or from the start when it has none).
	if _, err := os.Stat(filepath.Join(run, experiments.ResolvedConfigFile)); err == nil {
		log.Info("resuming", "run", run)
		return experiments.Resume(ctx, run, eo)
	}
	var sets []string
	if opts.Workers > 0 {
		sets = []string{"train.threads.workers=" + strconv.Itoa(opts.Workers), "train.threads.blas=1"}
	}
	cfg, err := experiments.Load(filepath.Join(d.CellDir(id), ablations.ConfigFile), sets)
	if err != nil {
		return err
	}
	return experiments.Train(ctx, cfg, run, eo)
}

// Main is the run-cell process: it runs cell id of the sweep directory dir
// and returns the exit status: 0 when the cell is done, InterruptExit when
// ctx was cancelled and the cell stopped at a checkpoint, 1 after a failure
// (recorded in FAILED). Under Slurm (SLURM_ARRAY_JOB_ID set) the RUNNING
// record names the array task.
func Main(ctx context.Context, dir, id string, opts RunCellOptions, stderr io.Writer) int {
	if opts.InterruptExit == 0 {
		opts.InterruptExit = ExitInterrupted
	}
	if opts.SlurmJob == "" {
		if job, task := os.Getenv("SLURM_ARRAY_JOB_ID"), os.Getenv("SLURM_ARRAY_TASK_ID"); job != "" && task != "" {
			opts.SlurmJob = job + "_" + task
		} else {
			opts.SlurmJob = os.Getenv("SLURM_JOB_ID")
		}
	}
	out := stderr
	fail := func(err error) int {
		fmt.Fprintln(out, "mmablate sweep run-cell:", err)
		return 1
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	d, err := ablations.OpenDir(abs)
	if err != nil {
		return fail(err)
	}
	if _, ok := d.Cell(id); !ok {
		return fail(fmt.Errorf("sweep %s has no cell %q", dir, id))
	}
	if opts.LogToCell {
		f, err := os.OpenFile(filepath.Join(d.CellDir(id), ablations.LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		fmt.Fprintf(f, "==== %s: run-cell (%s %s, pid %d on %s)\n", time.Now().UTC().Format(time.RFC3339), opts.Executor, opts.SlurmJob, os.Getpid(), proc.Hostname())
		out = io.MultiWriter(stderr, f)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(out, nil))
	}
	err = RunCell(ctx, d, id, opts)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, experiments.ErrInterrupted):
		opts.Log.Warn("cell interrupted; it resumes from its checkpoint on the next run", "id", id, "err", err)
		return opts.InterruptExit
	default:
		return fail(err)
	}
}
