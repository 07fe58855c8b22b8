package shapes

import (
	"image"
	"testing"
	"time"

	"github.com/mmablate/mmablate/internal/cputime"
)

// BenchmarkScene measures what one generated image costs at the default
// size: drawing a scene, rendering it and encoding it (PNG or JPEG in the
// default proportion). Run with GOMAXPROCS=1 for scenes/s per core.
func BenchmarkScene(b *testing.B) {
	cfg := DefaultConfig()
	m := &maker{cfg: cfg}
	w := m.newWorker()
	opts := cfg.sceneOptions()
	i := 0
	cpu0 := cputime.Process()
	for b.Loop() {
		rng := recordRNG(cfg.Seed, SplitCaptions, i, 0)
		s := NewScene(rng, opts)
		if _, err := m.image(w, rng, s, "bench"); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportRate(b, cpu0)
}

// reportRate reports scenes per wall-clock second and, where the process's
// CPU time is known, per CPU second: with GOMAXPROCS=1 on a loaded machine
// the second is the per-core figure.
func reportRate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scenes/s")
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "scenes/cpu-s")
	}
}

// BenchmarkRender is the rasteriser alone.
func BenchmarkRender(b *testing.B) {
	cfg := DefaultConfig()
	img := image.NewRGBA(image.Rect(0, 0, cfg.Size, cfg.Size))
	scenes := make([]*Scene, 64)
	for i := range scenes {
		scenes[i] = NewScene(recordRNG(cfg.Seed, SplitCaptions, i, 0), cfg.sceneOptions())
	}
	i := 0
	cpu0 := cputime.Process()
	for b.Loop() {
		Render(img, scenes[i%len(scenes)])
		i++
	}
	reportRate(b, cpu0)
}
