package models

import "testing"

// Training-step benchmarks on engine.md's reference model (B=8, T=128),
// reporting what `mmablate bench train` reports. Run with
//
//	go test -run '^$' -bench Step -benchtime 5x ./models/
func benchStep(b *testing.B, cfg Config) {
	m, err := New(cfg, 8, 128, Options{Seed: 1, Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	batch := SyntheticBatch(cfg, 8, 128, cfg.Vision != nil, 1)
	if _, err := m.Step(batch, 1e-3); err != nil { // first touch of every buffer
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Step(batch, 1e-3); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	fwd, bwd := m.FLOPs(batch.NumImages)
	b.ReportMetric(float64(b.N)/sec, "steps/s")
	b.ReportMetric(float64(b.N*8*128)/sec, "tokens/s")
	b.ReportMetric(float64(fwd+bwd)*float64(b.N)/sec/1e9, "GFLOP/s")
}

func BenchmarkStepText(b *testing.B) {
	benchStep(b, Config{Decoder: DefaultDecoderConfig()})
}

// BenchmarkStepImages has one image per sequence (8 images, 64 tokens each).
func BenchmarkStepImages(b *testing.B) {
	benchStep(b, DefaultConfig())
}
