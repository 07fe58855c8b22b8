package local

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
)

// Snapshot is the sweep's progress at one moment.
type Snapshot struct {
	Running                       []CellProgress
	Done, Failed, Pending, Active int
	// ETA is the sweep's remaining time from the steps per second seen so
	// far over all cells (0: not known yet). Evaluation time is not in it.
	ETA time.Duration
}

// CellProgress is one running cell.
type CellProgress struct {
	Name        string
	Step, Steps int
	Loss        float64
	ETA         time.Duration // 0: not known yet
}

// Display shows a sweep's progress.
type Display interface {
	// Event reports that a cell started or ended.
	Event(msg string)
	// Update shows the current state; called every Interval.
	Update(s Snapshot)
	Interval() time.Duration
	// Close ends the display after a last Update.
	Close()
}

// TermDisplay redraws a block of lines on a terminal about once a second.
type TermDisplay struct {
	W io.Writer
	// Width, when > 0, is the terminal's: longer lines are cut, since a
	// wrapped line would throw off the count of lines to redraw.
	Width int
	mu    sync.Mutex
	lines int // lines of the block on screen
	last  Snapshot
}

// Interval implements Display.
func (d *TermDisplay) Interval() time.Duration { return time.Second }

// Event prints msg above the block.
func (d *TermDisplay) Event(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.erase()
	fmt.Fprintln(d.W, msg)
	d.draw(d.last)
}

// Update redraws the block.
func (d *TermDisplay) Update(s Snapshot) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = s
	d.erase()
	d.draw(s)
}

// Close leaves the last block on screen.
func (d *TermDisplay) Close() {}

func (d *TermDisplay) erase() {
	if d.lines > 0 {
		// Up to the block's first line, then clear to the end of the screen.
		fmt.Fprintf(d.W, "\x1b[%dA\r\x1b[J", d.lines)
	}
	d.lines = 0
}

func (d *TermDisplay) draw(s Snapshot) {
	var b strings.Builder
	line := func(l string) {
		if r := []rune(l); d.Width > 0 && len(r) >= d.Width {
			l = string(r[:d.Width-1])
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, c := range s.Running {
		line(fmt.Sprintf("  %-40s %s", c.Name, cellLine(c)))
	}
	line(overallLine(s))
	io.WriteString(d.W, b.String())
	d.lines = len(s.Running) + 1
}

func cellLine(c CellProgress) string {
	steps := "?"
	if c.Steps > 0 {
		steps = fmt.Sprint(c.Steps)
	}
	s := fmt.Sprintf("step %d/%s", c.Step, steps)
	if c.Step > 0 {
		s += fmt.Sprintf("  loss %.4f", c.Loss)
	}
	return s + "  ETA " + eta(c.ETA)
}

func overallLine(s Snapshot) string {
	return fmt.Sprintf("sweep: %d done, %d failed, %d running, %d pending  ETA %s", s.Done, s.Failed, s.Active, s.Pending, eta(s.ETA))
}

func eta(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

// LogDisplay logs events and, every ten seconds, the progress.
type LogDisplay struct {
	Log *slog.Logger
}

// Interval implements Display.
func (d *LogDisplay) Interval() time.Duration { return 10 * time.Second }

// Event logs msg.
func (d *LogDisplay) Event(msg string) { d.Log.Info(msg) }

// Update logs one line for the sweep and one per running cell.
func (d *LogDisplay) Update(s Snapshot) {
	for _, c := range s.Running {
		d.Log.Info("cell progress", "cell", c.Name, "step", c.Step, "steps", c.Steps, "loss", c.Loss, "eta", eta(c.ETA))
	}
	d.Log.Info("sweep progress", "done", s.Done, "failed", s.Failed, "running", s.Active, "pending", s.Pending, "eta", eta(s.ETA))
}

// Close implements Display.
func (d *LogDisplay) Close() {}

// tracker follows the cells of one Run.
type tracker struct {
	mu    sync.Mutex
	cells []*track
	byID  map[string]*track
	began time.Time // first cell start
	disp  Display

	failed []executor.FailedCell
}

type track struct {
	cell    ablations.CellInfo
	run     string // the cell's run directory
	state   string // pending, running, done, failed, interrupted, skipped
	steps   int    // train.steps, 0 if unknown
	base    int    // the step the cell stood at when this run started it
	first   executor.Progress
	last    executor.Progress
	counted bool // part of this run's work (not skipped)
}

func newTracker(d *ablations.Dir) *tracker {
	t := &tracker{byID: make(map[string]*track)}
	for _, c := range d.Manifest.Cells {
		tk := &track{cell: c, run: d.RunDir(c.ID), state: "pending", counted: true}
		// Unknown steps only blank the ETA.
		tk.steps, _ = executor.Steps(d, c.ID)
		t.cells = append(t.cells, tk)
		t.byID[c.ID] = tk
	}
	return t
}

func (t *tracker) skip(c ablations.CellInfo, done bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tk := t.byID[c.ID]
	tk.counted = false
	tk.state = "skipped"
	if done {
		tk.state = "done"
	}
}

func (t *tracker) start(c ablations.CellInfo) {
	t.mu.Lock()
	tk := t.byID[c.ID]
	t.mu.Unlock()
	p, _ := executor.ReadProgress(tk.run)
	t.mu.Lock()
	tk.state, tk.base, tk.first, tk.last = "running", p.Step, executor.Progress{}, p
	if t.began.IsZero() {
		t.began = time.Now()
	}
	disp := t.disp
	t.mu.Unlock()
	msg := "cell start: " + c.Name
	if p.Step > 0 {
		msg += fmt.Sprintf(" (resuming after step %d)", p.Step)
	}
	if disp != nil {
		disp.Event(msg)
	}
}

func (t *tracker) finish(c ablations.CellInfo, out outcome, reason string) {
	t.mu.Lock()
	tk := t.byID[c.ID]
	var msg string
	switch out {
	case finished:
		tk.state = "done"
		tk.last.Step = tk.steps
		msg = "cell done: " + c.Name
	case failed:
		tk.state = "failed"
		log := filepath.Join(filepath.Dir(tk.run), ablations.LogFile)
		t.failed = append(t.failed, executor.FailedCell{Name: c.Name, Reason: reason, Log: log})
		msg = fmt.Sprintf("cell FAILED: %s: %s (log: %s)", c.Name, reason, log)
	case interrupted:
		tk.state = "interrupted"
		msg = "cell stopped at a checkpoint: " + c.Name
	case elsewhere:
		tk.state, tk.counted = "skipped", false
		msg = "cell left to the other process running it: " + c.Name
	}
	disp := t.disp
	t.mu.Unlock()
	if disp != nil {
		disp.Event(msg)
	}
}

// show starts updating disp; the returned func stops it (idempotent).
func (t *tracker) show(disp Display) func() {
	t.mu.Lock()
	t.disp = disp
	t.mu.Unlock()
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(disp.Interval())
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				disp.Update(t.snapshot(time.Now()))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-finished
			disp.Update(t.snapshot(time.Now()))
			disp.Close()
		})
	}
}

// snapshot reads the running cells' metrics and computes the ETAs.
func (t *tracker) snapshot(now time.Time) Snapshot {
	t.mu.Lock()
	var running []*track
	for _, tk := range t.cells {
		if tk.state == "running" {
			running = append(running, tk)
		}
	}
	t.mu.Unlock()
	// File reads outside the lock: a slow disk must not hold up the workers.
	progress := make([]executor.Progress, len(running))
	for i, tk := range running {
		progress[i], _ = executor.ReadProgress(tk.run)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	for i, tk := range running {
		if tk.state != "running" || progress[i].Step <= tk.last.Step {
			continue
		}
		if tk.first.Step == 0 {
			tk.first = progress[i]
		}
		tk.last = progress[i]
	}
	var s Snapshot
	var doneSteps, leftSteps int
	for _, tk := range t.cells {
		switch tk.state {
		case "done":
			s.Done++
		case "failed":
			s.Failed++
		case "running":
			s.Active++
			cp := CellProgress{Name: tk.cell.Name, Step: tk.last.Step, Steps: tk.steps, Loss: tk.last.Loss}
			if dt := tk.last.Time.Sub(tk.first.Time); dt > 0 && tk.last.Step > tk.first.Step && tk.steps > 0 {
				perStep := dt / time.Duration(tk.last.Step-tk.first.Step)
				cp.ETA = perStep * time.Duration(max(0, tk.steps-tk.last.Step))
			}
			s.Running = append(s.Running, cp)
		default:
			s.Pending++
		}
		if !tk.counted {
			continue
		}
		switch tk.state {
		case "done", "running":
			doneSteps += max(0, tk.last.Step-tk.base)
			leftSteps += max(0, tk.steps-tk.last.Step)
		case "pending", "interrupted":
			leftSteps += max(0, tk.steps-tk.last.Step)
		}
	}
	if elapsed := now.Sub(t.began); !t.began.IsZero() && doneSteps > 0 && elapsed > 0 {
		s.ETA = time.Duration(float64(elapsed) / float64(doneSteps) * float64(leftSteps))
	}
	return s
}

type summary struct {
	done, interrupted, pending int
	elsewhere                  int // running in another process
	failed                     []executor.FailedCell
}

func (t *tracker) summary() summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	var s summary
	for _, tk := range t.cells {
		switch tk.state {
		case "done":
			s.done++
		case "interrupted":
			s.interrupted++
		case "pending":
			s.pending++
		case "skipped":
			s.elsewhere++
		}
	}
	s.failed = append(s.failed, t.failed...)
	return s
}
