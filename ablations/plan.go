package ablations

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mmablate/mmablate/experiments"
	"github.com/mmablate/mmablate/experiments/eval"
	"github.com/mmablate/mmablate/mixer"
	"github.com/mmablate/mmablate/models"
)

// PlanRow is one cell as `mmablate sweep plan` shows it.
type PlanRow struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Axes      map[string]any `json:"axes"`
	Seed      int            `json:"seed"`
	Baseline  bool           `json:"baseline"`
	Params    int            `json:"params"`
	Trainable int            `json:"trainable"`
	// FLOPsPerStep is a training step's forward + backward FLOPs with
	// every image slot of the batch filled (experiments.Cost).
	FLOPsPerStep int64 `json:"flops_per_step"`
	// ImageTokens is the LLM tokens each image becomes (0: text-only).
	ImageTokens   int `json:"image_tokens"`
	ImagesPerStep int `json:"images_per_step"`
	Steps         int `json:"steps"`
	// EstSeconds is the estimated wall time of training and evaluation,
	// StepSeconds and EvalSeconds its parts (experiments.Cost); all nil
	// when not calibrated.
	EstSeconds  *float64 `json:"est_seconds"`
	StepSeconds *float64 `json:"step_seconds"`
	EvalSeconds *float64 `json:"eval_seconds"`
	// CalibratedOn is what the timed steps trained on: "data" (the cell's
	// mixture, when its data and tokenizer exist) or "synthetic"; "" when
	// not calibrated.
	CalibratedOn string `json:"calibrated_on,omitempty"`
}

// PlanOptions are Plan's settings.
type PlanOptions struct {
	// CalibrateSteps is the number of timed training steps per distinct
	// model shape; 0 skips calibration (no time estimates).
	CalibrateSteps int
	// Log gets a line per calibration; nil means slog.Default().
	Log *slog.Logger
}

// DefaultCalibrateSteps is the fewest timed steps whose median ignores one
// stalled step, keeping plan to a second or two per shape.
const DefaultCalibrateSteps = 3

// Plan sizes every cell of s and, when opts.CalibrateSteps > 0, estimates
// its wall time by experiments.Calibrate, once per distinct shape (model,
// packing, threads, evaluation): seeds and data mixtures share it.
func Plan(ctx context.Context, s *Sweep, opts PlanOptions) ([]PlanRow, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	costs := map[string]experiments.Cost{}
	rows := make([]PlanRow, 0, len(s.Cells))
	for _, c := range s.Cells {
		key, err := shapeKey(c.Config)
		if err != nil {
			return nil, fmt.Errorf("cell %s: %w", c.Name, err)
		}
		cost, ok := costs[key]
		if !ok {
			if opts.CalibrateSteps > 0 {
				log.Info("calibrating", "cell", c.Name, "steps", opts.CalibrateSteps)
			}
			if cost, err = experiments.Calibrate(ctx, c.Config, opts.CalibrateSteps); err != nil {
				return nil, fmt.Errorf("cell %s: %w", c.Name, err)
			}
			costs[key] = cost
		}
		r := PlanRow{ID: c.ID, Name: c.Name, Axes: c.Axes, Seed: c.Seed, Baseline: c.Baseline,
			Params: cost.Params, Trainable: cost.Trainable, FLOPsPerStep: cost.FLOPsPerStep,
			ImageTokens: cost.ImageTokens, ImagesPerStep: cost.ImagesPerStep, Steps: c.Config.Train.Steps}
		if opts.CalibrateSteps > 0 {
			est, step, ev := cost.Seconds(c.Config.Train.Steps), cost.StepSeconds, cost.EvalSeconds
			r.EstSeconds, r.StepSeconds, r.EvalSeconds, r.CalibratedOn = &est, &step, &ev, cost.Batches
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// shapeKey identifies what a cell's cost depends on: the mixture too when
// calibration reads the data (a text-heavy mixture packs fewer images).
func shapeKey(c experiments.Config) (string, error) {
	key := struct {
		Model     models.Config
		Packing   mixer.Packing
		Threads   experiments.Threads
		Eval      eval.Config
		Tokenizer experiments.TokenizerConfig
		Shapes    [3]int
		Mixture   *mixer.Config `json:",omitempty"`
	}{c.Model, c.Data.Packing, c.Train.Threads, c.Eval, c.Tokenizer, [3]int{c.Shapes.EvalCaption, c.Shapes.EvalVQA, c.Shapes.Support}, nil}
	if experiments.DataReady(c) {
		d := c.Data
		d.Seed = 0 // seeds share a calibration
		key.Mixture = &d
	}
	b, err := json.Marshal(key)
	return string(b), err
}

// WritePlan writes rows as a table, the baseline cells marked with *, and
// a total.
func WritePlan(w io.Writer, rows []PlanRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCELL\tPARAMS\tFLOPS/STEP\tIMAGE TOKENS\tSTEPS\tEST TIME")
	var total float64
	timed, baseline := true, false
	var on []string // what the estimates were calibrated on
	for _, r := range rows {
		baseline = baseline || r.Baseline
		if r.CalibratedOn != "" && !slices.Contains(on, r.CalibratedOn) {
			on = append(on, r.CalibratedOn)
		}
		name := r.Name
		if r.Baseline {
			name += " *"
		}
		est := "-"
		if r.EstSeconds != nil {
			est = duration(*r.EstSeconds)
			total += *r.EstSeconds
		} else {
			timed = false
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, name, si(float64(r.Params)), si(float64(r.FLOPsPerStep)), r.ImageTokens, r.Steps, est)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sum := fmt.Sprintf("%d cells", len(rows))
	if timed && len(rows) > 0 {
		sum += ", " + duration(total) + " of training and evaluation one after another"
	}
	if len(on) > 0 {
		slices.Sort(on)
		sum += " (timed on " + strings.Join(on, " and ") + " batches)"
	}
	if baseline {
		sum += "; * baseline"
	}
	_, err := fmt.Fprintln(w, sum)
	return err
}

// si writes x with a k/M/G/T/P suffix and 3 significant digits.
func si(x float64) string {
	for _, u := range []struct {
		div  float64
		unit string
	}{{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(x) >= u.div {
			return fmt.Sprintf("%.3g%s", x/u.div, u.unit)
		}
	}
	return fmt.Sprintf("%.0f", x)
}

// duration writes seconds as 45s, 12m05s or 3h04m.
func duration(sec float64) string {
	s := int(math.Round(sec))
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
	}
}
