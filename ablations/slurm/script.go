package slurm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/mmablate/mmablate/internal/atomicfile"
)

// Job is one batch job: an array job over Cells, or, with Cells nil, a plain
// job that runs Command once (a report that waits for the cells, say).
type Job struct {
	// Name is the job name squeue shows (--job-name); empty: sbatch's default.
	Name string
	// Command is the argv every task runs, looked up in PATH on the node.
	Command []string
	// Cells, when not nil, makes an array job of len(Cells) tasks; task i runs
	// Command with Cells[i] appended. Fields must be non-empty and free of
	// tabs, newlines and NUL: they are stored one cell per line in a TSV file.
	Cells [][]string
	// MaxParallel caps the tasks running at once (--array=0-N%M); 0: no cap.
	MaxParallel int
	// LogDir receives the tasks' stdout and stderr: <jobid>_<task>.out/.err
	// for an array job, <jobid>.out/.err for a plain one.
	LogDir string
	// CPUsPerTask is --cpus-per-task; 0 leaves the cluster's default.
	CPUsPerTask int
	// Mem is --mem, e.g. "16G"; Time is --time, e.g. "02:00:00".
	Mem, Time string
	// Partition, Account and QOS select where the job runs and who pays.
	Partition, Account, QOS string
	// Gres is passed through as --gres, e.g. "gpu:1".
	Gres string
	// ExtraArgs are further sbatch options, one per #SBATCH line, each in the
	// one-word form "--constraint=a100".
	ExtraArgs []string
}

// ErrInvalidJob is returned, wrapped with the offending field, for a Job that
// cannot be written as a safe batch script.
var ErrInvalidJob = errors.New("invalid slurm job")

// invalid names the field and the problem.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidJob, field, fmt.Sprintf(format, args...))
}

// baseName keeps the file names WriteJob derives from base plain.
var baseName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// WriteJob writes dir/base.sbatch and, for an array job, dir/base.tsv (the
// cells), each atomically, and creates dir and job.LogDir. It returns the
// script's absolute path, ready for [Client.Submit]. Relative paths are made
// absolute here because a batch script runs in a copy under Slurm's spool
// directory, not where it was written.
func WriteJob(dir, base string, job Job) (string, error) {
	if !baseName.MatchString(base) {
		return "", invalid("base", "%q is not a plain file name", base)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("slurm job directory %s: %w", dir, err)
	}
	if job.LogDir == "" {
		return "", invalid("LogDir", "empty")
	}
	if job.LogDir, err = filepath.Abs(job.LogDir); err != nil {
		return "", fmt.Errorf("slurm log directory %s: %w", job.LogDir, err)
	}
	cellsPath := filepath.Join(dir, base+".tsv")
	script, err := job.Script(cellsPath)
	if err != nil {
		return "", err
	}
	for _, d := range []string{dir, job.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("slurm job: %w", err)
		}
	}
	if job.Cells != nil {
		if err := atomicfile.WriteFile(cellsPath, cellsTSV(job.Cells), 0o644); err != nil {
			return "", err
		}
	}
	scriptPath := filepath.Join(dir, base+".sbatch")
	if err := atomicfile.WriteFile(scriptPath, script, 0o755); err != nil {
		return "", err
	}
	return scriptPath, nil
}

// Script returns the batch script for job; cellsPath is where the cells TSV
// will be (absolute, as the script runs elsewhere). It checks every value and
// writes nothing.
func (job Job) Script(cellsPath string) ([]byte, error) {
	if len(job.Command) == 0 || job.Command[0] == "" {
		return nil, invalid("Command", "empty")
	}
	for i, a := range job.Command {
		if strings.ContainsRune(a, 0) {
			return nil, invalid(fmt.Sprintf("Command[%d]", i), "contains NUL")
		}
	}
	if !filepath.IsAbs(job.LogDir) {
		return nil, invalid("LogDir", "%q is not absolute", job.LogDir)
	}
	// Slurm reads a backslash anywhere in an output path as "expand nothing".
	if strings.ContainsRune(job.LogDir, '\\') {
		return nil, invalid("LogDir", "%q contains a backslash, which disables Slurm's %%A/%%a expansion", job.LogDir)
	}
	logPattern := strings.ReplaceAll(job.LogDir, "%", "%%") + "/%j"
	if job.Cells != nil {
		if len(job.Cells) == 0 {
			return nil, invalid("Cells", "no cells (nil means a plain job)")
		}
		if !filepath.IsAbs(cellsPath) {
			return nil, invalid("cells file", "%q is not absolute", cellsPath)
		}
		if err := checkCells(job.Cells); err != nil {
			return nil, err
		}
		logPattern = strings.ReplaceAll(job.LogDir, "%", "%%") + "/%A_%a"
	}
	if job.MaxParallel < 0 {
		return nil, invalid("MaxParallel", "%d is negative", job.MaxParallel)
	}
	if job.CPUsPerTask < 0 {
		return nil, invalid("CPUsPerTask", "%d is negative", job.CPUsPerTask)
	}

	var opts []string // the #SBATCH lines' arguments, quoted for sbatch
	var quoteErr error
	add := func(flag, value string) {
		if value == "" || quoteErr != nil {
			return
		}
		q, err := sbatchQuote(value)
		if err != nil {
			quoteErr = invalid(flag, "%s", err)
			return
		}
		opts = append(opts, flag+"="+q)
	}
	add("--job-name", job.Name)
	if job.Cells != nil {
		array := "0-" + strconv.Itoa(len(job.Cells)-1)
		if job.MaxParallel > 0 {
			array += "%" + strconv.Itoa(job.MaxParallel)
		}
		add("--array", array)
	}
	add("--output", logPattern+".out")
	add("--error", logPattern+".err")
	// Append: a requeued task adds to its log instead of erasing the first run's.
	add("--open-mode", "append")
	opts = append(opts, "--requeue")
	if job.CPUsPerTask > 0 {
		add("--cpus-per-task", strconv.Itoa(job.CPUsPerTask))
	}
	add("--mem", job.Mem)
	add("--time", job.Time)
	add("--partition", job.Partition)
	add("--account", job.Account)
	add("--qos", job.QOS)
	add("--gres", job.Gres)
	for i, a := range job.ExtraArgs {
		if !strings.HasPrefix(a, "-") {
			return nil, invalid(fmt.Sprintf("ExtraArgs[%d]", i), "%q is not an option (want --name=value)", a)
		}
		q, err := sbatchQuote(a)
		if err != nil {
			return nil, invalid(fmt.Sprintf("ExtraArgs[%d]", i), "%s", err)
		}
		opts = append(opts, q)
	}
	if quoteErr != nil {
		return nil, quoteErr
	}

	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	for _, o := range opts {
		fmt.Fprintf(&b, "#SBATCH %s\n", o)
	}
	b.WriteString("# Written by mmablate (ablations/slurm); every value is quoted or read from a file.\n")
	b.WriteString("set -euo pipefail\n")
	command := shellQuoteAll(job.Command)
	if job.Cells == nil {
		fmt.Fprintf(&b, "exec %s\n", command)
		return []byte(b.String()), nil
	}
	fmt.Fprintf(&b, "cells_file=%s\n", shellQuote(cellsPath))
	b.WriteString(arrayBody)
	fmt.Fprintf(&b, "exec %s \"${cell[@]}\"\n", command)
	return []byte(b.String()), nil
}

// arrayBody picks this task's line of the cells file: the task index must be
// digits (it comes from the environment and goes into arithmetic), the line
// must exist, and its tab-separated fields become the array "cell".
const arrayBody = `task="${SLURM_ARRAY_TASK_ID:-}"
case "$task" in
'' | *[!0-9]*)
  echo "mmablate: SLURM_ARRAY_TASK_ID is not a task index: '$task'" >&2
  exit 2
  ;;
esac
want=$((10#$task + 1))
if ! line=$(awk -v want="$want" 'NR == want { print; found = 1; exit } END { exit !found }' <"$cells_file"); then
  echo "mmablate: no line $want in $cells_file" >&2
  exit 2
fi
cell=()
if [ -n "$line" ]; then
  IFS=$'\t' read -r -a cell <<<"$line"
fi
export MMABLATE_CELL_INDEX="$task"
`

// checkCells rejects fields the TSV cannot carry: a tab or newline would
// split a field, and an empty one would vanish when bash splits on tabs.
func checkCells(cells [][]string) error {
	for i, c := range cells {
		for j, f := range c {
			field := fmt.Sprintf("Cells[%d][%d]", i, j)
			switch {
			case f == "":
				return invalid(field, "empty field")
			case strings.ContainsAny(f, "\t\n\r\x00"):
				return invalid(field, "%q contains a tab, newline or NUL", f)
			}
		}
	}
	return nil
}

func cellsTSV(cells [][]string) []byte {
	var b strings.Builder
	for _, c := range cells {
		b.WriteString(strings.Join(c, "\t"))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// shellQuote makes s one bash word that stands for exactly s: inside single
// quotes nothing is special, and a single quote becomes quote-close,
// backslash-quote, quote-open.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellQuoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// sbatchQuote makes s one argument of an #SBATCH line. Those lines are bash
// comments but sbatch splits them itself (opt.c, _get_argument): quotes group,
// a backslash escapes the next character even inside quotes, an unquoted #
// starts a comment, a line cannot continue, and the word "packjob" (or
// "hetjob" in later releases) anywhere splits the job.
func sbatchQuote(s string) (string, error) {
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", fmt.Errorf("%q contains a newline or NUL, which an #SBATCH line cannot carry", s)
	}
	lower := strings.ToLower(s)
	if strings.Contains(lower, "packjob") || strings.Contains(lower, "hetjob") {
		return "", fmt.Errorf("%q contains packjob/hetjob, which sbatch reads as a job separator", s)
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'", nil
}
