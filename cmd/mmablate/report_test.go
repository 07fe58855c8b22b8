package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runReport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"report"}, args...))
	err := root.Execute()
	return out.String(), err
}

// copyDir copies a fixture so the default --out lands in a temporary dir.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReportCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sweep")
	copyDir(t, "../../reports/testdata/sweeps/full", dir)
	out, err := runReport(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || lines[len(lines)-2] != "report: "+filepath.Join(dir, "report", "report.html") ||
		!strings.Contains(lines[len(lines)-1], "Axis res moved it most") {
		t.Errorf("last lines are not the report path and the summary:\n%s", out)
	}
	for _, f := range []string{"report.html", "report.md", "results.parquet"} {
		if _, err := os.Stat(filepath.Join(dir, "report", f)); err != nil {
			t.Error(err)
		}
	}
}

func TestReportCommandErrors(t *testing.T) {
	if _, err := runReport(t); !errors.As(err, new(*usageError)) {
		t.Errorf("no argument: %v, want a usage error", err)
	}
	empty := t.TempDir()
	_, err := runReport(t, empty, "--out", filepath.Join(t.TempDir(), "r"))
	if err == nil || errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "not a sweep directory") {
		t.Errorf("empty dir: %v, want a failure naming it not a sweep directory", err)
	}
}
