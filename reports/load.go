package reports

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mmablate/mmablate/internal/boundedfile"
	"github.com/mmablate/mmablate/internal/proc"
)

// Files of a sweep directory (see the sweep-directory contract in the
// package doc).
const (
	sweepJSONFile  = "sweep.json"
	sweepYAMLFile  = "sweep.yaml"
	executorFile   = "executor.json"
	runningFile    = "RUNNING"
	failedFile     = "FAILED"
	cellLogFile    = "cell.log"
	cellConfigFile = "config.yaml"
	runDirName     = "run"
	doneFile       = "DONE"
	metricsFile    = "metrics.jsonl"
	evalFile       = "eval.json"
)

// Size limits for files read whole: each is kilobytes when written by
// mmablate, so the limits only stop a wrong file from eating memory.
const (
	maxSweepJSONBytes = 64 << 20
	maxSmallFileBytes = 1 << 20
	maxEvalBytes      = 64 << 20
	maxMetricsLine    = 1 << 20
)

// ErrNotSweep is returned when a directory holds no sweep.json: it is empty,
// or not a sweep directory.
var ErrNotSweep = errors.New("not a sweep directory (no sweep.json; write one with mmablate sweep run)")

// State is where a cell stands.
type State string

// Cell states, as the sweep-directory contract defines them.
const (
	StateDone    State = "done"    // run/DONE exists
	StateFailed  State = "failed"  // FAILED exists and DONE does not
	StateRunning State = "running" // RUNNING names a live process or a Slurm task
	StatePending State = "pending" // none of the above: not started, or lost
)

// Problem is something wrong in the sweep directory that the report lists
// in its Problems section; what it concerns is left out of the report.
type Problem struct {
	File string // relative to the sweep directory, slash-separated
	Line int    // 1-based line of File, 0 when not about one line
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return p.File + ": " + p.Msg
}

// Value is an axis value as sweep.json shows it: an integer, a float or a
// string. Other JSON (booleans, lists such as an unlabelled zip group's
// values) is kept as its compact JSON text, a string.
type Value struct {
	Kind ValueKind
	I    int64
	F    float64
	S    string
}

// ValueKind says which field of a Value holds it.
type ValueKind int

// Value kinds, in widening order: an axis whose values mix kinds takes the
// widest one for its Parquet column.
const (
	KindInt ValueKind = iota
	KindFloat
	KindString
)

// String is the display form, also the key that matches a cell's axis value
// to its axis's list.
func (v Value) String() string {
	switch v.Kind {
	case KindInt:
		return strconv.FormatInt(v.I, 10)
	case KindFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	}
	return v.S
}

// Float is the value as a number, for a float column holding ints.
func (v Value) Float() float64 {
	if v.Kind == KindInt {
		return float64(v.I)
	}
	return v.F
}

// UnmarshalJSON reads any JSON value; numbers must be decoded with
// UseNumber-like precision, so it parses the raw text itself.
func (v *Value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("empty value")
	}
	switch b[0] {
	case '"':
		v.Kind = KindString
		return json.Unmarshal(b, &v.S)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			*v = Value{Kind: KindInt, I: i}
			return nil
		}
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("number %s: %w", b, err)
		}
		*v = Value{Kind: KindFloat, F: f}
		return nil
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return err
	}
	*v = Value{Kind: KindString, S: c.String()}
	return nil
}

// Axis is one axis of the sweep: a key path (or a zip group of them) and
// its display values, in the sweep file's order.
type Axis struct {
	Name   string   `json:"name"`
	Keys   []string `json:"keys"`
	Values []Value  `json:"values"`
}

// Mixture reports whether the axis varies data-source weights
// (data.sources.NAME.weight), so it gets lines against the mixture.
func (a Axis) Mixture() bool {
	if len(a.Keys) == 0 {
		return false
	}
	for _, k := range a.Keys {
		if !strings.HasPrefix(k, "data.sources.") || !strings.HasSuffix(k, ".weight") {
			return false
		}
	}
	return true
}

// Kind is the widest kind among the axis's values.
func (a Axis) Kind() ValueKind {
	k := KindInt
	for _, v := range a.Values {
		k = max(k, v.Kind)
	}
	return k
}

// index returns the position of v among the axis's values, or -1.
func (a Axis) index(v Value) int {
	return slices.IndexFunc(a.Values, func(w Value) bool { return w.String() == v.String() })
}

// Dataset is a dataset a sweep read, with its manifest's hash.
type Dataset struct {
	Path           string `json:"path"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// sweepJSON is DIR/sweep.json.
type sweepJSON struct {
	Version     int              `json:"version"`
	Name        string           `json:"name"`
	File        string           `json:"file"`
	FileSHA256  string           `json:"file_sha256"`
	Created     string           `json:"created"`
	CodeVersion string           `json:"code_version"`
	Axes        []Axis           `json:"axes"`
	Seeds       []int64          `json:"seeds"`
	Baseline    map[string]Value `json:"baseline"`
	Cells       []cellJSON       `json:"cells"`
	Datasets    []Dataset        `json:"datasets"`
}

// cellJSON is one entry of sweep.json's cells (and DIR/cells/ID/cell.json).
type cellJSON struct {
	ID       string           `json:"id"`
	Name     string           `json:"name"`
	Dir      string           `json:"dir"`
	Axes     map[string]Value `json:"axes"`
	Seed     int64            `json:"seed"`
	Baseline bool             `json:"baseline"`
}

// failedJSON is a cell's FAILED file.
type failedJSON struct {
	Reason   string `json:"reason"`
	ExitCode *int   `json:"exit_code"`
	Signal   string `json:"signal"`
	Attempts int    `json:"attempts"`
}

// runningJSON is a cell's RUNNING file.
type runningJSON struct {
	PID  int    `json:"pid"`
	Host string `json:"host"`
	// SlurmJob is a job id, as a string ("123_4") or a number.
	SlurmJob *Value `json:"slurm_job"`
}

// executorJSON is DIR/executor.json.
type executorJSON struct {
	Executor string `json:"executor"`
}

// evalJSON is a run's eval.json, as experiments/eval writes it (Results);
// only what the report uses.
type evalJSON struct {
	Tasks []struct {
		Task  string `json:"task"`
		Shots []struct {
			Shots   int                 `json:"shots"`
			Metrics map[string]statJSON `json:"metrics"`
		} `json:"shots"`
	} `json:"tasks"`
	Perplexity *struct {
		Value float64 `json:"perplexity"`
	} `json:"perplexity"`
}

// statJSON is a metric over the evaluation's trials.
type statJSON struct {
	Mean   float64   `json:"mean"`
	Std    float64   `json:"std"`
	Trials []float64 `json:"trials"`
}

// Score is one metric of one task at one demonstration count.
type Score struct {
	Task   string
	Shots  int
	Metric string
	Mean   float64
	Std    float64   // over trials; 0 for one trial
	Trials []float64 // at least one value
}

// LossPoint is one line of metrics.jsonl.
type LossPoint struct {
	Step int
	Loss float64
}

// Cell is one cell of the sweep with what its directory holds.
type Cell struct {
	ID       string
	Name     string
	Dir      string // relative to the sweep directory
	Axes     []Value
	Seed     int64
	Baseline bool
	State    State
	// Failure is FAILED's reason with its exit status, for a failed cell.
	Failure string
	// LogTail is the end of a failed cell's cell.log: its last lines,
	// which usually hold the error.
	LogTail string
	// Where says where a running cell runs (host and pid, or Slurm job).
	Where string
	// Scores are from run/eval.json, in its order; nil without one.
	Scores []Score
	// Perplexity is the validation perplexity in eval.json; NaN without.
	Perplexity float64
	// Loss is the training loss curve from run/metrics.jsonl.
	Loss []LossPoint
}

// FinalLoss is the last logged training loss, NaN without any.
func (c *Cell) FinalLoss() float64 {
	if len(c.Loss) == 0 {
		return math.NaN()
	}
	return c.Loss[len(c.Loss)-1].Loss
}

// Score returns the cell's score for a task, shot count and metric.
func (c *Cell) Score(task string, shots int, metric string) (Score, bool) {
	for _, s := range c.Scores {
		if s.Task == task && s.Shots == shots && s.Metric == metric {
			return s, true
		}
	}
	return Score{}, false
}

// Sweep is a loaded sweep directory.
type Sweep struct {
	Dir         string // as given
	Name        string
	File        string // the sweep file's absolute path when it was run
	FileSHA256  string
	Created     string
	CodeVersion string
	Axes        []Axis
	Seeds       []int64
	Baseline    map[string]Value
	Cells       []*Cell
	Datasets    []Dataset
	Executor    string // "local", "slurm" or "" when unknown
	SweepYAML   string // DIR/sweep.yaml, the sweep file's bytes
	// BaseConfig is the run config the sweep file's base names, read
	// from beside the sweep file; empty when base is inline or unreadable.
	BaseConfig     string
	BaseConfigPath string
	// BaselineConfig is the resolved run config of the first baseline cell.
	BaselineConfig string
	Problems       []Problem
}

// loader reads a sweep directory; alive says whether a RUNNING file's
// process lives (replaced in tests).
type loader struct {
	dir   string
	log   *slog.Logger
	alive func(host string, pid int) (alive, known bool)
	sw    *Sweep
}

// Load reads the sweep directory dir. It fails only when nothing can be
// reported (no readable sweep.json); anything else wrong is a Problem in the
// result, also logged as a warning.
func Load(ctx context.Context, dir string, log *slog.Logger) (*Sweep, error) {
	l := &loader{dir: dir, log: log, alive: processAlive}
	return l.load(ctx)
}

func (l *loader) load(ctx context.Context) (*Sweep, error) {
	st, err := os.Stat(l.dir)
	if err != nil {
		return nil, fmt.Errorf("sweep directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", l.dir)
	}
	path := filepath.Join(l.dir, sweepJSONFile)
	b, err := boundedfile.Read(path, maxSweepJSONBytes)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(l.dir, metricsFile)); serr == nil {
			return nil, fmt.Errorf("%s: %w; it looks like the run directory of one cell (it has metrics.jsonl)", l.dir, ErrNotSweep)
		}
		return nil, fmt.Errorf("%s: %w", l.dir, ErrNotSweep)
	}
	if err != nil {
		return nil, err
	}
	sj, err := parseSweepJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.sw = &Sweep{
		Dir: l.dir, Name: sj.Name, File: sj.File, FileSHA256: sj.FileSHA256, Created: sj.Created,
		CodeVersion: sj.CodeVersion, Axes: sj.Axes, Seeds: sj.Seeds, Baseline: sj.Baseline, Datasets: sj.Datasets,
	}
	l.readSettings()
	for _, cj := range sj.Cells {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l.sw.Cells = append(l.sw.Cells, l.loadCell(cj))
	}
	for _, c := range l.sw.Cells {
		if c.Baseline && c.State == StateDone {
			l.sw.BaselineConfig = l.readText(filepath.Join(c.Dir, runDirName, "config.resolved.yaml"), true)
		}
		if c.Baseline && l.sw.BaselineConfig == "" {
			l.sw.BaselineConfig = l.readText(filepath.Join(c.Dir, cellConfigFile), false)
		}
		if l.sw.BaselineConfig != "" {
			break
		}
	}
	return l.sw, nil
}

// parseSweepJSON decodes and checks sweep.json.
func parseSweepJSON(b []byte) (*sweepJSON, error) {
	var sj sweepJSON
	if err := json.Unmarshal(b, &sj); err != nil {
		return nil, fmt.Errorf("corrupt JSON: %w", err)
	}
	if sj.Version != 1 {
		return nil, fmt.Errorf("version %d, this mmablate reads version 1", sj.Version)
	}
	axes := map[string]bool{}
	for i, a := range sj.Axes {
		if a.Name == "" {
			return nil, fmt.Errorf("axes[%d]: no name", i)
		}
		if axes[a.Name] {
			return nil, fmt.Errorf("axes[%d]: axis %q listed twice", i, a.Name)
		}
		axes[a.Name] = true
	}
	ids := map[string]bool{}
	for i, c := range sj.Cells {
		switch {
		case c.ID == "":
			return nil, fmt.Errorf("cells[%d]: no id", i)
		case ids[c.ID]:
			return nil, fmt.Errorf("cells[%d]: id %q listed twice", i, c.ID)
		case c.Dir == "" && (strings.ContainsAny(c.ID, `/\`) || !filepath.IsLocal(c.ID)):
			// Without a dir the cell is cells/ID: the id must be a name.
			return nil, fmt.Errorf("cells[%d]: id %q is not a file name", i, c.ID)
		case !filepath.IsLocal(filepath.FromSlash(c.Dir)):
			// A dir like ../../etc would make the report read outside the sweep.
			return nil, fmt.Errorf("cells[%d] (%s): dir %q is not inside the sweep directory", i, c.ID, c.Dir)
		}
		ids[c.ID] = true
		for name := range c.Axes {
			if !axes[name] {
				return nil, fmt.Errorf("cells[%d] (%s): axis %q is not among the sweep's axes", i, c.ID, name)
			}
		}
	}
	return &sj, nil
}

// readSettings reads sweep.yaml, the base config beside the sweep file and
// executor.json.
func (l *loader) readSettings() {
	l.sw.SweepYAML = l.readText(sweepYAMLFile, false)
	if base := baseConfigPath(l.sw.SweepYAML, l.sw.File); base != "" {
		b, err := readBaseConfig(base)
		if err != nil {
			// The sweep may have been run on another machine: worth a note,
			// not a warning.
			l.sw.BaseConfigPath = base + " (not readable here: " + errText(err) + ")"
		} else {
			l.sw.BaseConfig, l.sw.BaseConfigPath = string(b), base
		}
	}
	if s := l.readText(executorFile, true); s != "" {
		var ej executorJSON
		if err := json.Unmarshal([]byte(s), &ej); err != nil {
			l.problem(executorFile, 0, "corrupt JSON: "+err.Error())
		} else {
			l.sw.Executor = ej.Executor
		}
	}
}

// loadCell reads one cell's directory.
func (l *loader) loadCell(cj cellJSON) *Cell {
	c := &Cell{
		ID: cj.ID, Name: cj.Name, Dir: filepath.ToSlash(filepath.Clean(filepath.FromSlash(cj.Dir))),
		Seed: cj.Seed, Baseline: cj.Baseline, Perplexity: math.NaN(),
	}
	if cj.Dir == "" {
		c.Dir = "cells/" + cj.ID
	}
	for ai := range l.sw.Axes {
		a := &l.sw.Axes[ai]
		v, ok := cj.Axes[a.Name]
		if !ok {
			l.problem(sweepJSONFile, 0, fmt.Sprintf("cell %s has no value for axis %q", c.ID, a.Name))
			v = Value{Kind: KindString, S: "?"}
		} else if a.index(v) < 0 {
			l.problem(sweepJSONFile, 0, fmt.Sprintf("cell %s: %s=%s is not among the axis's values; added", c.ID, a.Name, v))
			a.Values = append(a.Values, v)
		}
		c.Axes = append(c.Axes, v)
	}
	run := filepath.Join(c.Dir, runDirName)
	switch {
	case l.exists(filepath.Join(run, doneFile)):
		c.State = StateDone
	case l.exists(filepath.Join(c.Dir, failedFile)):
		c.State = StateFailed
		c.Failure = l.failure(filepath.Join(c.Dir, failedFile))
		c.LogTail = logTail(filepath.Join(l.dir, c.Dir, cellLogFile))
	case l.exists(filepath.Join(c.Dir, runningFile)):
		c.State, c.Where = l.running(filepath.Join(c.Dir, runningFile))
	default:
		c.State = StatePending
	}
	if c.State != StatePending || l.exists(filepath.Join(run, metricsFile)) {
		c.Loss = l.readMetrics(filepath.Join(run, metricsFile), c.State != StateDone)
	}
	if c.State == StateDone {
		l.readEval(c, filepath.Join(run, evalFile))
	}
	return c
}

// failure describes a FAILED file.
func (l *loader) failure(rel string) string {
	s, ok := l.readFile(rel, false)
	if !ok {
		return "FAILED is not readable"
	}
	if s == "" {
		return "FAILED is empty"
	}
	var f failedJSON
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		l.problem(rel, 0, "corrupt JSON: "+err.Error())
		return "FAILED is not readable"
	}
	msg := f.Reason
	if msg == "" {
		msg = "no reason given"
	}
	var how []string
	if f.ExitCode != nil {
		how = append(how, fmt.Sprintf("exit %d", *f.ExitCode))
	}
	if f.Signal != "" {
		how = append(how, "signal "+f.Signal)
	}
	if f.Attempts > 1 {
		how = append(how, fmt.Sprintf("%d attempts", f.Attempts))
	}
	if len(how) > 0 {
		msg += " (" + strings.Join(how, ", ") + ")"
	}
	return msg
}

// running reads a RUNNING file: a local process on this host that is gone
// leaves the cell pending (a crash that wrote no FAILED); anything the
// report cannot check (another host, a Slurm job) counts as running.
func (l *loader) running(rel string) (State, string) {
	s, ok := l.readFile(rel, false)
	if !ok {
		return StateRunning, "unknown"
	}
	var r runningJSON
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		l.problem(rel, 0, "corrupt JSON: "+err.Error())
		return StateRunning, "unknown"
	}
	if r.SlurmJob != nil && r.SlurmJob.String() != "" {
		return StateRunning, "Slurm job " + r.SlurmJob.String() + hostSuffix(r.Host)
	}
	where := fmt.Sprintf("pid %d%s", r.PID, hostSuffix(r.Host))
	if alive, known := l.alive(r.Host, r.PID); known && !alive {
		l.problem(rel, 0, fmt.Sprintf("names %s, which is not running: the cell is counted as pending", where))
		return StatePending, ""
	}
	return StateRunning, where
}

func hostSuffix(h string) string {
	if h == "" {
		return ""
	}
	return " on " + h
}

// processAlive checks a pid on this host; a pid on another host cannot be
// checked.
func processAlive(host string, pid int) (alive, known bool) {
	if me := proc.Hostname(); me == "" || host != me || pid <= 0 {
		return false, false
	}
	return proc.Alive(pid), true
}

// Bounds of a failed cell's log tail in the report.
const (
	logTailBytes = 2048
	logTailLines = 3
	logLineRunes = 200
)

// logTail returns the last non-empty lines of a log, "" when there is none.
func logTail(path string) string {
	b, cut, err := boundedfile.Tail(path, logTailBytes)
	if err != nil {
		return ""
	}
	if i := bytes.IndexByte(b, '\n'); cut && i >= 0 {
		b = b[i+1:] // the first line was cut
	}
	var lines []string
	for _, ln := range strings.Split(string(b), "\n") {
		if ln = strings.TrimSpace(ln); ln != "" {
			if r := []rune(ln); len(r) > logLineRunes {
				ln = string(r[:logLineRunes]) + "…"
			}
			lines = append(lines, ln)
		}
	}
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return strings.Join(lines, "\n")
}

// readMetrics reads a metrics.jsonl, skipping lines it cannot parse (each a
// Problem). A missing file is a problem only for a done cell; the last line
// of a running cell may be half-written, so it is skipped silently.
func (l *loader) readMetrics(rel string, live bool) []LossPoint {
	f, err := os.Open(filepath.Join(l.dir, rel))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) || !live {
			l.problem(rel, 0, "no training curve: "+errText(err))
		}
		return nil
	}
	defer f.Close()
	pts, bad, err := parseMetrics(f)
	if err != nil {
		l.problem(rel, 0, err.Error())
	}
	for i, b := range bad {
		if live && i == len(bad)-1 && b.last {
			continue
		}
		l.problem(rel, b.line, "skipped: "+b.err.Error())
	}
	return pts
}

// badLine is a metrics.jsonl line that did not parse.
type badLine struct {
	line int
	err  error
	last bool // the file's last line
}

// parseMetrics reads metrics.jsonl lines. A read error (or a line over
// maxMetricsLine) stops it and is returned with what was read before.
func parseMetrics(r io.Reader) ([]LossPoint, []badLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxMetricsLine)
	var (
		pts []LossPoint
		bad []badLine
		n   int
	)
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		p, err := parseMetricsLine(line)
		if err != nil {
			bad = append(bad, badLine{line: n, err: err})
			continue
		}
		pts = append(pts, p)
	}
	if len(bad) > 0 && bad[len(bad)-1].line == n {
		bad[len(bad)-1].last = true
	}
	if err := sc.Err(); err != nil {
		return pts, bad, fmt.Errorf("line %d: %w", n+1, err)
	}
	return pts, bad, nil
}

// parseMetricsLine reads one metrics.jsonl record: a JSON object with an
// integer step ≥ 0 and a finite loss.
func parseMetricsLine(line []byte) (LossPoint, error) {
	var m struct {
		Step *int     `json:"step"`
		Loss *float64 `json:"loss"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return LossPoint{}, fmt.Errorf("corrupt JSON: %w", err)
	}
	switch {
	case m.Step == nil:
		return LossPoint{}, errors.New("no step")
	case *m.Step < 0:
		return LossPoint{}, fmt.Errorf("step %d < 0", *m.Step)
	case m.Loss == nil:
		return LossPoint{}, errors.New("no loss")
	}
	return LossPoint{Step: *m.Step, Loss: *m.Loss}, nil
}

// readEval reads a done cell's eval.json into its scores.
func (l *loader) readEval(c *Cell, rel string) {
	b, err := boundedfile.Read(filepath.Join(l.dir, rel), maxEvalBytes)
	if err != nil {
		l.problem(rel, 0, "no evaluation results, the cell has no scores: "+errText(err))
		return
	}
	scores, ppl, err := parseEval(b)
	if err != nil {
		l.problem(rel, 0, "the cell has no scores: "+err.Error())
		return
	}
	if len(scores) == 0 {
		l.problem(rel, 0, "no task scores in it")
	}
	c.Scores, c.Perplexity = scores, ppl
}

// parseEval turns eval.json into scores and the perplexity (NaN if absent).
func parseEval(b []byte) ([]Score, float64, error) {
	var ej evalJSON
	if err := json.Unmarshal(b, &ej); err != nil {
		return nil, 0, fmt.Errorf("corrupt JSON: %w", err)
	}
	var scores []Score
	for _, t := range ej.Tasks {
		if t.Task == "" {
			return nil, 0, errors.New("a task without a name")
		}
		for _, sh := range t.Shots {
			names := make([]string, 0, len(sh.Metrics))
			for name := range sh.Metrics {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				m := sh.Metrics[name]
				trials := m.Trials
				if len(trials) == 0 {
					trials = []float64{m.Mean}
				}
				scores = append(scores, Score{Task: t.Task, Shots: sh.Shots, Metric: name, Mean: m.Mean, Std: m.Std, Trials: trials})
			}
		}
	}
	ppl := math.NaN()
	if ej.Perplexity != nil {
		ppl = ej.Perplexity.Value
	}
	return scores, ppl, nil
}

// readText reads a small text file of the sweep directory; a missing file
// gives "" and, unless optional, a Problem.
func (l *loader) readText(rel string, optional bool) string {
	s, _ := l.readFile(rel, optional)
	return s
}

// readFile is readText that also says whether the file was read (a
// problem is already recorded when it was not).
func (l *loader) readFile(rel string, optional bool) (string, bool) {
	b, err := boundedfile.Read(filepath.Join(l.dir, rel), maxSmallFileBytes)
	if err != nil {
		if !optional || !errors.Is(err, fs.ErrNotExist) {
			l.problem(rel, 0, errText(err))
		}
		return "", false
	}
	return string(b), true
}

func (l *loader) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(l.dir, rel))
	return err == nil
}

// problem records a Problem and logs it as a warning naming the file.
func (l *loader) problem(rel string, line int, msg string) {
	p := Problem{File: filepath.ToSlash(rel), Line: line, Msg: msg}
	l.sw.Problems = append(l.sw.Problems, p)
	args := []any{"file", filepath.Join(l.dir, rel)}
	if line > 0 {
		args = append(args, "line", line)
	}
	l.log.Warn("report: "+msg, args...)
}

// errText is an error without the path an *fs.PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readBaseConfig reads the base run config a sweep file names. sweep.yaml
// may come from someone else's sweep directory, so only a .yaml/.yml file
// holding a YAML mapping is copied into the report: a base key naming any
// other file (a key, a password file) must not leak it into report.html.
func readBaseConfig(path string) ([]byte, error) {
	if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
		return nil, fmt.Errorf("%s: not a .yaml run config", path)
	}
	b, err := boundedfile.Read(path, maxSmallFileBytes)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil || len(n.Content) != 1 || n.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML run config (a mapping)", path)
	}
	return b, nil
}

// baseConfigPath is the file the sweep file's base key names, resolved
// against the sweep file's directory; "" when base is inline or absent.
func baseConfigPath(sweepYAML, sweepFile string) string {
	var m struct {
		Base yaml.Node `yaml:"base"`
	}
	if err := yaml.Unmarshal([]byte(sweepYAML), &m); err != nil || m.Base.Kind != yaml.ScalarNode || m.Base.Value == "" {
		return ""
	}
	p := m.Base.Value
	if !filepath.IsAbs(p) {
		if sweepFile == "" {
			return ""
		}
		p = filepath.Join(filepath.Dir(sweepFile), p)
	}
	return p
}
