package images

import (
	"bytes"
	"context"
	"image"
	"testing"
	"time"

	"github.com/disintegration/imaging"

	"github.com/mmablate/mmablate/internal/cputime"
)

// benchDecode measures decode + resize + crop + normalise of a 640×480
// quality-90 JPEG to 224×224. images/s is per wall-clock second (per core
// under GOMAXPROCS=1); images/cpu-s divides by the process's CPU time
// instead, which holds up better on a machine shared with other work.
func benchDecode(b *testing.B, fast bool) {
	if fast && !FastPathAvailable() {
		b.Skip("libjpeg-turbo not compiled in")
	}
	jpg := SyntheticJPEG(640, 480, 1, 90)
	opt := DefaultOptions(224)
	dst := make([]float32, 3*224*224)
	b.SetBytes(int64(len(jpg)))
	cpu0 := cputime.Process()
	for b.Loop() { // b.Loop resets the timer itself
		if err := decodeInto(dst, jpg, opt, fast); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "images/cpu-s")
	}
}

func BenchmarkDecodeJPEG640x480Std(b *testing.B)   { benchDecode(b, false) }
func BenchmarkDecodeJPEG640x480Turbo(b *testing.B) { benchDecode(b, true) }

func TestSyntheticJPEGDeterministic(t *testing.T) {
	a, b := SyntheticJPEG(97, 61, 7, 90), SyntheticJPEG(97, 61, 7, 90)
	if !bytes.Equal(a, b) {
		t.Fatal("same arguments gave different bytes")
	}
	if bytes.Equal(a, SyntheticJPEG(97, 61, 8, 90)) {
		t.Fatal("different seeds gave the same bytes")
	}
	img, err := Decode(a, DefaultOptions(16))
	if err != nil {
		t.Fatal(err)
	}
	if img.W != 16 {
		t.Fatalf("decoded width %d", img.W)
	}
}

func TestBenchDecode(t *testing.T) {
	jpg := SyntheticJPEG(64, 48, 1, 90)
	for _, fast := range []bool{false, true} {
		rate, err := BenchDecode(context.Background(), jpg, DefaultOptions(32), fast, 20*time.Millisecond)
		if fast && !FastPathAvailable() {
			if err == nil {
				t.Fatal("fast path requested without libjpeg-turbo: no error")
			}
			continue
		}
		// The CPU-time rate is there wherever the platform reports CPU time.
		if err != nil || rate.PerSecond <= 0 || (rate.PerCPUSecond > 0) != (cputime.Process() > 0) {
			t.Fatalf("fast=%v: rate %+v, err %v", fast, rate, err)
		}
	}
	if _, err := BenchDecode(context.Background(), []byte("nope"), DefaultOptions(32), false, time.Millisecond); err == nil {
		t.Fatal("BenchDecode of bad bytes: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := BenchDecode(ctx, jpg, DefaultOptions(32), false, time.Hour); err == nil {
		t.Fatal("BenchDecode ignored a cancelled context")
	}
}

// BenchmarkResample isolates the resample + normalise of the fast path's
// 640×480 case: a 320×240 RGB image (the DCT-halved decode) to 224×224.
func BenchmarkResample320x240(b *testing.B) {
	src := rgbImage{w: 320, h: 240, pix: make([]byte, 320*240*3)}
	for i := range src.pix {
		src.pix[i] = byte(i * 7)
	}
	opt := DefaultOptions(224)
	dst := make([]float32, 3*224*224)
	s := new(scratch)
	cpu0 := cputime.Process()
	for b.Loop() {
		resample(dst, src, 320, 240, opt, s)
	}
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// BenchmarkResampleImaging320x240 is BenchmarkResample320x240's baseline:
// the same 320×240 → 224×224 crop and normalisation through imaging.Resize
// (Linear, shorter side to 224) and imaging.CropCenter, which resample
// reproduces (TestStdMatchesImaging) at a fraction of the cost. Run both
// with GOMAXPROCS=1 for a per-core comparison (imaging uses every P).
func BenchmarkResampleImaging320x240(b *testing.B) {
	src := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for i := range src.Pix {
		src.Pix[i] = byte(i * 7)
		if i%4 == 3 {
			src.Pix[i] = 255
		}
	}
	opt := DefaultOptions(224)
	dst := make([]float32, 3*224*224)
	cpu0 := cputime.Process()
	for b.Loop() {
		crop := imaging.CropCenter(imaging.Resize(src, 0, 224, imaging.Linear), 224, 224)
		for y := range 224 {
			for x := range 224 {
				for c := range 3 {
					v := float32(crop.Pix[y*crop.Stride+4*x+c])
					dst[c*224*224+y*224+x] = (v/255 - opt.Mean[c]) / opt.Std[c]
				}
			}
		}
	}
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}
