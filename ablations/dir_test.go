package ablations

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/experiments"
)

func TestPrepareFreshSameForeign(t *testing.T) {
	s := loadTestSweep(t, "testdata/grid.yaml")
	dir := filepath.Join(t.TempDir(), "sweep")
	d, err := Prepare(dir, s, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, SweepFile)); err != nil || string(b) != string(s.Source) {
		t.Errorf("sweep.yaml: %v, %q", err, b)
	}
	for _, c := range s.Cells {
		var info CellInfo
		b, err := os.ReadFile(filepath.Join(d.CellDir(c.ID), CellFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &info); err != nil || info.ID != c.ID || info.Name != c.Name || info.Dir != "cells/"+c.ID {
			t.Errorf("cell.json of %s: %v, %+v", c.Name, err, info)
		}
		cfg, err := d.LoadConfig(c.ID)
		if err != nil {
			t.Fatalf("config.yaml of %s: %v", c.Name, err)
		}
		if id, _ := cellID(cfg, s.Root); id != c.ID {
			t.Errorf("config.yaml of %s reads back with id %s", c.ID, id)
		}
	}
	o, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := o.Manifest
	if m.Version != 1 || m.Name != "grid" || m.FileSHA256 != s.FileSHA256 || m.File != s.File || len(m.Cells) != 6 ||
		!slices.Equal(m.Seeds, []int{0, 1}) || m.Baseline["res"] != float64(64) || len(m.Axes) != 2 || m.Slurm.Partition != "debug" {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Datasets) != 6 { // three sources and three eval sets (eval.text is the world's held-out eval/text)
		t.Errorf("datasets %+v", m.Datasets)
	}

	// The same sweep again keeps a cell's run and the creation time.
	run := d.RunDir(s.Cells[0].ID)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, experiments.DoneFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(d.CellDir(s.Cells[0].ID), ConfigFile)
	before, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Prepare(dir, s, false)
	if err != nil {
		t.Fatal(err)
	}
	// An unchanged cell's files are left alone, not rewritten.
	if after, err := os.Stat(cfgPath); err != nil || !os.SameFile(before, after) {
		t.Errorf("config.yaml was replaced by re-preparing the same sweep (%v)", err)
	}
	if again.Manifest.Created != m.Created {
		t.Errorf("created %s, was %s", again.Manifest.Created, m.Created)
	}
	if st, err := again.CellState(s.Cells[0].ID); err != nil || st.State != Done {
		t.Errorf("state of the finished cell after re-preparing: %+v, %v", st, err)
	}

	// Another sweep file is refused, unless forced.
	other := loadTestSweep(t, "testdata/mixture.yaml")
	if _, err := Prepare(dir, other, false); err == nil || !strings.Contains(err.Error(), "another sweep file") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("Prepare with another sweep: %v", err)
	}
	d2, err := Prepare(dir, other, true)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Manifest.Name != "mixture" || len(d2.Manifest.Cells) != len(other.Cells) {
		t.Errorf("forced manifest %+v", d2.Manifest)
	}
}

func TestPrepareRefusesOtherDirectory(t *testing.T) {
	s := loadTestSweep(t, "testdata/grid.yaml")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(dir, s, false); err == nil || !strings.Contains(err.Error(), "not a sweep directory") {
		t.Errorf("Prepare into a non-empty directory: %v", err)
	}
	if _, err := Prepare(dir, s, true); err != nil {
		t.Errorf("forced: %v", err)
	}
}

func TestOpenDirErrors(t *testing.T) {
	for _, tc := range []struct {
		name, manifest, want string
	}{
		{"empty directory", "", "not a sweep directory"},
		{"garbage", "not json", "sweep.json: invalid character"},
		{"empty file", " ", "sweep.json: EOF"},
		{"other version", `{"version": 2}`, "version 2, want 1"},
		{"unknown field", `{"version": 1, "cellz": []}`, `unknown field "cellz"`},
		{"path in an id", `{"version": 1, "cells": [{"id": "../../etc", "dir": "cells/../../etc"}]}`, "want 12 hex digits"},
		{"id twice", `{"version": 1, "cells": [{"id": "0123456789ab", "dir": "cells/0123456789ab"}, {"id": "0123456789ab", "dir": "cells/0123456789ab"}]}`, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.manifest != "" {
				if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(tc.manifest), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := OpenDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenDir: %v, want an error containing %q", err, tc.want)
			}
			if tc.manifest == "" && !errors.Is(err, ErrNotSweepDir) {
				t.Errorf("%v is not ErrNotSweepDir", err)
			}
		})
	}
}

func TestCellState(t *testing.T) {
	s := loadTestSweep(t, "testdata/grid.yaml")
	d, err := Prepare(t.TempDir(), s, false)
	if err != nil {
		t.Fatal(err)
	}
	id := s.Cells[0].ID
	host, _ := os.Hostname()
	// A process that has exited: its pid is free (until reused).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	state := func() CellState {
		t.Helper()
		st, err := d.CellState(id)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	steps := []struct {
		name string
		do   func() error
		want State
	}{
		{"fresh", func() error { return nil }, Pending},
		{"running here", func() error { return d.MarkRunning(id, RunningInfo{PID: os.Getpid(), Host: host, Executor: "local"}) }, Running},
		{"dead process", func() error {
			return d.MarkRunning(id, RunningInfo{PID: dead.Process.Pid, Host: host, Executor: "local"})
		}, Pending},
		{"failed", func() error { return d.MarkFailed(id, FailedInfo{Reason: "exit status 1", ExitCode: 1, Attempts: 1}) }, Failed},
		{"retry running", func() error { return d.MarkRunning(id, RunningInfo{PID: os.Getpid(), Host: host}) }, Running},
		{"slurm task", func() error { return d.MarkRunning(id, RunningInfo{PID: 1 << 30, Host: "node7", SlurmJob: "12_0"}) }, Running},
		{"cleared", func() error {
			if err := d.ClearRunning(id); err != nil {
				return err
			}
			return d.ClearRunning(id) // absent is fine
		}, Failed},
		{"done", func() error {
			if err := os.MkdirAll(d.RunDir(id), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(d.RunDir(id), experiments.DoneFile), nil, 0o644)
		}, Done},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := state(); got.State != st.want {
			t.Errorf("%s: state %s, want %s", st.name, got.State, st.want)
		}
	}
	if err := d.ClearFailed(id); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CellState("../x"); err == nil {
		t.Error("CellState accepted a path as an id")
	}
	if err := os.WriteFile(filepath.Join(d.CellDir(s.Cells[1].ID), FailedFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CellState(s.Cells[1].ID); err == nil || !strings.Contains(err.Error(), FailedFile) {
		t.Errorf("damaged FAILED: %v", err)
	}
}
