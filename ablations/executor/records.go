package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mmablate/mmablate/internal/atomicfile"
)

// RunningRecord is the RUNNING record: which process runs the cell.
type RunningRecord struct {
	PID      int       `json:"pid"`
	Host     string    `json:"host"`
	Started  time.Time `json:"started"`
	Executor string    `json:"executor"`
	// SlurmJob is the array task ("12_3") when Slurm runs the cell.
	SlurmJob string `json:"slurm_job,omitempty"`
	// Attempt counts the runs of this cell, this one included.
	Attempt int `json:"attempt"`
}

// Failure is the FAILED record: why the last attempt failed.
type Failure struct {
	Reason   string    `json:"reason"`
	ExitCode int       `json:"exit_code"`
	Signal   string    `json:"signal,omitempty"` // "killed", "terminated", … when a signal ended it
	Time     time.Time `json:"time"`
	Attempts int       `json:"attempts"`
	Executor string    `json:"executor"`
}

// Record is executor.json: what ran the sweep last.
type Record struct {
	Executor string       `json:"executor"` // "local" or "slurm"
	Started  time.Time    `json:"started"`
	Local    *LocalRecord `json:"local,omitempty"`
	Slurm    *SlurmRecord `json:"slurm,omitempty"`
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

// maxRecordBytes bounds the small JSON records.
const maxRecordBytes = 1 << 20

// ReadRunning returns the cell's RUNNING record; nil when there is none.
func (c Cell) ReadRunning() (*RunningRecord, error) {
	var r RunningRecord
	ok, err := readJSON(filepath.Join(c.Dir, RunningFile), &r)
	if !ok {
		return nil, err
	}
	return &r, nil
}

// ReadFailure returns the cell's FAILED record; nil when there is none.
func (c Cell) ReadFailure() (*Failure, error) {
	var f Failure
	ok, err := readJSON(filepath.Join(c.Dir, FailedFile), &f)
	if !ok {
		return nil, err
	}
	return &f, nil
}

// WriteRunning writes the RUNNING record atomically.
func (c Cell) WriteRunning(r RunningRecord) error {
	return writeJSON(filepath.Join(c.Dir, RunningFile), r)
}

// WriteFailure writes the FAILED record atomically.
func (c Cell) WriteFailure(f Failure) error {
	return writeJSON(filepath.Join(c.Dir, FailedFile), f)
}

// ClearRunning removes RUNNING; absent is fine.
func (c Cell) ClearRunning() error { return removeIfPresent(filepath.Join(c.Dir, RunningFile)) }

// ClearFailure removes FAILED; absent is fine.
func (c Cell) ClearFailure() error { return removeIfPresent(filepath.Join(c.Dir, FailedFile)) }

// ReadRecord reads DIR/executor.json; nil when no executor has run the sweep.
func (s *Sweep) ReadRecord() (*Record, error) {
	var r Record
	ok, err := readJSON(filepath.Join(s.Dir, ExecutorFile), &r)
	if !ok {
		return nil, err
	}
	if r.Executor != "local" && r.Executor != "slurm" {
		return nil, fmt.Errorf("%s: executor %q: want local or slurm", filepath.Join(s.Dir, ExecutorFile), r.Executor)
	}
	return &r, nil
}

// WriteRecord writes DIR/executor.json atomically.
func (s *Sweep) WriteRecord(r Record) error {
	return writeJSON(filepath.Join(s.Dir, ExecutorFile), r)
}

// readJSON decodes path into v; false with a nil error when it is absent.
func readJSON(path string, v any) (bool, error) {
	b, err := readBounded(path, maxRecordBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// readBounded reads path, refusing files over limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// Hostname is this machine's name as RUNNING records it ("" if unknown).
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// Alive reports whether pid names a live process on this host. A process
// of another user answers EPERM and is alive too.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

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
