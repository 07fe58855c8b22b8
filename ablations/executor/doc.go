// Package executor holds what the sweep executors share: the Executor
// interface that the local and Slurm executors implement, executor.json
// (which executor ran a sweep directory last), the run-cell job that trains
// one cell in its own process, each cell's status with its progress read
// from metrics.jsonl, and the failure summary.
//
// The sweep directory and its RUNNING and FAILED records are package
// ablations' (see ablations.Dir). RunCell, the body of the hidden command
// `mmablate sweep run-cell DIR ID`, keeps those records: it clears FAILED
// (counting the attempt), writes RUNNING, trains (or resumes from the newest
// checkpoint), removes RUNNING, and writes FAILED on an error or a panic. A
// process killed outright cannot write FAILED; the executor that watched it
// does.
package executor

import (
	"context"

	"github.com/mmablate/mmablate/ablations"
)

// Executor runs the cells of a sweep directory and reports on them.
type Executor interface {
	// Run starts the sweep's unfinished cells. The local executor returns
	// when every cell has ended; the Slurm executor once the job is queued.
	Run(ctx context.Context, d *ablations.Dir) error
	// Status returns every cell's state, in sweep order.
	Status(ctx context.Context, d *ablations.Dir) ([]CellStatus, error)
	// Cancel stops what Run started; stopped cells resume on the next Run.
	Cancel(ctx context.Context, d *ablations.Dir) error
}
