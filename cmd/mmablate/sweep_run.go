package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
	"github.com/mmablate/mmablate/ablations/local"
	"github.com/mmablate/mmablate/ablations/slurm"
)

func newSweepRunCmd() *cobra.Command {
	var (
		out, executorName string
		parallel          int
		force, wait       bool
		report            bool
		res               ablations.SlurmResources
	)
	cmd := &cobra.Command{
		Use:   "run FILE [--out DIR] [--executor local|slurm] [--parallel N] [--force]",
		Short: "Train and evaluate every cell of a sweep, locally or on Slurm",
		Long: `run expands the sweep file into DIR (sweep.yaml, sweep.json, cells/<id>/config.yaml;
see "mmablate sweep --help") and runs every cell that is not done yet. Each
cell trains in its own process (the hidden "sweep run-cell DIR ID") into
DIR/cells/<id>/run/, its output appended to DIR/cells/<id>/cell.log.

Running a sweep again continues it: done cells (run/DONE) are skipped, cells
stopped part-way resume from their newest checkpoint and end with the same
bytes as an uninterrupted run, and failed cells (FAILED) are tried again.
A DIR made from a different sweep file is refused unless --force.

--executor local (the default) runs up to --parallel cells at once on this
machine, the cores split between them (train.threads.workers =
max(1, cores / parallel); threads do not change a cell's id). A cell that
fails, panics or is killed is recorded in its FAILED with the reason and the
others go on; run exits 1 at the end with a summary of the failed cells.
Ctrl-C stops every cell at its next step (after a checkpoint); run the same
command again to resume. On a terminal, progress is a live block (one line
per running cell: step, loss, ETA; plus the sweep's counts and ETA);
elsewhere, log lines on each cell's start and end and every 10 s.

--executor slurm writes DIR/slurm/cells-N.sbatch, an array job with one task
per cell not yet done (--array=0-N%max_parallel; cell ids are read from
cells-N.tsv, never pasted into the script), submits it with sbatch and
prints the job id. A task stopped by SIGTERM (preemption, time limit,
scancel of a requeueable job) exits 75 and Slurm requeues it; it resumes
from its checkpoint. Resources come from the sweep file's slurm: section,
each overridden by its flag. --report submits "mmablate report DIR" to run
after every task has ended (afterany). --wait polls until the job ends and
exits 1 if a cell failed. Follow it with "mmablate sweep status DIR".

Example:

  mmablate sweep run ablations/examples/quickstart.yaml --out runs/quickstart --parallel 2
  mmablate sweep run ablations/examples/resolution.yaml --out runs/resolution \
      --executor slurm --partition debug --time 01:00:00 --cpus-per-task 4 --report

Flags:
  --out DIR          the sweep directory (default runs/<sweep name>)
  --executor         local or slurm (default local)
  --parallel N       local: cells at once (default 1)
  --force            reuse a DIR made from another sweep file
  --partition, --time, --mem, --cpus-per-task, --gres, --max-parallel,
  --account, --qos   slurm: override the sweep file's slurm: section
  --report           slurm: submit the report as a job that runs after the cells
  --wait             slurm: wait for the job to end`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if executorName != "local" && executorName != "slurm" {
				return usagef("--executor %q: want local or slurm", executorName)
			}
			if parallel < 1 {
				return usagef("--parallel %d: want at least 1", parallel)
			}
			if executorName == "local" {
				for _, name := range slurmFlags {
					if cmd.Flags().Changed(name) {
						return usagef("--%s is for --executor slurm", name)
					}
				}
			} else if cmd.Flags().Changed("parallel") {
				return usagef("--parallel is for --executor local (Slurm's is --max-parallel)")
			}
			s, err := ablations.Load(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("runs", s.Name)
			}
			if out, err = filepath.Abs(out); err != nil {
				return err
			}
			// Flags are checked before DIR is written.
			var se *slurm.Executor
			if executorName == "slurm" {
				if se, err = newSlurmExecutor(cmd, s.Slurm, res, report, out); err != nil {
					return err
				}
			}
			d, err := ablations.Prepare(out, s, force)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if executorName == "local" {
				if err := refuseIfSlurmBusy(cmd, d); err != nil {
					return err
				}
				e := &local.Executor{Parallel: parallel, Log: slog.Default()}
				if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					width, _, _ := term.GetSize(int(f.Fd()))
					e.Display = &local.TermDisplay{W: f, Width: width}
				}
				if err := e.Run(ctx, d); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			}
			rec, err := se.Submit(ctx, d)
			if err != nil {
				return err
			}
			if rec != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "job %s\n", rec.JobID)
				if rec.ReportJobID != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "report job %s\n", rec.ReportJobID)
				}
			}
			if wait {
				return se.Wait(ctx, d)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "the sweep directory (default runs/<sweep name>)")
	f.StringVar(&executorName, "executor", "local", "local or slurm")
	f.IntVar(&parallel, "parallel", 1, "local: cells at once")
	f.BoolVar(&force, "force", false, "reuse a directory made from another sweep file")
	f.StringVar(&res.Partition, "partition", "", "slurm: partition")
	f.StringVar(&res.Time, "time", "", "slurm: time limit per cell, e.g. 01:00:00")
	f.StringVar(&res.Mem, "mem", "", "slurm: memory per cell, e.g. 4G")
	f.IntVar(&res.CPUsPerTask, "cpus-per-task", 0, "slurm: cores per cell (its train.threads.workers)")
	f.StringVar(&res.Gres, "gres", "", "slurm: generic resources, e.g. gpu:1")
	f.IntVar(&res.MaxParallel, "max-parallel", 0, "slurm: cells running at once (0: no cap)")
	f.StringVar(&res.Account, "account", "", "slurm: account")
	f.StringVar(&res.QOS, "qos", "", "slurm: quality of service")
	f.BoolVar(&report, "report", false, "slurm: submit the report to run after the cells")
	f.BoolVar(&wait, "wait", false, "slurm: wait until the job ends")
	return cmd
}

// slurmFlags are run's flags that only the Slurm executor reads.
var slurmFlags = []string{"partition", "time", "mem", "cpus-per-task", "gres", "max-parallel", "account", "qos", "report", "wait"}

// override sets *dst to v when the user gave the flag name.
func override[T any](set func(name string) bool, name string, dst *T, v T) {
	if set(name) {
		*dst = v
	}
}

// newSlurmExecutor applies the flags the user set over the sweep file's
// slurm: section r; dir is the sweep directory, for the report job.
func newSlurmExecutor(cmd *cobra.Command, r, flags ablations.SlurmResources, report bool, dir string) (*slurm.Executor, error) {
	set := cmd.Flags().Changed
	if set("cpus-per-task") && flags.CPUsPerTask < 1 {
		return nil, usagef("--cpus-per-task %d: want at least 1", flags.CPUsPerTask)
	}
	if set("max-parallel") && flags.MaxParallel < 0 {
		return nil, usagef("--max-parallel %d: want 0 (no cap) or more", flags.MaxParallel)
	}
	override(set, "partition", &r.Partition, flags.Partition)
	override(set, "time", &r.Time, flags.Time)
	override(set, "mem", &r.Mem, flags.Mem)
	override(set, "cpus-per-task", &r.CPUsPerTask, flags.CPUsPerTask)
	override(set, "gres", &r.Gres, flags.Gres)
	override(set, "max-parallel", &r.MaxParallel, flags.MaxParallel)
	override(set, "account", &r.Account, flags.Account)
	override(set, "qos", &r.QOS, flags.QOS)
	e := &slurm.Executor{Client: slurm.NewClient(slurm.ExecRunner{}), Resources: r, Log: slog.Default()}
	if report {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the mmablate binary for the report job: %w", err)
		}
		e.Report = []string{exe, "report", dir}
	}
	return e, nil
}

// refuseIfSlurmBusy refuses a local run of a sweep whose Slurm job still
// has tasks queued or running: both would train the same cells. Once the
// job has ended, it settles what the job left (slurm.Executor.Reconcile) so
// the local run takes up the cells it did not finish.
func refuseIfSlurmBusy(cmd *cobra.Command, d *ablations.Dir) error {
	rec, err := executor.ReadRecord(d)
	if err != nil || rec == nil || rec.Slurm == nil {
		return err
	}
	e := &slurm.Executor{Client: slurm.NewClient(slurm.ExecRunner{}), Log: slog.Default()}
	_, busy, err := e.Reconcile(cmd.Context(), d)
	if busy {
		return fmt.Errorf("sweep %s: Slurm job %s still has tasks queued or running; wait for it or `mmablate sweep cancel %s` before running it locally", d.Path, rec.Slurm.JobID, d.Path)
	}
	// Failed cells are what the local run is for.
	if _, failed := errors.AsType[*executor.SweepError](err); err != nil && !failed {
		return fmt.Errorf("sweep %s was submitted to Slurm (job %s) and its state cannot be read: %w", d.Path, rec.Slurm.JobID, err)
	}
	return nil
}

// executorOf picks the executor that ran d last (executor.json); local
// when none has.
func executorOf(d *ablations.Dir) (executor.Executor, error) {
	rec, err := executor.ReadRecord(d)
	if err != nil {
		return nil, err
	}
	if rec != nil && rec.Executor == "slurm" {
		return &slurm.Executor{Client: slurm.NewClient(slurm.ExecRunner{}), Log: slog.Default()}, nil
	}
	return &local.Executor{Log: slog.Default()}, nil
}

func openSweepDir(path string) (*ablations.Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return ablations.OpenDir(abs)
}

func newSweepStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status DIR [--json]",
		Short: "Show the state of every cell of a sweep directory",
		Long: `status lists the cells of a sweep directory, one per line: name, id, state
(pending, running, done, failed, cancelled), step/steps and loss from the
cell's metrics.jsonl, and why a failed cell failed, then the counts.

For a sweep run by the slurm executor (executor.json), each cell not done
takes the state of its array task, as scontrol (or, once the controller
has forgotten it, the jobcomp log) reports it, shown raw in the SLURM
column: PENDING and REQUEUED are pending, RUNNING and COMPLETING running;
FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL and PREEMPTED failed, with the
exit code or signal; CANCELLED cancelled.

Example:

  mmablate sweep status runs/quickstart
  mmablate sweep status runs/quickstart --json

Flags:
  --json   a JSON list: id, name, state, step, steps, loss, reason, slurm_state, log`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openSweepDir(args[0])
			if err != nil {
				return err
			}
			e, err := executorOf(d)
			if err != nil {
				return err
			}
			sts, err := e.Status(cmd.Context(), d)
			if _, isSlurm := e.(*slurm.Executor); err != nil && isSlurm {
				// The cells' own files still say most of it.
				slog.Warn("cannot read the Slurm job's state; showing what the cell directories say", "err", err)
				sts, err = (&local.Executor{}).Status(cmd.Context(), d)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeStatusJSON(cmd.OutOrStdout(), sts)
			}
			return writeStatus(cmd.OutOrStdout(), sts)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list instead of a table")
	return cmd
}

// writeStatus writes the status table and a line of counts.
func writeStatus(w io.Writer, sts []executor.CellStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSTATE\tSTEP\tLOSS\tSLURM\tREASON")
	counts := map[ablations.State]int{}
	for _, st := range sts {
		counts[st.State]++
		step, loss := "-", "-"
		if st.Steps > 0 || st.Step > 0 {
			step = fmt.Sprintf("%d/%d", st.Step, st.Steps)
		}
		if st.Step > 0 {
			loss = strconv.FormatFloat(st.Loss, 'f', 4, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Cell.Name, st.Cell.ID, st.State, step, loss,
			dash(st.SlurmState), dash(oneLine(st.Reason)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d cells: %d done, %d running, %d pending, %d failed, %d cancelled\n", len(sts),
		counts[ablations.Done], counts[ablations.Running], counts[ablations.Pending], counts[ablations.Failed], counts[executor.Cancelled])
	return err
}

func writeStatusJSON(w io.Writer, sts []executor.CellStatus) error {
	type row struct {
		ID         string  `json:"id"`
		Name       string  `json:"name"`
		State      string  `json:"state"`
		Step       int     `json:"step"`
		Steps      int     `json:"steps"`
		Loss       float64 `json:"loss"`
		Reason     string  `json:"reason,omitempty"`
		SlurmState string  `json:"slurm_state,omitempty"`
		Log        string  `json:"log"`
	}
	rows := make([]row, len(sts))
	for i, st := range sts {
		rows[i] = row{st.Cell.ID, st.Cell.Name, string(st.State), st.Step, st.Steps, st.Loss, st.Reason, st.SlurmState, st.Log}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a multi-line reason (a joined error) on its row.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func newSweepCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel DIR",
		Short: "Stop a running sweep; its cells resume on the next run",
		Long: `cancel stops what "mmablate sweep run" started in DIR, as executor.json
records it. Local: SIGTERM to the sweep's process and to every cell process
named in a RUNNING file on this host; each cell stops at its next step after
a checkpoint. Slurm: scancel of the array job and the report job.
"mmablate sweep run" with the same file and DIR resumes.

Example:

  mmablate sweep cancel runs/resolution`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openSweepDir(args[0])
			if err != nil {
				return err
			}
			e, err := executorOf(d)
			if err != nil {
				return err
			}
			return e.Cancel(cmd.Context(), d)
		},
	}
}

// workersEnv sets run-cell's --workers when the flag is absent.
const workersEnv = "MMABLATE_WORKERS"

func newSweepRunCellCmd() *cobra.Command {
	var (
		workers, requeueExit int
		executorName         string
	)
	cmd := &cobra.Command{
		Use:    "run-cell DIR ID [--workers N]",
		Short:  "Run one cell of a sweep directory (the executors' worker process)",
		Hidden: true,
		Long: `run-cell trains cell ID of the sweep directory DIR into DIR/cells/ID/run
(resuming if it holds a run), then evaluates it. It writes RUNNING while it
works and FAILED on an error. --workers N (or $MMABLATE_WORKERS) sets
train.threads.workers so that parallel cells split the cores. SIGTERM or
SIGINT stops it at the next step after a checkpoint, and it exits with
--requeue-exit (75), which Slurm's RequeueExit requeues.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("workers") {
				if v := os.Getenv(workersEnv); v != "" {
					n, err := strconv.Atoi(v)
					if err != nil || n < 1 {
						return usagef("$%s=%q: want a whole number of at least 1", workersEnv, v)
					}
					workers = n
				}
			}
			if workers < 0 {
				return usagef("--workers %d: want at least 1 (0: the config's)", workers)
			}
			if executorName != "local" && executorName != "slurm" {
				return usagef("--executor %q: want local or slurm", executorName)
			}
			if requeueExit < 1 || requeueExit > 125 {
				return usagef("--requeue-exit %d: want 1 to 125", requeueExit)
			}
			opts := executor.RunCellOptions{Workers: workers, Executor: executorName, InterruptExit: requeueExit,
				LogToCell: executorName == "slurm"}
			if term.IsTerminal(int(os.Stderr.Fd())) {
				opts.Bar = os.Stderr
			}
			// The status is the message (75 asks Slurm to requeue), and
			// Main has already said why: exit with it, printing nothing more.
			if code := executor.Main(cmd.Context(), args[0], args[1], opts, cmd.ErrOrStderr()); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&workers, "workers", 0, "train.threads.workers for this cell (0: the config's)")
	f.StringVar(&executorName, "executor", "local", "who runs the cell: local or slurm")
	f.IntVar(&requeueExit, "requeue-exit", executor.ExitInterrupted, "exit status after an interruption")
	return cmd
}
