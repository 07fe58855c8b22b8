package slurm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// State is what a cell's task is doing, in the sweep's terms.
type State string

// The cell states. Done, Failed and Cancelled are final.
const (
	Pending   State = "pending"
	Running   State = "running"
	Done      State = "done"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Final reports whether the task will not change state again.
func (s State) Final() bool { return s == Done || s == Failed || s == Cancelled }

// TaskState is one task of a job as Slurm last reported it.
type TaskState struct {
	// ID is what scancel and scontrol accept for this task alone: "12_3" for
	// task 3 of array job 12, "12" for a plain job.
	ID string
	// TaskID is the array index, -1 for a plain job.
	TaskID int
	State  State
	// SlurmState is Slurm's own name for it, e.g. "OUT_OF_MEMORY".
	SlurmState string
	// ExitCode and Signal are from the last run that ended ("ExitCode=3:0");
	// a requeued task that waits again still shows its previous run's code.
	ExitCode, Signal int
	// Reason is Slurm's why for a pending or failed task, e.g.
	// "JobArrayTaskLimit", "NonZeroExitCode"; "" when Slurm gives none.
	Reason string
	// Restarts counts requeues (not known from the jobcomp log: 0 there).
	Restarts int
}

// ErrParse is wrapped by every error about Slurm output that cannot be read.
var ErrParse = errors.New("cannot parse slurm output")

// slurmStates maps each base job state of Slurm (slurm.h, job_state_string)
// to a cell state. COMPLETING is running: the task has ended but Slurm has not
// finished with it, and a cancelled task passes through it. A task preempted
// without requeue did not finish its work, so it failed.
var slurmStates = map[string]State{
	"PENDING":       Pending,
	"REQUEUED":      Pending,
	"REQUEUE_HOLD":  Pending,
	"REQUEUE_FED":   Pending,
	"CONFIGURING":   Pending,
	"RESV_DEL_HOLD": Pending,
	"RUNNING":       Running,
	"COMPLETING":    Running,
	"SUSPENDED":     Running,
	"STOPPED":       Running,
	"SIGNALING":     Running,
	"STAGE_OUT":     Running,
	"RESIZING":      Running,
	"COMPLETED":     Done,
	"FAILED":        Failed,
	"TIMEOUT":       Failed,
	"OUT_OF_MEMORY": Failed,
	"NODE_FAIL":     Failed,
	"BOOT_FAIL":     Failed,
	"DEADLINE":      Failed,
	"PREEMPTED":     Failed,
	"SPECIAL_EXIT":  Failed,
	"CANCELLED":     Cancelled,
	"REVOKED":       Cancelled,
}

// knownKeys are the keys scontrol show job (22.05 to 24.x) and jobcomp/filetxt
// print. They matter only after a free-text value: there, a word "Key=..."
// ends the value only if Key is known, since a job name or path may hold "=".
var knownKeys = toSet(
	"JobId", "ArrayJobId", "ArrayTaskId", "ArrayTaskThrottle", "HetJobId", "HetJobOffset",
	"HetJobIdSet", "JobName", "Name", "UserId", "GroupId", "MCS_label", "Priority", "Nice",
	"Account", "QOS", "WCKey", "WcKey", "JobState", "Reason", "Dependency", "Requeue",
	"Restarts", "BatchFlag", "Reboot", "ExitCode", "DerivedExitCode", "RunTime", "TimeLimit",
	"TimeMin", "SubmitTime", "EligibleTime", "AccrueTime", "StartTime", "EndTime", "Deadline",
	"SuspendTime", "SecsPreSuspend", "LastSchedEval", "Scheduler", "Partition",
	"AllocNode:Sid", "ReqNodeList", "ExcNodeList", "NodeList", "BatchHost", "NumNodes",
	"NumCPUs", "NumTasks", "CPUs/Task", "ReqB:S:C:T", "TRES", "Tres", "Socks/Node",
	"NtasksPerN:B:S:C", "CoreSpec", "MinCPUsNode", "MinMemoryCPU", "MinMemoryNode",
	"MinTmpDiskNode", "Features", "DelayBoot", "OverSubscribe", "Contiguous", "Licenses",
	"Network", "Command", "WorkDir", "StdErr", "StdIn", "StdOut", "Power", "Comment",
	"AdminComment", "SystemComment", "Reservation", "ReservationName", "TresPerNode",
	"TresPerTask", "TRES_PER_NODE", "MailUser", "MailType", "NodeCnt", "ProcCnt", "Cluster",
	"ClusterFeatures", "Partition", "CpusPerTres", "MemPerTres", "TresBind", "TresFreq",
	"KillOnInvalidDependent", "Container", "ContainerID", "CronJob", "CrontabSpec",
)

// freeText are the keys whose values may contain spaces and "=".
var freeText = toSet("JobName", "Name", "Reason", "Comment", "AdminComment", "SystemComment",
	"Command", "WorkDir", "StdErr", "StdIn", "StdOut")

// A name can spell "Key=value" for any key, and a forged pair must not
// replace the real one. Keys printed before the name keep their first value,
// every other key its last (the real one follows any forgery). The two
// formats put different keys first.
var (
	scontrolHead = toSet("JobId", "ArrayJobId", "ArrayTaskId", "ArrayTaskThrottle", "HetJobId", "HetJobOffset")
	jobCompHead  = toSet("JobId", "UserId", "GroupId")
)

func toSet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// parseFields splits one line of "scontrol show job -o" or of the
// jobcomp/filetxt log into its key=value pairs; head holds the format's keys
// that come before the job name. Words are separated by single spaces; a
// word that is not "Key=value" continues the previous value, as do unknown
// keys inside a free-text value. Unknown keys elsewhere are kept, so newer
// Slurm releases parse too.
func parseFields(line string, head map[string]bool) map[string]string {
	fields := make(map[string]string)
	cur := ""
	var val strings.Builder
	flush := func() {
		if cur == "" {
			return
		}
		if _, seen := fields[cur]; seen && head[cur] {
			return
		}
		fields[cur] = val.String()
	}
	for _, word := range strings.Split(strings.TrimRight(line, " \r\n"), " ") {
		key, value, ok := strings.Cut(word, "=")
		if ok && isKey(key) && (knownKeys[key] || !freeText[cur]) {
			flush()
			cur = key
			val.Reset()
			val.WriteString(value)
			continue
		}
		if cur != "" {
			val.WriteByte(' ')
			val.WriteString(word)
		}
	}
	flush()
	return fields
}

// isKey matches Slurm's key spellings: a letter, then letters, digits and
// the separators of "AllocNode:Sid" and "CPUs/Task".
func isKey(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && (c < '0' || c > '9') && c != '_' && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// maxExpand bounds how many tasks one "ArrayTaskId=a-b" line may expand to,
// so that a corrupt line cannot allocate gigabytes. Slurm's MaxArraySize
// defaults to 1001; a sweep of more than a million cells is not one job.
const maxExpand = 1 << 20

// parseTasks turns one record (scontrol or jobcomp) into task states; a line
// for pending array tasks ("ArrayTaskId=2-5%1") gives one per task.
func parseTasks(f map[string]string) ([]TaskState, error) {
	jobID, ok := f["JobId"]
	if !ok || !isJobID(jobID) {
		return nil, fmt.Errorf("%w: JobId %q", ErrParse, jobID)
	}
	slurmState := f["JobState"]
	// jobcomp and squeue may append detail ("CANCELLED by 0"); the base name leads.
	slurmState, _, _ = strings.Cut(slurmState, " ")
	state, ok := slurmStates[slurmState]
	if !ok {
		return nil, fmt.Errorf("%w: job %s: unknown JobState %q", ErrParse, jobID, f["JobState"])
	}
	t := TaskState{ID: jobID, TaskID: -1, State: state, SlurmState: slurmState}
	if code, ok := f["ExitCode"]; ok {
		var err error
		if t.ExitCode, t.Signal, err = parseExitCode(code); err != nil {
			return nil, fmt.Errorf("%w: job %s: ExitCode %q: %w", ErrParse, jobID, code, err)
		}
	}
	if r := f["Reason"]; r != "None" {
		t.Reason = r
	}
	if r, ok := f["Restarts"]; ok {
		n, err := strconv.Atoi(r)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: job %s: Restarts %q", ErrParse, jobID, r)
		}
		t.Restarts = n
	}
	arrayJob, isArray := f["ArrayJobId"]
	if !isArray {
		return []TaskState{t}, nil
	}
	if !isJobID(arrayJob) {
		return nil, fmt.Errorf("%w: job %s: ArrayJobId %q", ErrParse, jobID, arrayJob)
	}
	ids, err := expandTaskIDs(f["ArrayTaskId"])
	if err != nil {
		return nil, fmt.Errorf("%w: job %s: ArrayTaskId %q: %w", ErrParse, jobID, f["ArrayTaskId"], err)
	}
	tasks := make([]TaskState, len(ids))
	for i, id := range ids {
		tasks[i] = t
		tasks[i].TaskID = id
		tasks[i].ID = arrayJob + "_" + strconv.Itoa(id)
	}
	return tasks, nil
}

// parseExitCode reads "status:signal".
func parseExitCode(s string) (code, signal int, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errors.New("want status:signal")
	}
	if code, err = strconv.Atoi(a); err != nil {
		return 0, 0, err
	}
	if signal, err = strconv.Atoi(b); err != nil {
		return 0, 0, err
	}
	return code, signal, nil
}

// expandTaskIDs expands Slurm's array index lists: "3", "2-5", "2-5%1"
// (a throttle, ignored), "1,3,6-8", "0-10:2" (a step).
func expandTaskIDs(s string) ([]int, error) {
	s, _, _ = strings.Cut(s, "%")
	if s == "" {
		return nil, errors.New("empty")
	}
	var ids []int
	for part := range strings.SplitSeq(s, ",") {
		rng, stepText, hasStep := strings.Cut(part, ":")
		loText, hiText, isRange := strings.Cut(rng, "-")
		lo, err := parseIndex(loText)
		if err != nil {
			return nil, err
		}
		hi, step := lo, 1
		if isRange {
			if hi, err = parseIndex(hiText); err != nil {
				return nil, err
			}
		}
		if hasStep {
			if step, err = parseIndex(stepText); err != nil || step == 0 {
				return nil, fmt.Errorf("bad step %q", stepText)
			}
		}
		if hi < lo {
			return nil, fmt.Errorf("range %q runs backwards", part)
		}
		if (hi-lo)/step+1 > maxExpand-len(ids) {
			return nil, fmt.Errorf("more than %d tasks", maxExpand)
		}
		for i := lo; i <= hi; i += step {
			ids = append(ids, i)
		}
	}
	return ids, nil
}

func parseIndex(s string) (int, error) {
	if s == "" || len(s) > 10 {
		return 0, fmt.Errorf("bad index %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad index %q", s)
		}
	}
	return strconv.Atoi(s)
}

// isJobID accepts "12" and "12_3": Slurm ids that cannot be read as options.
func isJobID(s string) bool {
	a, b, two := strings.Cut(s, "_")
	if _, err := parseIndex(a); err != nil {
		return false
	}
	if two {
		_, err := parseIndex(b)
		return err == nil
	}
	return true
}
