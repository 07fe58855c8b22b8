package ablations

import (
	"bytes"
	"context"
	"testing"
)

func TestPlanTable(t *testing.T) {
	s := loadTestSweep(t, "testdata/grid.yaml")
	rows, err := Plan(context.Background(), s, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WritePlan(&out, rows); err != nil {
		t.Fatal(err)
	}
	golden(t, "grid.plan.golden", out.String())
	for i, r := range rows {
		c := s.Cells[i]
		if r.ID != c.ID || r.Name != c.Name || r.Seed != c.Seed || r.Baseline != c.Baseline || r.EstSeconds != nil || r.Steps != 20 {
			t.Errorf("row %d: %+v for cell %s", i, r, c.Name)
		}
		if r.ImageTokens != c.Axes["tokens"] || r.Params <= 0 || r.Trainable != r.Params || r.FLOPsPerStep <= 0 {
			t.Errorf("row %s: image tokens %d, params %d/%d, flops %d", r.Name, r.ImageTokens, r.Params, r.Trainable, r.FLOPsPerStep)
		}
	}
	// Resolution changes the ViT's FLOPs, not the decoder's parameters much;
	// more image tokens per image mean fewer images in the same batch.
	if !(rows[2].FLOPsPerStep > rows[0].FLOPsPerStep) || rows[4].ImagesPerStep >= rows[2].ImagesPerStep {
		t.Errorf("flops %d vs %d, images per step %d vs %d", rows[2].FLOPsPerStep, rows[0].FLOPsPerStep, rows[4].ImagesPerStep, rows[2].ImagesPerStep)
	}
}

func TestPlanCalibrated(t *testing.T) {
	s := loadTestSweep(t, "testdata/grid.yaml")
	s.Cells = s.Cells[:2] // two seeds of one shape: calibrated once
	rows, err := Plan(context.Background(), s, PlanOptions{CalibrateSteps: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.EstSeconds == nil || r.StepSeconds == nil || r.EvalSeconds == nil || !(*r.StepSeconds > 0) || !(*r.EvalSeconds > 0) ||
			*r.EstSeconds != float64(r.Steps)**r.StepSeconds+*r.EvalSeconds || r.CalibratedOn != "synthetic" {
			t.Fatalf("row %s: estimate %v = %d × %v + %v", r.Name, r.EstSeconds, r.Steps, r.StepSeconds, r.EvalSeconds)
		}
	}
	if *rows[0].EstSeconds != *rows[1].EstSeconds {
		t.Errorf("seeds of one shape got estimates %v and %v", *rows[0].EstSeconds, *rows[1].EstSeconds)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Plan(ctx, s, PlanOptions{CalibrateSteps: 1}); err == nil {
		t.Error("Plan ignored a cancelled context")
	}
}

func TestWritePlanTimes(t *testing.T) {
	sec := func(x float64) *float64 { return &x }
	rows := []PlanRow{
		{ID: "aaaaaaaaaaaa", Name: "a=1,seed=0", Params: 1234, FLOPsPerStep: 5_600_000_000, ImageTokens: 4, Steps: 10, EstSeconds: sec(42.4), CalibratedOn: "synthetic"},
		{ID: "bbbbbbbbbbbb", Name: "a=2,seed=0", Baseline: true, Params: 12_345_678, FLOPsPerStep: 7e12, ImageTokens: 64, Steps: 10, EstSeconds: sec(3725)},
		{ID: "cccccccccccc", Name: "a=3,seed=0", Params: 999, FLOPsPerStep: 1e15, Steps: 1, EstSeconds: sec(61)},
	}
	var out bytes.Buffer
	if err := WritePlan(&out, rows); err != nil {
		t.Fatal(err)
	}
	want := `ID            CELL          PARAMS  FLOPS/STEP  IMAGE TOKENS  STEPS  EST TIME
aaaaaaaaaaaa  a=1,seed=0    1.23k   5.6G        4             10     42s
bbbbbbbbbbbb  a=2,seed=0 *  12.3M   7T          64            10     1h02m
cccccccccccc  a=3,seed=0    999     1P          0             1      1m01s
3 cells, 1h03m of training and evaluation one after another (timed on synthetic batches); * baseline
`
	rows[1].Baseline = false
	rows[2].EstSeconds = nil
	want2 := `ID            CELL        PARAMS  FLOPS/STEP  IMAGE TOKENS  STEPS  EST TIME
aaaaaaaaaaaa  a=1,seed=0  1.23k   5.6G        4             10     42s
bbbbbbbbbbbb  a=2,seed=0  12.3M   7T          64            10     1h02m
cccccccccccc  a=3,seed=0  999     1P          0             1      -
3 cells (timed on synthetic batches)
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := WritePlan(&out, rows); err != nil {
		t.Fatal(err)
	}
	if out.String() != want2 {
		t.Errorf("without baseline and a time: got\n%s\nwant\n%s", out.String(), want2)
	}
}
