package images

import (
	"fmt"
	"image"
	"testing"
)

// Tolerance between the libjpeg-turbo path and the pure-Go path, in
// normalised units (one 8-bit level is about 0.015). They differ because
// libjpeg-turbo shrinks in the DCT (a box-like prefilter) before the same
// bilinear resample, where the pure-Go path filters the full-size image, and
// because the two IDCTs and chroma upsamplers round differently. Measured on
// these cases: mean |diff| per channel ≤ 0.010 (under one level), max ≤ 0.11
// (about 7 levels, at single pixels of noisy detail); the limits leave ~1.4×.
const (
	turboMeanTol = 0.015 // ≈ 1 level
	turboMaxTol  = 0.15  // ≈ 10 levels, at isolated pixels
)

func turboCases(t testing.TB) []formatCase {
	gray := convert(picture(317, 211, opaque), image.NewGray(image.Rect(0, 0, 317, 211)))
	cases := []formatCase{
		{"gray-317x211", encodeJPEG(t, gray, 90)},
		{"cmyk-97x61", testdata(t, "cmyk.jpg")},
		{"graphic-97x61", encodeJPEG(t, picture(97, 61, opaque), 90)},
	}
	for _, sz := range [][2]int{{640, 480}, {481, 333}, {224, 224}, {100, 150}, {1201, 901}, {333, 1201}} {
		cases = append(cases, formatCase{fmt.Sprintf("photo-%dx%d", sz[0], sz[1]), SyntheticJPEG(sz[0], sz[1], uint64(sz[0]), 90)})
	}
	return cases
}

// TestTurboMatchesStd states and checks the tolerance between the two JPEG
// paths over sizes that use DCT scales from 1/1 to 1/8, odd sizes, upscaling,
// grayscale and CMYK.
func TestTurboMatchesStd(t *testing.T) {
	if !FastPathAvailable() {
		t.Skip("libjpeg-turbo not compiled in")
	}
	for _, res := range []int{64, 224} {
		opt := DefaultOptions(res)
		for _, tc := range turboCases(t) {
			t.Run(fmt.Sprintf("%s/%d", tc.name, res), func(t *testing.T) {
				fast := make([]float32, 3*res*res)
				std := make([]float32, 3*res*res)
				if err := decodeInto(fast, tc.b, opt, true); err != nil {
					t.Fatal(err)
				}
				if err := decodeInto(std, tc.b, opt, false); err != nil {
					t.Fatal(err)
				}
				meanAbs, maxAbs := diff(fast, std, opt)
				for c := range 3 {
					// diff reports 8-bit levels; convert back to normalised units.
					m, x := meanAbs[c]/(255*float64(opt.Std[c])), maxAbs[c]/(255*float64(opt.Std[c]))
					t.Logf("channel %d: mean |diff| %.4f, max %.4f (normalised)", c, m, x)
					if m > turboMeanTol || x > turboMaxTol {
						t.Errorf("channel %d: mean |diff| %.4f (limit %v), max %.4f (limit %v)", c, m, turboMeanTol, x, turboMaxTol)
					}
				}
			})
		}
	}
}
