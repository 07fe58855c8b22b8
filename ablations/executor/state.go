package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mmablate/mmablate/experiments"
)

// State is a cell's state.
type State string

// The cell states. Cancelled is Slurm's: a task cancelled before it ended.
const (
	Pending   State = "pending"
	Running   State = "running"
	Done      State = "done"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// CellStatus is one row of `mmablate sweep status`.
type CellStatus struct {
	Cell  Cell
	State State
	// Step and Loss are from the last line of run/metrics.jsonl (0 before
	// the first); Steps is train.steps (0 when the config cannot be read).
	Step, Steps int
	Loss        float64
	// Reason says why a cell failed or was cancelled.
	Reason string
	// SlurmState is Slurm's name for the cell's task state, when Slurm
	// runs it ("" otherwise).
	SlurmState string
	// Running is the RUNNING record of a running cell.
	Running *RunningRecord
	// Attempts counts the cell's failed runs so far (FAILED's attempts).
	Attempts int
}

// DiskState reads the cell's state from its directory alone: DONE, then
// FAILED, then a RUNNING record naming a live process (a process on
// another host is taken at its word), else pending.
func (c Cell) DiskState() (State, *RunningRecord, *Failure, error) {
	if c.Done() {
		return Done, nil, nil, nil
	}
	f, err := c.ReadFailure()
	if err != nil {
		return "", nil, nil, err
	}
	if f != nil {
		return Failed, nil, f, nil
	}
	r, err := c.ReadRunning()
	if err != nil {
		return "", nil, nil, err
	}
	if r != nil && (r.Host != Hostname() || Alive(r.PID)) {
		return Running, r, nil, nil
	}
	return Pending, nil, nil, nil
}

// DiskStatus is the cell's CellStatus from its directory alone.
func (c Cell) DiskStatus() (CellStatus, error) {
	st := CellStatus{Cell: c}
	var f *Failure
	var err error
	st.State, st.Running, f, err = c.DiskState()
	if err != nil {
		return st, err
	}
	if f != nil {
		st.Reason = f.Reason
		st.Attempts = f.Attempts
	}
	p, err := ReadProgress(c.RunPath())
	if err != nil {
		return st, err
	}
	st.Step, st.Loss = p.Step, p.Loss
	// A cell without a readable config still has a state worth showing.
	st.Steps, _ = c.Steps()
	return st, nil
}

// Progress is the last line of a run's metrics.jsonl.
type Progress struct {
	Step int       `json:"step"`
	Loss float64   `json:"loss"`
	Time time.Time `json:"time"`
}

// tailBytes is how much of the end of metrics.jsonl ReadProgress reads: a
// line is about 300 bytes.
const tailBytes = 8 << 10

// ReadProgress returns the last complete line of runDir/metrics.jsonl; the
// zero Progress when there is none yet. A line being written (no newline
// yet, or cut short) is passed over for the one before it.
func ReadProgress(runDir string) (Progress, error) {
	path := filepath.Join(runDir, experiments.MetricsFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Progress{}, nil
	}
	if err != nil {
		return Progress{}, err
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Progress{}, fmt.Errorf("%s: %w", path, err)
	}
	start := max(0, end-tailBytes)
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return Progress{}, fmt.Errorf("%s: %w", path, err)
	}
	return lastProgress(buf), nil
}

// lastProgress parses the last complete, well-formed line of b.
func lastProgress(b []byte) Progress {
	// Whatever follows the last newline is a line still being written.
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	} else {
		return Progress{}
	}
	for len(b) > 0 {
		line := b
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			line, b = b[i+1:], b[:i]
		} else {
			b = nil
		}
		var p Progress
		if json.Unmarshal(line, &p) == nil && p.Step > 0 {
			return p
		}
	}
	return Progress{}
}
