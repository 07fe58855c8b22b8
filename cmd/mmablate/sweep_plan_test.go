package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// runSweepPlan runs "mmablate sweep plan ARGS..." and returns standard output and the error.
func runSweepPlan(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"sweep", "plan"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestSweepPlanJSON(t *testing.T) {
	out, err := runSweepPlan(t, "../../ablations/testdata/grid.yaml", "--json", "--no-calibrate")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("output is not a JSON list: %v\n%s", err, out)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, k := range []string{"id", "name", "axes", "seed", "baseline", "params", "trainable", "flops_per_step", "image_tokens", "images_per_step", "steps", "est_seconds", "step_seconds", "eval_seconds"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("row has no %q: %v", k, rows[0])
		}
	}
	if rows[0]["name"] != "res=32,tokens=4,seed=0" || rows[0]["est_seconds"] != nil {
		t.Errorf("first row %v", rows[0])
	}
	axes, _ := rows[4]["axes"].(map[string]any)
	if axes["res"] != float64(64) || axes["tokens"] != float64(16) || rows[4]["baseline"] != true {
		t.Errorf("baseline row %v", rows[4])
	}
}

func TestSweepPlanTable(t *testing.T) {
	out, err := runSweepPlan(t, "../../ablations/testdata/grid.yaml", "--calibrate-steps", "1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[7], "6 cells, ") {
		t.Fatalf("table:\n%s", out)
	}
	if strings.Contains(out, " - ") {
		t.Errorf("a calibrated plan shows no time:\n%s", out)
	}
}

func TestSweepPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "takes 1 argument"},
		{[]string{"x.yaml", "--calibrate-steps", "0"}, true, "--calibrate-steps 0"},
		{[]string{"../../ablations/testdata/bad_base.yaml", "--no-calibrate"}, false, "bad_base_run.yaml:3: train.lr"},
		{[]string{"nowhere.yaml"}, false, "nowhere.yaml"},
	} {
		_, err := runSweepPlan(t, tc.args...)
		var ue *usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
			t.Errorf("sweep plan %q: %v (usage error %v), want %q (usage error %v)", tc.args, err, errors.As(err, &ue), tc.want, tc.usage)
		}
	}
}
