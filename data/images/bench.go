package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"time"

	"github.com/mmablate/mmablate/internal/cputime"
)

// DecodeRate is what BenchDecode measured: images per wall-clock second, and
// per second of this process's CPU time (user + system; 0 where the platform
// does not report it). On a machine shared with other work the wall-clock
// rate drops with the load while the CPU-time rate mostly does not.
type DecodeRate struct {
	PerSecond    float64
	PerCPUSecond float64
}

// BenchDecode decodes jpg into one reused buffer, on the calling goroutine,
// for about d (at least once), and returns the rate. fast selects
// libjpeg-turbo (an error if it is not compiled in) or the pure-Go path.
// `mmablate bench data` calls it; pin GOMAXPROCS for a per-core figure.
func BenchDecode(ctx context.Context, jpg []byte, opt Options, fast bool, d time.Duration) (DecodeRate, error) {
	if fast && !FastPathAvailable() {
		return DecodeRate{}, errors.New("images: libjpeg-turbo fast path not compiled in (built with noturbojpeg or without cgo)")
	}
	if err := opt.Validate(); err != nil {
		return DecodeRate{}, err
	}
	dst := make([]float32, 3*opt.Resolution*opt.Resolution)
	start, cpu0 := time.Now(), cputime.Process()
	n := 0
	for {
		if err := decodeInto(dst, jpg, opt, fast); err != nil {
			return DecodeRate{}, fmt.Errorf("images: bench decode: %w", err)
		}
		n++
		elapsed := time.Since(start)
		if elapsed >= d {
			rate := DecodeRate{PerSecond: float64(n) / elapsed.Seconds()}
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				rate.PerCPUSecond = float64(n) / cpu.Seconds()
			}
			return rate, nil
		}
		if err := ctx.Err(); err != nil {
			return DecodeRate{}, err
		}
	}
}

// SyntheticJPEG encodes a deterministic w×h test photo at the given quality:
// smooth colour gradients, a few soft-edged blobs and pixel noise, so the
// DCT has both low- and high-frequency work, like a natural image. The same
// arguments give the same bytes (for one Go version's encoder).
func SyntheticJPEG(w, h int, seed uint64, quality int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6d6d61626c617465))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type blob struct {
		cx, cy, r float64
		c         [3]float64
	}
	blobs := make([]blob, 6)
	for i := range blobs {
		blobs[i] = blob{
			cx: rng.Float64() * float64(w), cy: rng.Float64() * float64(h),
			r: (0.05 + 0.2*rng.Float64()) * float64(min(w, h)),
			c: [3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255},
		}
	}
	fx, fy := 2+4*rng.Float64(), 1+3*rng.Float64()
	for y := range h {
		v := float64(y) / float64(h)
		for x := range w {
			u := float64(x) / float64(w)
			px := [3]float64{
				128 + 90*math.Sin(fx*u+2*v),
				255 * u * (1 - v/2),
				128 + 100*math.Cos(fy*v-u),
			}
			for _, b := range blobs {
				dx, dy := float64(x)-b.cx, float64(y)-b.cy
				if math.Abs(dx) > b.r+40 || math.Abs(dy) > b.r+40 {
					continue // the edge's weight is below e^−20 here
				}
				a := 1 / (1 + math.Exp((math.Sqrt(dx*dx+dy*dy)-b.r)/2))
				for c := range px {
					px[c] = px[c]*(1-a) + b.c[c]*a
				}
			}
			var out [3]uint8
			for c := range px {
				out[c] = uint8(min(max(px[c]+rng.NormFloat64()*6, 0), 255))
			}
			img.SetRGBA(x, y, color.RGBA{out[0], out[1], out[2], 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		panic(fmt.Sprintf("images: SyntheticJPEG(%d, %d): %v", w, h, err))
	}
	return buf.Bytes()
}
