// Package local is the local sweep executor: it runs a sweep directory's
// cells on this machine, up to Parallel at once, each in its own process
// (`mmablate sweep run-cell DIR ID --workers W`), with the cores split between
// them (W = max(1, NumCPU/Parallel)).
//
// Finished cells (run/DONE) are skipped; failed ones (FAILED) run again,
// their attempt counted; interrupted ones resume from their newest
// checkpoint. A cell that fails, panics or is killed by a signal is recorded
// in its FAILED with the reason, exit code and signal, and the other cells go
// on; Run returns an error listing the failed cells (name, reason, log) once
// all have ended. Cancelling Run's context (Ctrl-C) sends SIGTERM to every
// running cell and waits: each stops at its next step boundary after writing
// a checkpoint, so the next Run resumes it exactly.
//
// Progress goes to a terminal as a block of lines redrawn about once a
// second — one per running cell (name, step/total, loss, ETA) and an overall
// line (done/failed/running/pending, sweep ETA from the steps per second seen
// so far) — and elsewhere (CI, a file) as log lines when a cell starts or ends
// and every ten seconds.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
	"github.com/mmablate/mmablate/internal/boundedfile"
	"github.com/mmablate/mmablate/internal/proc"
)

// Executor runs cells as local processes. The zero value runs one at a time
// with os.Executable() as the run-cell command.
type Executor struct {
	// Parallel is how many cells run at once (< 1: one).
	Parallel int
	// Workers overrides each cell's train.threads.workers; 0 splits the
	// cores: max(1, NumCPU/Parallel).
	Workers int
	// Command returns the process that runs one cell; nil runs
	// `os.Executable() sweep run-cell DIR ID --workers W --executor local`.
	Command func(sweepDir, cellID string, workers int) (*exec.Cmd, error)
	// Display shows progress; nil logs it to Log.
	Display Display
	// Log receives the executor's own messages; nil is slog.Default().
	Log *slog.Logger
}

var _ executor.Executor = (*Executor)(nil)

// outcome is how one cell's process ended.
type outcome int

const (
	finished    outcome = iota // exited 0 with run/DONE
	failed                     // recorded in FAILED
	interrupted                // stopped at a checkpoint (exit 75): resumes next run
	elsewhere                  // another process runs the cell
)

// ErrInterrupted is wrapped by Run's error when its context was cancelled.
var ErrInterrupted = errors.New("sweep interrupted")

func (e *Executor) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// workers is each cell's share of the cores.
func (e *Executor) workers() int {
	if e.Workers > 0 {
		return e.Workers
	}
	return max(1, runtime.NumCPU()/max(1, e.Parallel))
}

// Run runs every cell that is not done, up to Parallel at once, and returns
// when all have ended: nil when every cell is done, a *executor.SweepError
// naming the failed ones, or an error wrapping ErrInterrupted when ctx was
// cancelled.
func (e *Executor) Run(ctx context.Context, d *ablations.Dir) error {
	log := e.log()
	dir, err := filepath.Abs(d.Path)
	if err != nil {
		return err
	}
	if p, err := executor.ReadRecord(d); err != nil {
		return err
	} else if p.LocalRunning() {
		return fmt.Errorf("sweep %s is already being run by pid %d (since %s); wait for it, or `mmablate sweep cancel %s`", dir, p.Local.PID, p.Started.Format(time.RFC3339), dir)
	}
	rec := executor.Record{Executor: "local", Started: time.Now().UTC(),
		Local: &executor.LocalRecord{PID: os.Getpid(), Host: proc.Hostname()}}
	if err := executor.WriteRecord(d, rec); err != nil {
		return err
	}
	// Once this returns, the pid in executor.json is no longer the sweep's:
	// cancel must not signal whatever process reuses it.
	defer func() {
		ended := time.Now().UTC()
		rec.Ended = &ended
		if werr := executor.WriteRecord(d, rec); werr != nil {
			log.Error("cannot record the end of the sweep", "err", werr)
		}
	}()
	var todo []ablations.CellInfo
	tr := newTracker(d)
	for _, c := range d.Manifest.Cells {
		st, err := d.CellState(c.ID)
		if err != nil {
			return err
		}
		switch st.State {
		case ablations.Done:
			tr.skip(c, true)
		case ablations.Running:
			log.Warn("cell is running in another process; leaving it alone", "cell", c.Name, "pid", st.Running.PID, "host", st.Running.Host, "slurm_job", st.Running.SlurmJob)
			tr.skip(c, false)
		default:
			todo = append(todo, c)
		}
	}
	disp := e.Display
	if disp == nil {
		disp = &LogDisplay{Log: log}
	}
	stopDisplay := tr.show(disp)
	defer stopDisplay()

	parallel := max(1, e.Parallel)
	workers := e.workers()
	log.Info("sweep start", "dir", dir, "cells", len(d.Manifest.Cells), "to_run", len(todo), "parallel", parallel, "workers_per_cell", workers)
	queue := make(chan ablations.CellInfo)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for c := range queue {
				if ctx.Err() != nil {
					continue // stopping: the cell stays pending
				}
				tr.start(c)
				out, reason := e.runCell(ctx, d, dir, c, workers)
				tr.finish(c, out, reason)
			}
		})
	}
feed:
	for _, c := range todo {
		select {
		case queue <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	stopDisplay()

	sum := tr.summary()
	log.Info("sweep end", "done", sum.done, "failed", len(sum.failed), "interrupted", sum.interrupted, "pending", sum.pending)
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %d cell(s) stopped at a checkpoint, %d not started; run the same command again to resume", ErrInterrupted, sum.interrupted, sum.pending)
	}
	if len(sum.failed) > 0 {
		return &executor.SweepError{Failed: sum.failed}
	}
	if sum.interrupted > 0 {
		return fmt.Errorf("%w: %d cell(s) were stopped by a signal from outside; run the same command again to resume", ErrInterrupted, sum.interrupted)
	}
	if sum.elsewhere > 0 {
		return fmt.Errorf("%d cell(s) are being run by another process and were left to it; see `mmablate sweep status %s`", sum.elsewhere, dir)
	}
	return nil
}

// runCell runs one cell's process to its end and classifies the end.
func (e *Executor) runCell(ctx context.Context, d *ablations.Dir, dir string, c ablations.CellInfo, workers int) (outcome, string) {
	log := e.log()
	logPath := filepath.Join(d.CellDir(c.ID), ablations.LogFile)
	// The attempt this run makes, for a FAILED the process cannot write.
	attempt := 1
	if st, err := d.CellState(c.ID); err == nil && st.Failed != nil {
		attempt = st.Failed.Attempts + 1
	}
	fail := func(f ablations.FailedInfo) (outcome, string) {
		f.Time, f.Executor, f.Attempts = executor.Now(), "local", attempt
		if err := d.ClearRunning(c.ID); err != nil {
			log.Error("cell", "cell", c.Name, "err", err)
		}
		if err := d.MarkFailed(c.ID, f); err != nil {
			log.Error("cannot record the failure", "cell", c.Name, "err", err)
		}
		return failed, f.Reason
	}
	if err := os.MkdirAll(d.CellDir(c.ID), 0o755); err != nil {
		return fail(ablations.FailedInfo{Reason: err.Error(), ExitCode: -1})
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail(ablations.FailedInfo{Reason: err.Error(), ExitCode: -1})
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== %s: mmablate sweep (local executor, pid %d) runs cell %s\n", time.Now().UTC().Format(time.RFC3339), os.Getpid(), c.Name)

	cmd, err := e.command(dir, c.ID, workers)
	if err != nil {
		return fail(ablations.FailedInfo{Reason: err.Error(), ExitCode: -1})
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// A process group of its own: Ctrl-C on the terminal reaches only the
	// executor, which stops the cells with one SIGTERM each.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(ablations.FailedInfo{Reason: fmt.Sprintf("start %s: %v", cmd.Path, err), ExitCode: -1})
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		// Training stops within a step of SIGTERM, after a checkpoint.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		werr = <-waited
	}
	elapsed := time.Since(began).Round(time.Millisecond)

	ps := cmd.ProcessState
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case werr == nil && executor.Done(d, c.ID):
		log.Debug("cell finished", "cell", c.Name, "elapsed", elapsed)
		return finished, ""
	case werr == nil:
		return fail(ablations.FailedInfo{Reason: "run-cell exited 0 without writing run/DONE", ExitCode: 0})
	case ws.Signaled() && ws.Signal() == syscall.SIGTERM && ctx.Err() != nil:
		// Our SIGTERM arrived before the process could catch it: it had
		// not begun training, so there is nothing lost.
		return interrupted, ""
	case ws.Signaled():
		sig := ws.Signal()
		return fail(ablations.FailedInfo{Reason: fmt.Sprintf("killed by signal %d (%s) after %v", int(sig), sig, elapsed),
			ExitCode: 128 + int(sig), Signal: sig.String()})
	case ps.ExitCode() == executor.ExitInterrupted:
		return interrupted, ""
	}
	// The process said why in FAILED, unless it died too early or in a
	// way it could not catch (a panic on another goroutine).
	if st, err := d.CellState(c.ID); err == nil && st.State == ablations.Failed && st.Failed.Attempts == attempt {
		return failed, st.Failed.Reason
	} else if err == nil && st.State == ablations.Running {
		// run-cell found another live process running the cell.
		return elsewhere, ""
	}
	reason := fmt.Sprintf("exit status %d", ps.ExitCode())
	if line := panicLine(logPath); line != "" {
		reason += ": " + line
	}
	return fail(ablations.FailedInfo{Reason: reason, ExitCode: ps.ExitCode()})
}

func (e *Executor) command(dir, id string, workers int) (*exec.Cmd, error) {
	if e.Command != nil {
		return e.Command(dir, id, workers)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the mmablate binary for run-cell: %w", err)
	}
	return exec.Command(exe, "sweep", "run-cell", dir, id, "--workers", strconv.Itoa(workers), "--executor", "local"), nil
}

// panicLine finds the last "panic: …" line in the tail of a cell's log.
func panicLine(path string) string {
	b, _, err := boundedfile.Tail(path, 64<<10)
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}
