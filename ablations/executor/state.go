package executor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/internal/boundedfile"
)

// Cancelled is a cell whose Slurm task was cancelled before it ended; the
// other states are ablations'.
const Cancelled ablations.State = "cancelled"

// CellStatus is one row of `mmablate sweep status`.
type CellStatus struct {
	Cell ablations.CellInfo
	// Dir is the cell directory; Log its cell.log.
	Dir, Log string
	State    ablations.State
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
	Running *ablations.RunningInfo
	// Attempts counts the cell's failed runs so far (FAILED's attempts).
	Attempts int
}

// DiskStatus is a cell's status from its directory alone (see
// ablations.Dir.CellState) with its progress.
func DiskStatus(d *ablations.Dir, c ablations.CellInfo) (CellStatus, error) {
	st := CellStatus{Cell: c, Dir: d.CellDir(c.ID), Log: filepath.Join(d.CellDir(c.ID), ablations.LogFile)}
	cs, err := d.CellState(c.ID)
	if err != nil {
		return st, err
	}
	st.State = cs.State
	if cs.State == ablations.Running {
		st.Running = cs.Running
	}
	if cs.Failed != nil {
		st.Attempts = cs.Failed.Attempts
		if cs.State == ablations.Failed {
			st.Reason = cs.Failed.Reason
		}
	}
	p, err := ReadProgress(d.RunDir(c.ID))
	if err != nil {
		return st, err
	}
	st.Step, st.Loss = p.Step, p.Loss
	// A cell without a readable config still has a state worth showing.
	st.Steps, _ = Steps(d, c.ID)
	return st, nil
}

// DiskStatuses is DiskStatus of every cell of the sweep, in manifest order.
func DiskStatuses(d *ablations.Dir) ([]CellStatus, error) {
	out := make([]CellStatus, 0, len(d.Manifest.Cells))
	for _, c := range d.Manifest.Cells {
		st, err := DiskStatus(d, c)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Steps reads train.steps from the cell's config, for progress.
func Steps(d *ablations.Dir, id string) (int, error) {
	cfg, err := d.LoadConfig(id)
	if err != nil {
		return 0, err
	}
	return cfg.Train.Steps, nil
}

// Done reports whether the cell's run has finished (run/DONE).
func Done(d *ablations.Dir, id string) bool {
	_, err := os.Stat(filepath.Join(d.RunDir(id), experiments.DoneFile))
	return err == nil
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
	buf, _, err := boundedfile.Tail(filepath.Join(runDir, experiments.MetricsFile), tailBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return Progress{}, nil
	}
	if err != nil {
		return Progress{}, err
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
