package mixer

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mmablate/mmablate/data"
)

// shortTexts is n text samples of 1 to 6 tokens each, so a batch holds
// dozens of draws.
func shortTexts(name string, n int) []data.Sample {
	out := make([]data.Sample, n)
	for i := range out {
		id := fmt.Sprintf("%s-%03d", name, i)
		out[i] = data.Sample{ID: id, Kind: data.KindText, Segments: []data.Segment{textSeg(strings.Repeat("w", 1+i%6))}}
	}
	return out
}

// TestMixerRealisedCountsStayWithinTheBound runs the Mixer itself (random
// sampling, Stats' per-source sample counters) until at least 10 000
// samples are drawn, for several weight sets and schedules, and checks the
// package doc's bound −1 < target_i − count_i < k−1 after every batch,
// target_i being the sum of the normalised weight p_i over the draws (each
// batch draws at the weights of its step).
func TestMixerRealisedCountsStayWithinTheBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		weights  map[string]float64
		schedule []Phase
		interp   string
	}{
		{name: "45:45:10", weights: map[string]float64{"caption": 45, "interleaved": 45, "text": 10}},
		{name: "1:99", weights: map[string]float64{"a": 1, "b": 99}},
		{name: "0.2:0.3:0.5", weights: map[string]float64{"a": 0.2, "b": 0.3, "c": 0.5}},
		{name: "5 sources 5:1:20:3:7", weights: map[string]float64{"a": 5, "b": 1, "c": 20, "d": 3, "e": 7}},
		{name: "constant 45:45:10 then 50:10:40", weights: map[string]float64{"caption": 45, "interleaved": 45, "text": 10},
			schedule: []Phase{{Step: 150, Weights: map[string]float64{"caption": 50, "interleaved": 10, "text": 40}}}},
		{name: "linear 45:45:10 to 50:10:40", weights: map[string]float64{"caption": 45, "interleaved": 45, "text": 10},
			schedule: []Phase{{Step: 200, Weights: map[string]float64{"caption": 50, "interleaved": 10, "text": 40}}}, interp: InterpLinear},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Sources: map[string]Source{}, Seed: 11, Schedule: tc.schedule, Interpolation: tc.interp,
				Packing: Packing{BatchSize: 4, SeqLen: 64}}
			streams := map[string]data.Stream{}
			for i, name := range slices.Sorted(maps.Keys(tc.weights)) {
				cfg.Sources[name] = Source{Paths: []string{"fake"}, Weight: tc.weights[name]}
				streams[name] = newFake(shortTexts(name, 37+i), int64(i+1)) // epochs end at different draws
			}
			m, err := New(cfg, streams, testSpecials)
			if err != nil {
				t.Fatal(err)
			}
			names := cfg.names()
			k := len(names)
			sched := newSchedule(cfg.withDefaults(), names)
			w, p, active := make([]float64, k), make([]float64, k), make([]bool, k)
			for i := range active {
				active[i] = true
			}
			target := make([]float64, k)
			prev := m.Stats()
			worst, changed := 0.0, false
			var p0 []float64
			for drawn := int64(0); drawn < 10_000; {
				sched.at(prev.Step, w)
				normalise(w, active, p)
				if p0 == nil {
					p0 = slices.Clone(p)
				}
				changed = changed || !slices.Equal(p, p0)
				if _, err := m.Next(context.Background()); err != nil {
					t.Fatal(err)
				}
				st := m.Stats()
				n := int64(0)
				for _, name := range names {
					n += st.Sources[name].Samples - prev.Sources[name].Samples
				}
				drawn += n
				for i, name := range names {
					target[i] += float64(n) * p[i]
					d := target[i] - float64(st.Sources[name].Samples)
					if d <= -1 || d >= float64(k-1) {
						t.Fatalf("after step %d (%d draws), source %s: target %.3f, count %d: target − count outside (−1, %d)",
							st.Step, drawn, name, target[i], st.Sources[name].Samples, k-1)
					}
					worst = max(worst, math.Abs(d))
				}
				prev = st
			}
			for _, name := range names {
				if prev.Sources[name].Epochs == 0 {
					t.Fatalf("source %s never finished an epoch: the test misses epoch ends", name)
				}
			}
			if tc.schedule != nil && !changed {
				t.Fatal("the weights never changed: the test misses the schedule")
			}
			t.Logf("%d steps: largest |target − count| %.3f (bound: −1 < target − count < %d)", prev.Step, worst, k-1)
		})
	}
}
