// Package ablations owns sweeps: the sweep file (a base run config and the
// axes that vary), its expansion into cells, and the sweep directory that
// executors run the cells in and reports read.
//
// # Sweep file
//
//	name: resolution
//	base: ../../experiments/examples/tiny.yaml   # a path (relative to this file) or an inline run config
//	set: {train.steps: 200, data.packing.image_tokens: 0, data.packing.resolution: 0}   # every cell; 0: follow the model
//	axes:                                        # key path → values; the cells are the cartesian product
//	  model.vision.resolution: [32, 64]
//	  model.connector.tokens: [4, 16]
//	labels: {model.vision.resolution: res, model.connector.tokens: tokens}
//	zip:                                         # keys that vary together: one axis each group
//	  - name: mixture
//	    keys: [data.sources.caption.weight, data.sources.text.weight]
//	    values: [[90, 10], [50, 50]]
//	    labels: ["90/10", "50/50"]
//	exclude: [{res: 32, tokens: 16}]             # drop cells matching every listed axis value
//	seeds: [0, 1]                                # default [0]
//	baseline: {res: 64, tokens: 16}
//	slurm: {partition: debug, time: "00:30:00", mem: 4G, cpus_per_task: 2, max_parallel: 4}
//
// The axes are those of `axes` in file order, then the zip groups; cells
// go through them with the first axis varying slowest and the seeds
// fastest. Each cell's run config is the base with the `set` entries,
// then the axis values, then `seed: N` applied as experiments'
// key.path=value overrides, so every value meets the run config's own
// type and unknown-key checks. A mapping value for a section replaces the
// whole section, as `mmablate train --set` does: keys it leaves out take
// experiments' defaults, not the base's (set leaf keys to change a few).
// A grid is at most MaxCells cells.
// Errors name the sweep file, the line and the key path:
//
//	sweep.yaml:12: axes.model.vision.resolutoin: unknown key in the run config (did you mean model.vision.resolution?)
//
// A cell's name is its axes' label=value pairs in axis order, then seed=N
// (res=32,tokens=4,seed=0); its id is the first 12 hex digits of the sha256
// of its resolved config with train.threads zeroed (threads change the
// bits of a result, not what is being measured) and dataset paths made
// relative to the sweep file's directory (so a checkout elsewhere, or a
// cluster's shared copy, gives the same ids).
//
// # Sweep directory
//
//	DIR/sweep.yaml             the sweep file's bytes
//	DIR/sweep.json             Manifest: axes, seeds, baseline, cells, datasets, slurm
//	DIR/cells/<id>/cell.json   the cell's CellInfo
//	DIR/cells/<id>/config.yaml its resolved run config (experiments.Load reads it)
//	DIR/cells/<id>/run/        its experiments run directory; run/DONE marks it done
//	DIR/cells/<id>/RUNNING     RunningInfo while a process runs it
//	DIR/cells/<id>/FAILED      FailedInfo after a failure
//	DIR/cells/<id>/cell.log    the output of every attempt
//
// Prepare makes or refreshes DIR, OpenDir reads it, Dir.CellState says
// whether a cell is pending, running, done or failed. Plan (plan.go) sizes
// and times the cells before any runs.
package ablations
