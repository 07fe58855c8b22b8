package plot

import (
	"math"
	"math/rand/v2"
)

// hostile is every kind of string that could break out of XML text or an
// attribute, as config keys and dataset names might contain.
const hostile = `<script>alert("x")</script> & 'quotes' "double" ]]> <!-- --> <![CDATA[` + " \x00\x1b\xff end"

// goldenCases are the figures whose SVG is kept under testdata/.
func goldenCases() map[string]Chart {
	return map[string]Chart{
		"bars_resolution": GroupedBars{
			Title:  "Image resolution ablation (average over captioning and VQA)",
			X:      Axis{Label: "Resolution", Unit: "px"},
			Y:      Axis{Label: "Average score", Unit: "%"},
			Groups: []string{"res=64", "res=96", "res=128"},
			Series: []BarSeries{
				{Name: "0-shot", Values: []Value{MeanStd(21.3, 0.8), MeanStd(25.0, 1.1), MeanStd(27.4, 0.6)}},
				{Name: "4-shot", Values: []Value{MeanStd(30.2, 1.5), NA(), MeanStd(36.0, 1.0)}},
				{Name: "8-shot", Values: []Value{Interval(31.9, 30.1, 33.0), V(math.NaN()), V(38.5)}},
			},
		},
		"bars_negative": GroupedBars{
			Title:  "Change from the base configuration",
			X:      Axis{Label: "Connector"},
			Y:      Axis{Label: "Δ score", Unit: "points"},
			Groups: []string{"avgpool", "attnpool", "cabstractor", "mlp"},
			Series: []BarSeries{
				{Name: "0-shot", Values: []Value{V(-2.5), V(1.2), V(0), MeanStd(-0.7, 0.4)}},
				{Name: "8-shot", Values: []Value{V(-4.1), V(2.2), V(0.9), NA()}},
			},
		},
		"bars_all_negative": GroupedBars{
			Title:  "Loss change",
			Y:      Axis{Label: "Δ loss"},
			Groups: []string{"a", "b"},
			Series: []BarSeries{{Name: "Δ", Values: []Value{V(-0.3), NA()}}},
		},
		"bars_many_series": manySeriesBars(),
		"lines_numeric": Lines{
			Title:  "Interleaved share of the pre-training mixture",
			X:      Axis{Label: "Interleaved data", Unit: "%"},
			Y:      Axis{Label: "Average score", Unit: "%"},
			Errors: ErrorBands,
			Series: []LineSeries{
				{Name: "0-shot", X: []float64{0, 25, 50, 75, 100}, Y: []Value{MeanStd(39.3, 1), MeanStd(36.1, 1.2), MeanStd(33.0, 0.9), MeanStd(30.2, 1.1), MeanStd(25.8, 1.4)}},
				{Name: "4-shot", X: []float64{100, 75, 50, 25, 0}, Y: []Value{MeanStd(52.0, 1), MeanStd(51.3, 0.8), MeanStd(50.1, 1.2), NA(), MeanStd(34.9, 2)}},
				{Name: "8-shot", X: []float64{0, 25, 50, 75, 100}, Y: []Value{V(33.5), V(45.0), V(math.Inf(1)), V(53.1), V(54.0)}},
			},
		},
		"lines_categorical": Lines{
			Title:      "Caption : interleaved : text ratio",
			X:          Axis{Label: "Mixture"},
			Y:          Axis{Label: "8-shot average", Unit: "%"},
			Categories: []string{"1:0:0", "5:5:1", "1:1:0", "0:1:0"},
			Series: []LineSeries{
				{Name: "captioning", Y: []Value{MeanStd(40, 2), MeanStd(55, 1.5), MeanStd(52, 1.8), MeanStd(47, 2.5)}},
				{Name: "VQA", Y: []Value{V(30), NA(), V(41), V(39)}},
			},
		},
		"curves_log": trainingCurves(),
		"escaping": GroupedBars{
			Title:  hostile,
			X:      Axis{Label: hostile, Unit: "&amp;"},
			Y:      Axis{Label: "]]>", Unit: `"%"`},
			Groups: []string{hostile, "<b>"},
			Series: []BarSeries{{Name: hostile, Values: []Value{V(1), V(math.NaN())}}},
		},
		"empty_bars":   GroupedBars{Title: "Nothing ran yet", Y: Axis{Label: "Score"}},
		"empty_lines":  Lines{Title: "All NaN", Series: []LineSeries{{Name: "s", X: []float64{1, 2}, Y: []Value{V(math.NaN()), V(math.NaN())}}}},
		"empty_curves": Curves{Title: "No steps logged", Series: []Curve{{Name: "cell-0"}}},
	}
}

func manySeriesBars() GroupedBars {
	c := GroupedBars{
		Title:  "Ten series, long labels",
		Y:      Axis{Label: "Score"},
		Groups: []string{"a very long dataset name that will not fit", "COCO Captions (Karpathy test)", "TextCaps (val)", "VizWiz", "OK-VQA", "GQA testdev"},
	}
	for s := range 10 {
		var vals []Value
		for g := range c.Groups {
			vals = append(vals, V(float64(10+s*3+g*2)))
		}
		if s == 4 {
			vals[2] = NA()
		}
		c.Series = append(c.Series, BarSeries{Name: "cell-" + string(rune('A'+s)), Values: vals})
	}
	return c
}

// trainingCurves is twelve loss-like series of 5000 steps with seeded noise
// and one NaN, drawn on a log axis.
func trainingCurves() Curves {
	r := rand.New(rand.NewPCG(1, 2))
	c := Curves{
		Title:     "Validation perplexity per cell",
		X:         Axis{Label: "Step"},
		Y:         Axis{Label: "Perplexity"},
		LogY:      true,
		MaxPoints: 200,
	}
	for s := range 12 {
		cur := Curve{Name: "res=" + []string{"64", "96", "128"}[s%3] + " tokens=" + []string{"16", "64", "144", "256"}[s/3]}
		for i := range 5000 {
			step := float64(i * 10)
			cur.X = append(cur.X, step)
			cur.Y = append(cur.Y, 8+900*math.Exp(-step/(3000+float64(s)*900))+r.Float64()*2)
		}
		if s == 2 {
			cur.Y[1234] = math.NaN()
		}
		c.Series = append(c.Series, cur)
	}
	return c
}
