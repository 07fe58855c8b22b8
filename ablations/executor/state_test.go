package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmablate/mmablate/ablations"
	"github.com/mmablate/mmablate/experiments"
)

func TestLastProgress(t *testing.T) {
	line := func(step int, loss string) string {
		return fmt.Sprintf(`{"step":%d,"loss":%s,"lr":0.001,"time":"2026-12-01T10:00:%02dZ"}`, step, loss, step)
	}
	tests := []struct {
		name string
		in   string
		step int
		loss float64
	}{
		{"empty", "", 0, 0},
		{"one line", line(2, "3.5") + "\n", 2, 3.5},
		{"last of two", line(2, "3.5") + "\n" + line(4, "2.25") + "\n", 4, 2.25},
		// A line being written has no newline yet: the one before counts.
		{"partial last line", line(2, "3.5") + "\n" + `{"step":4,"lo`, 2, 3.5},
		{"no newline at all", line(2, "3.5"), 0, 0},
		// A tail read can start inside a line.
		{"cut first line", `ss":9}` + "\n" + line(6, "1.5") + "\n", 6, 1.5},
		{"garbage last line", line(2, "3.5") + "\n" + "not json\n", 2, 3.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := lastProgress([]byte(tt.in))
			if p.Step != tt.step || p.Loss != tt.loss {
				t.Errorf("got step %d loss %v, want %d %v", p.Step, p.Loss, tt.step, tt.loss)
			}
		})
	}
}

func FuzzLastProgress(f *testing.F) {
	f.Add([]byte(`{"step":2,"loss":3.5,"time":"2026-12-01T10:00:00Z"}` + "\n" + `{"step":4`))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := lastProgress(b)
		if p.Step < 0 {
			t.Fatalf("negative step %d", p.Step)
		}
	})
}

func TestReadProgressLongFile(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for step := 1; step <= 2000; step++ {
		fmt.Fprintf(&b, `{"step":%d,"loss":1.25,"time":"2026-12-01T10:00:00Z","samples":{"caption":12345}}`+"\n", step)
	}
	b.WriteString(`{"step":2001,"lo`) // being written
	if err := os.WriteFile(filepath.Join(dir, experiments.MetricsFile), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ReadProgress(dir)
	if err != nil || p.Step != 2000 || p.Loss != 1.25 || !p.Time.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("got %+v, %v; want step 2000", p, err)
	}
	if p, err := ReadProgress(t.TempDir()); err != nil || p.Step != 0 {
		t.Errorf("no metrics yet: %+v, %v", p, err)
	}
}

func TestRecord(t *testing.T) {
	d := &ablations.Dir{Path: t.TempDir()}
	if r, err := ReadRecord(d); r != nil || err != nil {
		t.Fatalf("no executor.json: %+v, %v", r, err)
	}
	want := Record{Executor: "slurm", Started: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Slurm: &SlurmRecord{JobID: "12", Script: "/s/cells-1.sbatch"}}
	if err := WriteRecord(d, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecord(d)
	if err != nil || got.Executor != "slurm" || *got.Slurm != *want.Slurm || !got.Started.Equal(want.Started) {
		t.Errorf("got %+v, %v", got, err)
	}
	path := filepath.Join(d.Path, ablations.ExecutorFile)
	for _, bad := range []string{`{"executor":"k8s"}`, `{`} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadRecord(d); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want one naming %s", bad, err, path)
		}
	}
}

func TestSweepError(t *testing.T) {
	err := &SweepError{Failed: []FailedCell{{Name: "res=32,seed=0", Reason: "killed by signal 9 (killed)", Log: "/r/cells/ab/cell.log"}}}
	want := "1 cell(s) failed:\n  res=32,seed=0: killed by signal 9 (killed) (log: /r/cells/ab/cell.log)\nrun the same command again to retry them"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}
