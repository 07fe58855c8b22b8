package local

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/ablations/executor"
	"github.com/mmablate/mmablate/internal/proc"
)

// Status reads every cell's state from its directory.
func (e *Executor) Status(_ context.Context, d *ablations.Dir) ([]executor.CellStatus, error) {
	return executor.DiskStatuses(d)
}

// Cancel sends SIGTERM to the executor process named in executor.json and
// to every cell process named in a RUNNING record, on this host: the
// executor stops its cells and each stops at a checkpoint, to resume on the
// next run. Processes on other hosts are named in the error.
func (e *Executor) Cancel(_ context.Context, d *ablations.Dir) error {
	log := e.log()
	host := proc.Hostname()
	rec, err := executor.ReadRecord(d)
	if err != nil {
		return err
	}
	var elsewhere []string
	signalled := 0
	term := func(what string, pid int, on string) {
		if on != host {
			elsewhere = append(elsewhere, fmt.Sprintf("%s (pid %d on %s)", what, pid, on))
			return
		}
		if !proc.Alive(pid) {
			return
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			log.Warn("cannot signal", "what", what, "pid", pid, "err", err)
			return
		}
		signalled++
		log.Info("sent SIGTERM", "what", what, "pid", pid)
	}
	// An ended executor's pid may belong to another process by now.
	if rec != nil && rec.Local != nil && rec.Ended == nil && rec.Local.PID != os.Getpid() {
		term("executor", rec.Local.PID, rec.Local.Host)
	}
	for _, c := range d.Manifest.Cells {
		st, err := d.CellState(c.ID)
		if err != nil {
			return err
		}
		if r := st.Running; st.State == ablations.Running && r.SlurmJob == "" {
			term("cell "+c.Name, r.PID, r.Host)
		}
	}
	if len(elsewhere) > 0 {
		return fmt.Errorf("cannot signal processes on other hosts: %v", elsewhere)
	}
	if signalled == 0 {
		log.Info("nothing running", "dir", d.Path)
	}
	return nil
}
