package mixer

import (
	"context"
	"testing"

	"github.com/mmablate/mmablate/data"
	"github.com/mmablate/mmablate/internal/cputime"
)

// referenceConfig is the reference engine's shapes (batch 8, seq 128,
// 128 px images, 64 image tokens) with MM1's default mixture.
func referenceConfig() Config {
	return Config{
		Sources: map[string]Source{
			"caption":     {Paths: []string{"bench"}, Weight: 45},
			"interleaved": {Paths: []string{"bench"}, Weight: 45},
			"text":        {Paths: []string{"bench"}, Weight: 10},
		},
		Seed:    1,
		Packing: Packing{BatchSize: 8, SeqLen: 128, ImageTokens: 64, Resolution: 128},
	}
}

func benchBatches(b *testing.B, m *Mixer) {
	ctx := context.Background()
	if _, err := m.Next(ctx); err != nil { // start the streams' workers
		b.Fatal(err)
	}
	images := 0
	cpu0 := cputime.Process()
	b.ResetTimer()
	for range b.N {
		batch, err := m.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		images += batch.NumImages
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		// Batches per second of one core's CPU time: what the mixer and its
		// decode workers cost, apart from other load on a shared machine.
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "batches/cpu-s")
	}
	b.ReportMetric(float64(images)/float64(b.N), "images/batch")
	b.ReportMetric(m.Stats().PaddingFraction(), "padding")
}

// BenchmarkMixerStreams is the end-to-end figure: images decoded, resized
// to 128 px and tokenized by data/stream Readers (2 decode workers), then
// mixed and packed. The images are 160 px PNG (the shapes world's kind) or
// JPEG, and 640×480 JPEG photos as imported datasets hold (bench data's
// test photos).
func BenchmarkMixerStreams(b *testing.B) {
	for _, f := range []struct {
		name string
		enc  encodeFunc
	}{{"png160", encodePNG}, {"jpeg160", encodeJPEG}, {"jpeg640x480", encodeJPEG640x480}} {
		b.Run(f.name, func(b *testing.B) {
			cfg, open := realSources(b, referenceConfig(), map[string]int{"caption": 48, "interleaved": 24, "text": 48}, 160, f.enc)
			m, err := New(cfg, open(), testSpecials)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			benchBatches(b, m)
		})
	}
}

// BenchmarkMixerOnly is the mixer's own cost: sampling, layout, packing
// and the image copy, over in-memory samples.
func BenchmarkMixerOnly(b *testing.B) {
	streams := map[string]data.Stream{
		"caption":     newFake(fakeSamples("c", data.KindCaption, 64, 128, 1), 1),
		"interleaved": newFake(fakeSamples("i", data.KindInterleaved, 64, 128, 2), 2),
		"text":        newFake(fakeSamples("t", data.KindText, 64, 128, 3), 3),
	}
	m, err := New(referenceConfig(), streams, testSpecials)
	if err != nil {
		b.Fatal(err)
	}
	benchBatches(b, m)
}
