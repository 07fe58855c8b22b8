package local

import (
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
)

func TestSnapshotETA(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cell := func(name string) ablations.CellInfo { return ablations.CellInfo{ID: name, Name: name} }
	tr := &tracker{byID: map[string]*track{}, began: t0}
	add := func(tk *track) {
		tr.cells = append(tr.cells, tk)
		tr.byID[tk.cell.ID] = tk
	}
	// Done: 100 steps. Running: 40 of 100 steps in 20 s since step 0.
	// Pending: 100 steps. Skipped (done before this run): not counted.
	add(&track{cell: cell("done"), state: "done", steps: 100, last: executor.Progress{Step: 100}, counted: true})
	add(&track{cell: cell("running"), state: "running", steps: 100, counted: true,
		first: executor.Progress{Step: 10, Time: t0.Add(5 * time.Second)}, last: executor.Progress{Step: 40, Loss: 2.5, Time: t0.Add(20 * time.Second)}})
	add(&track{cell: cell("pending"), state: "pending", steps: 100, counted: true})
	add(&track{cell: cell("old"), state: "done", steps: 100, last: executor.Progress{Step: 100}})
	s := tr.snapshot(t0.Add(70 * time.Second))
	if s.Done != 2 || s.Active != 1 || s.Pending != 1 || s.Failed != 0 {
		t.Errorf("counts %+v", s)
	}
	// 140 steps in 70 s: 2 steps/s for the 160 left.
	if s.ETA != 80*time.Second {
		t.Errorf("sweep ETA %v, want 80s", s.ETA)
	}
	// 30 steps in 15 s: 0.5 s a step for the 60 left.
	if len(s.Running) != 1 || s.Running[0].ETA != 30*time.Second || s.Running[0].Step != 40 || s.Running[0].Loss != 2.5 {
		t.Errorf("running %+v", s.Running)
	}
}

func TestTermDisplayRedraws(t *testing.T) {
	var b strings.Builder
	d := &TermDisplay{W: &b}
	snap := Snapshot{Running: []CellProgress{{Name: "res=32,seed=0", Step: 40, Steps: 100, Loss: 2.5, ETA: 30 * time.Second}}, Done: 1, Active: 1, Pending: 2, ETA: 90 * time.Second}
	d.Update(snap)
	d.Event("cell done: res=64,seed=0")
	got := b.String()
	block := "  res=32,seed=0                            step 40/100  loss 2.5000  ETA 30s\n" +
		"sweep: 1 done, 0 failed, 1 running, 2 pending  ETA 1m30s\n"
	// The block, then: up two lines, clear, the event, the block again.
	want := block + "\x1b[2A\r\x1b[J" + "cell done: res=64,seed=0\n" + block
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestTermDisplayCutsLongLines(t *testing.T) {
	var b strings.Builder
	d := &TermDisplay{W: &b, Width: 20}
	d.Update(Snapshot{Running: []CellProgress{{Name: "connector=cabstractor,tokens=64,res=128,seed=0", Step: 1, Steps: 9}}})
	want := "  connector=cabstra\nsweep: 0 done, 0 fa\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
