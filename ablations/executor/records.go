package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/internal/atomicfile"
	"github.com/mmablate/mmablate/internal/boundedfile"
	"github.com/mmablate/mmablate/internal/proc"
)

// Record is executor.json: what ran the sweep last.
type Record struct {
	Executor string    `json:"executor"` // "local" or "slurm"
	Started  time.Time `json:"started"`
	// Ended is when the local executor returned; a record without it
	// names a process that may still run it.
	Ended *time.Time   `json:"ended,omitempty"`
	Local *LocalRecord `json:"local,omitempty"`
	Slurm *SlurmRecord `json:"slurm,omitempty"`
}

// LocalRecord names the local executor's process.
type LocalRecord struct {
	PID  int    `json:"pid"`
	Host string `json:"host"`
}

// SlurmRecord names the submitted jobs.
type SlurmRecord struct {
	JobID       string `json:"job_id"`
	ReportJobID string `json:"report_job_id,omitempty"`
	// Script is the array job's batch script; its cells file (the same
	// name ending .tsv) maps task indices to cell ids.
	Script string `json:"script"`
}

// maxRecordBytes bounds executor.json; it is a few hundred bytes.
const maxRecordBytes = 1 << 20

// ReadRecord reads DIR/executor.json; nil when no executor has run the sweep.
func ReadRecord(d *ablations.Dir) (*Record, error) {
	path := filepath.Join(d.Path, ablations.ExecutorFile)
	b, err := boundedfile.Read(path, maxRecordBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Executor != "local" && r.Executor != "slurm" {
		return nil, fmt.Errorf("%s: executor %q: want local or slurm", path, r.Executor)
	}
	return &r, nil
}

// LocalRunning reports whether r names a local executor, other than this
// process, that is still running the sweep on this host: a second executor
// would start the same pending cells.
func (r *Record) LocalRunning() bool {
	return r != nil && r.Local != nil && r.Ended == nil && r.Local.Host == proc.Hostname() &&
		r.Local.PID != os.Getpid() && proc.Alive(r.Local.PID)
}

// WriteRecord writes DIR/executor.json atomically.
func WriteRecord(d *ablations.Dir, r Record) error {
	path := filepath.Join(d.Path, ablations.ExecutorFile)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// Now is the time as the records write it: RFC 3339, UTC.
func Now() string { return time.Now().UTC().Format(time.RFC3339) }

// FailedCell is one line of a sweep's failure summary.
type FailedCell struct {
	Name, Reason, Log string
}

// SweepError is an executor's error when cells failed: it lists each
// with its reason and log.
type SweepError struct {
	Failed []FailedCell
}

func (e *SweepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d cell(s) failed:", len(e.Failed))
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %s (log: %s)", f.Name, f.Reason, f.Log)
	}
	b.WriteString("\nrun the same command again to retry them")
	return b.String()
}
