// Package executor holds what the sweep executors share: the Executor
// interface that the local and Slurm executors implement, the on-disk sweep
// directory as they read it (sweep.json's cells, each cell's state), the
// records a running or failed cell leaves in its directory, the run-cell job
// that trains one cell in its own process, and each cell's progress read from
// its metrics.jsonl.
//
// A sweep directory, as written by ablations.Prepare:
//
//	DIR/sweep.json               the cells: [{"id","name","index","dir":"cells/<id>",...}], "slurm":{...}
//	DIR/executor.json            which executor ran it: {"executor":"local"|"slurm","started",...}
//	DIR/cells/<id>/config.yaml   the cell's resolved run config
//	DIR/cells/<id>/run/          the experiments run directory (DONE when finished)
//	DIR/cells/<id>/cell.log      the output of every process that ran the cell, appended
//	DIR/cells/<id>/RUNNING       {"pid","host","started","executor","slurm_job","attempt"} while a process runs it
//	DIR/cells/<id>/FAILED        {"reason","exit_code","signal","time","attempts","executor"} after a failure
//
// A cell is done when run/DONE exists; failed when FAILED exists and DONE
// does not; running when RUNNING names a live process (on another host it is
// taken at its word); else pending. RunCell, the body of the hidden command
// `mmablate sweep run-cell DIR ID`, keeps these records: it clears FAILED
// (counting the attempt), writes RUNNING, trains (or resumes from the newest
// checkpoint), removes RUNNING, and writes FAILED on an error. A process
// killed outright cannot write FAILED; the executor that watched it does.
package executor
