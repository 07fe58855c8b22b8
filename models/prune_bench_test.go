package models

import (
	"fmt"
	"testing"

	"github.com/mmablate/mmablate/models/ifprune"
)

// prunedBenchGenerator is benchGenerator's setting (engine.md's reference
// text decoder, prompts of 64 tokens, 64 new tokens, 2 workers) for batch
// prompts, with the FFN pruned to `active` of its 704 channels (0: dense).
func prunedBenchGenerator(b *testing.B, mode string, active float64, batch int) (*Generator, []Prompt) {
	cfg := Config{Decoder: DefaultDecoderConfig()}
	cfg.Decoder.FFNPruning, cfg.Decoder.FFNActive = mode, active
	g, prompts := newBenchGenerator(b, cfg, batch)
	for i := range prompts {
		prompts[i].Instruction = prompts[i].Tokens[:16]
	}
	return g, prompts
}

var pruneBenchCases = []struct {
	mode   string
	active float64
}{{PruneNone, 0}, {PruneInstruction, 0.5}, {PruneInstruction, 0.25}, {PruneStatic, 0.25}}

// BenchmarkPrunedDecode compares greedy decoding of the dense reference
// decoder with instruction/static pruning to half and a quarter of the FFN
// channels, through the gathered per-prompt FFNs: decode tokens/s (Steps
// only, as BenchmarkDecode) and the FFN's matrix-product FLOPs per token
// over all layers, for one prompt at a time (the on-device case the
// method targets: each step reads only the gathered weights) and for 8
// (each row reads its own gathered weights, where the dense FFN reads its
// weights once for all 8 rows). Run with
//
//	go test -run '^$' -bench 'Pruned|MaskPredict' -benchtime 5x ./models/
func BenchmarkPrunedDecode(b *testing.B) {
	for _, batch := range []int{1, 8} {
		for _, tc := range pruneBenchCases {
			b.Run(fmt.Sprintf("batch%d/%s-%g", batch, tc.mode, tc.active), func(b *testing.B) {
				benchPrunedDecode(b, tc.mode, tc.active, batch)
			})
		}
	}
}

func benchPrunedDecode(b *testing.B, mode string, active float64, batch int) {
	g, prompts := prunedBenchGenerator(b, mode, active, batch)
	benchDecode(b, g, prompts)
	d := g.m.Config.Decoder
	b.ReportMetric(float64(int64(d.Layers)*ifprune.FLOPs(d.Width, d.ActiveFFN())), "ffn-flop/tok")
}

// BenchmarkMaskPredictGather is the one-time cost per input of a pruned
// model: predicting the scores from a 16-token instruction, the top-k per
// layer and gathering W1, W3, W2 of every layer (reference decoder,
// a quarter of the channels).
func BenchmarkMaskPredictGather(b *testing.B) {
	for _, mode := range []string{PruneInstruction, PruneStatic} {
		b.Run(mode, func(b *testing.B) {
			g, prompts := prunedBenchGenerator(b, mode, 0.25, 1)
			for b.Loop() {
				g.gather(0, prompts[0])
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/prompt")
		})
	}
}
