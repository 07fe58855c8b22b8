package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func prunedConfig(mode string, active float64) Config {
	c := tinyMultimodal(ConnAvgPool, 4, false)
	c.Decoder.FFNPruning, c.Decoder.FFNActive = mode, active
	c.Decoder.FFNPredictorWidth, c.Decoder.FFNPredictorHidden = 8, 12
	c.Decoder.FFNInstructionTokens = 3
	return c
}

// markInstruction flags the first few text tokens of each document as its
// instruction (document 1 of row 0 gets none, so it takes the fallback).
func markInstruction(b *Batch) {
	b.Instruction = make([]bool, len(b.Tokens))
	for i := range b.Tokens {
		if b.Pos[i] >= 5 && b.Pos[i] < 8 && !(i < b.T && b.DocIDs[i] == 1) {
			b.Instruction[i] = true
		}
	}
}

// TestPruneFullWidthEqualsDense: ffn_active = the full width gives the
// dense decoder exactly — the same loss, the same gradient for every
// dense tensor, and after an AdamW step the same next loss — with the
// predictor's gradients zero.
func TestPruneFullWidthEqualsDense(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		active float64
	}{{PruneInstruction, 1}, {PruneStatic, 48}, {PruneNone, 1}} {
		t.Run(tc.mode, func(t *testing.T) {
			dense := newTiny(t, tinyMultimodal(ConnAvgPool, 4, false), 2, 24, 3)
			pruned := newTiny(t, prunedConfig(tc.mode, tc.active), 2, 24, 3)
			b := parityBatch(rand.New(rand.NewPCG(1, 2)), dense.Config, 2, 24, 2)
			markInstruction(b)
			for step := range 2 {
				l1, err1 := dense.Forward(b)
				l2, err2 := pruned.Forward(b)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if l1 != l2 {
					t.Fatalf("step %d: loss %v (dense) vs %v (pruned, full width)", step, l1, l2)
				}
				dense.Backward(b)
				pruned.Backward(b)
				for _, p := range pruned.Params.All() {
					q, ok := dense.Params.Lookup(p.Name)
					if !ok {
						if !strings.HasPrefix(p.Name, "ifprune.") {
							t.Fatalf("pruned model has an unexpected tensor %s", p.Name)
						}
						if slices.ContainsFunc(p.Grad(), func(v float32) bool { return v != 0 }) {
							t.Errorf("step %d: predictor tensor %s has a gradient at full width", step, p.Name)
						}
						continue
					}
					if !slices.Equal(p.Data(), q.Data()) || !slices.Equal(p.Grad(), q.Grad()) {
						t.Fatalf("step %d: %s differs from the dense model's (weights or gradient)", step, p.Name)
					}
				}
				if _, err := dense.Step(b, 1e-2); err != nil {
					t.Fatal(err)
				}
				if _, err := pruned.Step(b, 1e-2); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestPruneTrains: with a quarter of the channels active, a pruned model
// still memorises a batch, and its predictor gets gradient.
func TestPruneTrains(t *testing.T) {
	for _, tc := range []struct{ mode, estimator string }{
		{PruneStatic, EstimatorStraightThrough}, {PruneInstruction, EstimatorStraightThrough}, {PruneInstruction, EstimatorSoft},
	} {
		t.Run(tc.mode+"/"+tc.estimator, func(t *testing.T) {
			cfg := prunedConfig(tc.mode, 0.25)
			cfg.Decoder.FFNMaskEstimator = tc.estimator
			m := newTiny(t, cfg, 2, 24, 1)
			b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
			markInstruction(b)
			var first, last float64
			for step := range 60 {
				st, err := m.Step(b, 1e-2)
				if err != nil {
					t.Fatal(err)
				}
				if step == 0 {
					first = st.Loss
					var norm float64
					for _, p := range m.Params.All() {
						if strings.HasPrefix(p.Name, "ifprune.") {
							for _, g := range p.Grad() {
								norm += float64(g) * float64(g)
							}
						}
					}
					if !(norm > 0) {
						t.Fatalf("predictor gradient norm %v after the first step", norm)
					}
				}
				last = st.Loss
			}
			t.Logf("loss %.3f → %.4f in 60 steps", first, last)
			if last > 0.2 {
				t.Errorf("loss %.4f after 60 steps, want < 0.2", last)
			}
		})
	}
}

// TestPruneGroupsGetOwnMasks: two documents with different instructions
// get different soft masks; each sums to k per layer.
func TestPruneGroupsGetOwnMasks(t *testing.T) {
	cfg := prunedConfig(PruneInstruction, 0.25)
	m := newTiny(t, cfg, 2, 24, 1)
	rng := rand.New(rand.NewPCG(5, 5))
	for _, p := range m.Params.All() {
		if strings.HasPrefix(p.Name, "ifprune.") {
			p.Normal(rng, 0.5)
		}
	}
	b := parityBatch(rand.New(rand.NewPCG(1, 2)), cfg, 2, 24, 2)
	markInstruction(b)
	if _, err := m.Forward(b); err != nil {
		t.Fatal(err)
	}
	p := m.dec.prune
	if p.groups != 3 { // row 0: two documents; row 1: one
		t.Fatalf("%d groups, want 3", p.groups)
	}
	F, k := cfg.Decoder.FFNHidden, cfg.Decoder.ActiveFFN()
	for l := range p.L {
		for g := range p.groups {
			var s float64
			for _, v := range p.masks[l][g*F : (g+1)*F] {
				s += float64(v)
			}
			if math.Abs(s-float64(k)) > 1e-3 {
				t.Errorf("layer %d group %d: mask sums to %.4f, want %d", l, g, s, k)
			}
		}
		if slices.Equal(p.masks[l][:F], p.masks[l][F:2*F]) {
			t.Errorf("layer %d: documents with different instructions got the same mask", l)
		}
	}
}

// TestPruneGatheredEqualsMasked: the generator's gathered pruned FFNs give
// the logits of the training path with hard masks, at the prompt and at
// every generated token, for static and instruction pruning; with an
// explicit instruction and with the first-K-tokens fallback.
func TestPruneGatheredEqualsMasked(t *testing.T) {
	for _, tc := range []struct {
		name, mode  string
		instruction bool
	}{{"instruction", PruneInstruction, true}, {"instruction-fallback", PruneInstruction, false}, {"static", PruneStatic, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := prunedConfig(tc.mode, 0.25)
			cfg.Decoder.MaxSeq = 64
			m := newGenModel(t, cfg, Options{Seed: 2})
			rng := rand.New(rand.NewPCG(3, 3))
			p := genPrompt(rng, cfg, 2, 5, 3)
			if tc.instruction {
				p.Instruction = slices.Clone(p.Tokens[len(p.Tokens)-3:]) // the tail text
			}
			g := newGen(t, m, 2, 40)
			other := genPrompt(rng, cfg, 1, 4, 2) // a second row with its own mask
			other.Instruction = []int32{1, 2}
			tr := runTraced(t, g, []Prompt{p, other}, 6, nil)[0]

			m.SetHardMasks(true)
			defer m.SetHardMasks(false)
			seq := append(slices.Clone(p.Tokens), tr.out...)
			T := len(seq)
			full, err := New(cfg, 1, T, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer full.Close()
			if err := full.CopyWeights(m); err != nil {
				t.Fatal(err)
			}
			full.SetHardMasks(true)
			V := cfg.Decoder.Vocab
			b := &Batch{B: 1, T: T, Tokens: seq, Targets: make([]int32, T), LossMask: make([]float32, T),
				Pos: make([]int32, T), DocIDs: make([]int32, T), ImageTokenID: int32(V - 1), Images: p.Images,
				NumImages: len(p.Images) / (3 * 16 * 16)}
			for i := range b.Pos {
				b.Pos[i] = int32(i)
			}
			if tc.instruction { // the training path reads the same tokens as marked
				b.Instruction = make([]bool, T)
				for i := len(p.Tokens) - 3; i < len(p.Tokens); i++ {
					b.Instruction[i] = true
				}
			}
			if _, err := full.Forward(b); err != nil {
				t.Fatal(err)
			}
			logits := full.Logits()
			for j, l := range tr.logits {
				pos := len(p.Tokens) - 1 + j
				if d := maxAbsDiff(l, logits[pos*V:(pos+1)*V]); d > genLogitTol {
					t.Errorf("token %d: gathered vs masked logits differ by %g", j, d)
				}
			}
			pos := len(p.Tokens) - 1
			// The straight-through estimator (the default) trains with the
			// hard masks: its training forward is the gathered model too.
			full.SetHardMasks(false)
			if _, err := full.Forward(b); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(tr.logits[0], full.Logits()[pos*V:(pos+1)*V]); d > genLogitTol {
				t.Errorf("straight-through training forward vs gathered logits differ by %g", d)
			}
			// Control: the soft estimator's SoftTopK masks give other
			// logits, so the agreement above is the hard masks', not an
			// accident.
			softCfg := cfg
			softCfg.Decoder.FFNMaskEstimator = EstimatorSoft
			soft, err := New(softCfg, 1, T, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer soft.Close()
			if err := soft.CopyWeights(m); err != nil {
				t.Fatal(err)
			}
			if _, err := soft.Forward(b); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(tr.logits[0], soft.Logits()[pos*V:(pos+1)*V]); d < 1e-3 {
				t.Errorf("soft-mask logits within %g of the gathered ones: the test cannot tell masks apart", d)
			}
		})
	}
}

func TestPruneConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d *DecoderConfig)
		want string
	}{
		{"mode", func(d *DecoderConfig) { d.FFNPruning = "dynamic" }, "model.decoder.ffn_pruning: unknown mode"},
		{"negative", func(d *DecoderConfig) { d.FFNActive = -0.5 }, "model.decoder.ffn_active"},
		{"fractional count", func(d *DecoderConfig) { d.FFNActive = 2.5 }, "model.decoder.ffn_active: 2.5 is above 1"},
		{"too many", func(d *DecoderConfig) { d.FFNActive = 49 }, "more than decoder.ffn_hidden 48"},
		{"active without pruning", func(d *DecoderConfig) { d.FFNPruning, d.FFNActive = "", 0.5 }, "model.decoder.ffn_active: 0.5 keeps 24 of 48"},
		{"temperature", func(d *DecoderConfig) { d.FFNMaskTemperature = math.Inf(1) }, "model.decoder.ffn_mask_temperature"},
		{"width", func(d *DecoderConfig) { d.FFNPredictorWidth = -1 }, "model.decoder.ffn_predictor_width"},
		{"fallback", func(d *DecoderConfig) { d.FFNInstructionTokens = -2 }, "model.decoder.ffn_instruction_tokens"},
		{"estimator", func(d *DecoderConfig) { d.FFNMaskEstimator = "gumbel" }, "model.decoder.ffn_mask_estimator: unknown estimator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := prunedConfig(PruneInstruction, 0.5)
			tc.edit(&c.Decoder)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for _, a := range []float64{0, 0.25, 1, 12, 48} {
		c := prunedConfig(PruneStatic, a)
		if err := c.Validate(); err != nil {
			t.Errorf("ffn_active %v: %v", a, err)
		}
	}
	if k := prunedConfig(PruneStatic, 0.25).Decoder.ActiveFFN(); k != 12 {
		t.Errorf("ActiveFFN of 0.25 × 48 = %d, want 12", k)
	}
}

// TestPruneDenseConfigUnchanged: the pruning keys are omitted from a dense
// config's YAML, so its canonical form (sweep cell ids) is unchanged.
func TestPruneDenseConfigUnchanged(t *testing.T) {
	b, err := yaml.Marshal(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ffn_pruning", "ffn_active", "ffn_mask_temperature", "ffn_mask_estimator", "ffn_predictor", "ffn_instruction_tokens"} {
		if strings.Contains(string(b), key) {
			t.Errorf("dense config YAML mentions %s:\n%s", key, b)
		}
	}
}
