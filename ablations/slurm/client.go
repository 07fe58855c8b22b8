package slurm

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrUnknownJob is returned by Status for a job neither the controller nor
// the jobcomp log knows.
var ErrUnknownJob = errors.New("unknown slurm job")

// Client submits, watches and cancels jobs through the Slurm tools.
type Client struct {
	run Runner

	// JobCompPath, when set, is the jobcomp/filetxt log Status reads for
	// tasks the controller has forgotten. Empty: asked of "scontrol show
	// config" once; a log that is absent or unreadable on this host is skipped.
	JobCompPath string

	mu            sync.Mutex
	jobCompLooked bool
}

// NewClient returns a Client that runs the tools through r.
func NewClient(r Runner) *Client { return &Client{run: r} }

// SubmitOptions adjusts one submission.
type SubmitOptions struct {
	// AfterOK holds the job until every listed job (every task of an array)
	// has completed successfully: --dependency=afterok:A:B. If one fails, a
	// cluster with kill_invalid_depend cancels the dependent job; others
	// leave it pending with Reason=DependencyNeverSatisfied. Slurm 22.05
	// counts a requeued array task's first run (exit 75) as a failure of the
	// array for afterok, even when the rerun succeeds; a report that follows
	// an array whose tasks may requeue should use AfterAny.
	AfterOK []string
	// AfterAny holds the job until every listed job has ended, however:
	// --dependency=afterany:A:B.
	AfterAny []string
}

// Submit submits a batch script with sbatch and returns the job id (for an
// array job, the id of the whole array).
func (c *Client) Submit(ctx context.Context, script string, opts SubmitOptions) (string, error) {
	abs, err := filepath.Abs(script)
	if err != nil {
		return "", fmt.Errorf("slurm submit %s: %w", script, err)
	}
	var deps []string
	for _, d := range []struct {
		kind string
		ids  []string
	}{{"afterok", opts.AfterOK}, {"afterany", opts.AfterAny}} {
		if len(d.ids) == 0 {
			continue
		}
		for _, id := range d.ids {
			if !isJobID(id) {
				return "", fmt.Errorf("slurm submit %s: %s: %q is not a job id", script, d.kind, id)
			}
		}
		deps = append(deps, d.kind+":"+strings.Join(d.ids, ":"))
	}
	args := []string{"--parsable"}
	if len(deps) > 0 {
		// A comma means all of them must hold.
		args = append(args, "--dependency="+strings.Join(deps, ","))
	}
	// An absolute path cannot be mistaken for an option.
	out, err := c.run.Run(ctx, "sbatch", append(args, abs)...)
	if err != nil {
		return "", fmt.Errorf("slurm submit %s: %w", script, err)
	}
	// --parsable prints "id" or, on a federation, "id;cluster".
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	if _, err := parseIndex(id); err != nil {
		return "", fmt.Errorf("slurm submit %s: %w: sbatch printed %q, want a job id", script, ErrParse, out)
	}
	return id, nil
}

// Cancel cancels a job, every task of an array job, or one task ("12_3").
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	if !isJobID(jobID) {
		return fmt.Errorf("slurm cancel: %q is not a job id", jobID)
	}
	if _, err := c.run.Run(ctx, "scancel", jobID); err != nil {
		return fmt.Errorf("slurm cancel %s: %w", jobID, err)
	}
	return nil
}

// Status returns the state of every task of a job that Slurm still knows,
// ordered by array index: first from the controller (scontrol show job),
// then, for tasks it has forgotten (MinJobAge after they end), from the
// jobcomp/filetxt log. A pending array line ("ArrayTaskId=2-5%1") gives one
// TaskState per task.
func (c *Client) Status(ctx context.Context, jobID string) ([]TaskState, error) {
	if !isJobID(jobID) {
		return nil, fmt.Errorf("slurm status: %q is not a job id", jobID)
	}
	byID := make(map[string]TaskState)
	logPath, err := c.jobCompPath(ctx)
	if err != nil {
		return nil, fmt.Errorf("slurm status of job %s: %w", jobID, err)
	}
	if logPath != "" {
		done, err := readJobComp(logPath, jobID)
		if err != nil {
			return nil, fmt.Errorf("slurm status of job %s: %w", jobID, err)
		}
		for _, t := range done {
			byID[t.ID] = t
		}
	}
	out, err := c.run.Run(ctx, "scontrol", "show", "job", "-o", jobID)
	if err != nil && !isInvalidJob(err) {
		return nil, fmt.Errorf("slurm status of job %s: %w", jobID, err)
	}
	if err == nil {
		live, err := parseScontrol(out)
		if err != nil {
			return nil, fmt.Errorf("slurm status of job %s: scontrol show job: %w", jobID, err)
		}
		// The controller is newer than the log: a requeued task is logged as
		// FAILED with exit 75 while the controller has it pending again.
		for _, t := range live {
			byID[t.ID] = t
		}
	}
	if len(byID) == 0 {
		return nil, fmt.Errorf("slurm status of job %s: %w", jobID, ErrUnknownJob)
	}
	tasks := make([]TaskState, 0, len(byID))
	for _, t := range byID {
		tasks = append(tasks, t)
	}
	slices.SortFunc(tasks, func(a, b TaskState) int {
		return cmp.Or(cmp.Compare(a.TaskID, b.TaskID), cmp.Compare(a.ID, b.ID))
	})
	return tasks, nil
}

// isInvalidJob recognises scontrol's answer for a job the controller does
// not (or no longer) know: "slurm_load_jobs error: Invalid job id specified".
func isInvalidJob(err error) bool {
	ce, ok := errors.AsType[*CommandError](err)
	return ok && strings.Contains(ce.Stderr, "Invalid job id")
}

// parseScontrol reads "scontrol show job -o" output: one job per line.
func parseScontrol(out []byte) ([]TaskState, error) {
	var tasks []TaskState
	for i, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		t, err := parseTasks(parseFields(line, scontrolHead))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		tasks = append(tasks, t...)
	}
	return tasks, nil
}

// jobCompPath returns the jobcomp/filetxt log to read, "" for none.
func (c *Client) jobCompPath(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.JobCompPath != "" || c.jobCompLooked {
		return c.JobCompPath, nil
	}
	out, err := c.run.Run(ctx, "scontrol", "show", "config")
	if err != nil {
		return "", err
	}
	c.JobCompPath = jobCompFromConfig(out)
	c.jobCompLooked = true
	return c.JobCompPath, nil
}

// jobCompFromConfig picks JobCompLoc out of "scontrol show config" when
// JobCompType is jobcomp/filetxt (lines "Key = value").
func jobCompFromConfig(out []byte) string {
	var typ, loc string
	for line := range strings.SplitSeq(string(out), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "JobCompType":
			typ = strings.TrimSpace(value)
		case "JobCompLoc":
			loc = strings.TrimSpace(value)
		}
	}
	if typ != "jobcomp/filetxt" || !filepath.IsAbs(loc) {
		return ""
	}
	return loc
}

// maxJobCompLine bounds one line of the jobcomp log; real lines are < 2 KiB.
const maxJobCompLine = 1 << 20

// readJobComp returns the last logged state of each task of jobID ("12":
// the job, or every task of array 12; "12_3": one task). The log lives on the
// controller's host; where it is absent or unreadable there is nothing to add.
func readJobComp(path, jobID string) ([]TaskState, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return scanJobComp(f, path, jobID)
}

// scanJobComp reads a jobcomp/filetxt log from r (named path in errors).
func scanJobComp(r io.Reader, path, jobID string) ([]TaskState, error) {
	arrayID, taskText, oneTask := strings.Cut(jobID, "_")
	taskID := -1
	if oneTask {
		taskID, _ = strconv.Atoi(taskText)
	}
	// "ArrayJobId=12 " contains "JobId=12 " too: one cheap test for both.
	needle := []byte("JobId=" + arrayID + " ")
	latest := make(map[string]TaskState)
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxJobCompLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if !bytes.Contains(line, needle) {
			continue
		}
		fields := parseFields(string(line), jobCompHead)
		if fields["JobId"] != arrayID && fields["ArrayJobId"] != arrayID {
			continue
		}
		tasks, err := parseTasks(fields)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		for _, t := range tasks {
			if oneTask && t.TaskID != taskID {
				continue
			}
			if _, seen := latest[t.ID]; !seen {
				order = append(order, t.ID)
			}
			latest[t.ID] = t
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tasks := make([]TaskState, 0, len(order))
	for _, id := range order {
		tasks = append(tasks, latest[id])
	}
	return tasks, nil
}
