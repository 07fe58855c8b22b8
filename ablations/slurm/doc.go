// Package slurm runs ablation cells as a Slurm array job: it writes the batch
// script, submits it with sbatch, reads task states back from scontrol (and
// the jobcomp/filetxt log once finished jobs have left the controller), and
// cancels with scancel. It owns nothing above one job: which cells to run and
// what to do with a failed one is the sweep executor's business.
//
// No Go client library speaks to Slurm 22.05 (Debian bookworm's), so the
// package shells out through a [Runner] and parses the tools' key=value text.
//
// # Jobs
//
// A [Job] with cells becomes an array job: task i runs Command with the fields
// of cell i appended as arguments. The cells go into a TSV file beside the
// script, one line per cell, and the script reads line SLURM_ARRAY_TASK_ID+1
// with sed, so no cell value is ever pasted into shell code. Every other value
// in the script is quoted: for the shell in the body, for sbatch's own parser
// in the #SBATCH lines. For example
//
//	job := slurm.Job{
//		Name:    "resolution",
//		LogDir:  "runs/resolution/slurm",
//		Command: []string{"mmablate", "train"},
//		Cells: [][]string{
//			{"--config", "runs/resolution/cells/a1b2/config.yaml"},
//			{"--config", "runs/resolution/cells/c3d4/config.yaml"},
//		},
//		MaxParallel: 8,
//		CPUsPerTask: 4,
//		Mem:         "16G",
//		Time:        "02:00:00",
//	}
//	script, err := slurm.WriteJob("runs/resolution/slurm", "cells", job)
//
// writes cells.sbatch and cells.tsv; task 1 runs
// "mmablate train --config runs/resolution/cells/c3d4/config.yaml" with
// MMABLATE_CELL_INDEX=1. Its output goes to LogDir/<jobid>_1.out (and .err),
// appended across requeues. A task that exits 75 asks to be run again: the
// local test cluster sets RequeueExit=75, and SLURM_RESTART_COUNT tells the
// rerun it is one.
//
// # Submitting and watching
//
//	c := slurm.NewClient(slurm.ExecRunner{})
//	id, err := c.Submit(ctx, script, slurm.SubmitOptions{})
//	report, err := c.Submit(ctx, reportScript, slurm.SubmitOptions{AfterAny: []string{id}})
//	tasks, err := c.Status(ctx, id) // one TaskState per array task
//
// The report waits with afterany, not afterok: a report shows failed cells
// too, and Slurm 22.05 fails afterok on an array one of whose tasks was ever
// requeued (see [SubmitOptions]).
//
// # Sweeps
//
// [Executor] runs a sweep directory (ablations.Dir) as one array job: task i
// runs "mmablate sweep run-cell --executor=slurm --workers=C DIR" with the
// i-th not-yet-done cell's id appended from DIR/slurm/cells-N.tsv, where C is
// cpus_per_task. Submit records the job in DIR/executor.json and, with a
// report command, submits it afterany; Status merges each cell's files
// (DONE, FAILED, RUNNING, metrics.jsonl) with its task's Slurm state; Wait
// polls until every task has ended and writes FAILED for the cells Slurm
// ended without their saying why (a kill, a time or memory limit); Cancel
// scancels both jobs. A task stopped by SIGTERM exits with the sweep's
// requeue_exit (75) and Slurm requeues it; the rerun resumes the cell from
// its checkpoint.
//
// Slurm's states map to five cell states ([Pending], [Running], [Done],
// [Failed], [Cancelled]); the raw state, exit code, signal and reason are
// kept beside them. The tools honour SLURM_CONF when it is set, as for any
// Slurm command; scripts/slurm-local.sh start prints the export line for the
// local test cluster.
package slurm
