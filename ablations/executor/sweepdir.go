package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmablate/mmablate/experiments"
)

// Executor runs the cells of a sweep directory and reports on them.
type Executor interface {
	// Run starts the sweep's unfinished cells. The local executor returns
	// when every cell has ended; the Slurm executor once the job is queued.
	Run(ctx context.Context, s *Sweep) error
	// Status returns every cell's state, in sweep order.
	Status(ctx context.Context, s *Sweep) ([]CellStatus, error)
	// Cancel stops what Run started; stopped cells resume on the next Run.
	Cancel(ctx context.Context, s *Sweep) error
}

// File names inside a sweep directory and its cell directories.
const (
	ManifestFile = "sweep.json"
	ExecutorFile = "executor.json"
	ConfigFile   = "config.yaml"
	RunDir       = "run"
	LogFile      = "cell.log"
	RunningFile  = "RUNNING"
	FailedFile   = "FAILED"
)

// Sweep is a sweep directory as the executors need it.
type Sweep struct {
	Dir   string // absolute
	Name  string
	Cells []Cell
	// Slurm holds the sweep file's slurm: section.
	Slurm Resources
}

// Cell is one cell of a sweep directory.
type Cell struct {
	ID    string
	Name  string
	Index int
	// Dir is the cell directory, absolute.
	Dir string
}

// Resources are the Slurm settings of a sweep file's slurm: section.
type Resources struct {
	Partition   string `json:"partition"`
	Time        string `json:"time"`
	Mem         string `json:"mem"`
	CPUsPerTask int    `json:"cpus_per_task"`
	Gres        string `json:"gres"`
	MaxParallel int    `json:"max_parallel"`
	RequeueExit int    `json:"requeue_exit"`
	Account     string `json:"account"`
	QOS         string `json:"qos"`
}

// manifest is the part of sweep.json the executors read; the rest is
// ablations' business.
type manifest struct {
	Name  string `json:"name"`
	Cells []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Index int    `json:"index"`
		Dir   string `json:"dir"`
	} `json:"cells"`
	Slurm Resources `json:"slurm"`
}

// maxManifestBytes bounds sweep.json: a sweep of ten thousand cells is a
// few megabytes.
const maxManifestBytes = 64 << 20

// Open reads the sweep directory dir.
func Open(dir string) (*Sweep, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sweep directory %s: %w", dir, err)
	}
	path := filepath.Join(abs, ManifestFile)
	b, err := readBounded(path, maxManifestBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a sweep directory: no %s (make one with `mmablate sweep run FILE --out %s`)", dir, ManifestFile, dir)
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &Sweep{Dir: abs, Name: m.Name, Slurm: m.Slurm}
	seen := make(map[string]bool, len(m.Cells))
	for i, c := range m.Cells {
		// The id names a directory and travels through Slurm's cells file:
		// it must be a plain name.
		if !isCellID(c.ID) {
			return nil, fmt.Errorf("%s: cells[%d].id %q is not a cell id (hex digits)", path, i, c.ID)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("%s: cells[%d].id %s appears twice", path, i, c.ID)
		}
		seen[c.ID] = true
		rel := c.Dir
		if rel == "" {
			rel = filepath.Join("cells", c.ID)
		}
		if filepath.IsAbs(rel) || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s: cells[%d].dir %q is not a path inside the sweep directory", path, i, c.Dir)
		}
		s.Cells = append(s.Cells, Cell{ID: c.ID, Name: c.Name, Index: c.Index, Dir: filepath.Join(abs, rel)})
	}
	if len(s.Cells) == 0 {
		return nil, fmt.Errorf("%s: no cells", path)
	}
	return s, nil
}

func isCellID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

// Cell returns the cell with this id.
func (s *Sweep) Cell(id string) (Cell, error) {
	for _, c := range s.Cells {
		if c.ID == id {
			return c, nil
		}
	}
	return Cell{}, fmt.Errorf("sweep %s has no cell %q (see %s)", s.Dir, id, filepath.Join(s.Dir, ManifestFile))
}

// ConfigPath is the cell's resolved run config.
func (c Cell) ConfigPath() string { return filepath.Join(c.Dir, ConfigFile) }

// RunPath is the cell's experiments run directory.
func (c Cell) RunPath() string { return filepath.Join(c.Dir, RunDir) }

// LogPath is the cell's log.
func (c Cell) LogPath() string { return filepath.Join(c.Dir, LogFile) }

// Steps reads train.steps from the cell's config, for progress.
func (c Cell) Steps() (int, error) {
	cfg, err := experiments.Load(c.ConfigPath(), nil)
	if err != nil {
		return 0, err
	}
	return cfg.Train.Steps, nil
}

// Done reports whether the cell's run has finished.
func (c Cell) Done() bool {
	_, err := os.Stat(filepath.Join(c.RunPath(), experiments.DoneFile))
	return err == nil
}
