package images

import (
	"errors"
	"image"
	"math"
	"testing"

	"github.com/mmablate/mmablate/data"
)

// FuzzDecode feeds arbitrary bytes to both decode paths: neither may panic,
// every error must wrap one of the three image sentinels, and every output
// value must be a pixel in 0…255 normalised.
func FuzzDecode(f *testing.F) {
	gray := convert(picture(9, 7, opaque), image.NewGray(image.Rect(0, 0, 9, 7)))
	for _, b := range [][]byte{
		encodePNG(f, picture(12, 9, func(x, y int) uint8 { return uint8(20 * x) })),
		encodePNG(f, paletted(picture(8, 8, opaque))),
		encodeJPEG(f, picture(17, 11, opaque), 80),
		encodeJPEG(f, gray, 80),
		encodeGIF(f, paletted(picture(10, 6, opaque))),
		testdata(f, "gopher-doc.1bpp.lossless.webp"),
		testdata(f, "cmyk.jpg"),
		pngHeader(50000, 50000),
		gifHeader(0, 5),
		webpLosslessHeader(3, 4),
	} {
		f.Add(b)
	}
	opt := DefaultOptions(16)
	opt.MaxPixels = 1 << 20 // keep each input cheap
	var lo, hi [3]float32
	for c := range 3 {
		lo[c] = (0 - opt.Mean[c]) / opt.Std[c]
		hi[c] = (1 - opt.Mean[c]) / opt.Std[c]
	}
	dst := make([]float32, 3*16*16)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fast := range []bool{false, true} {
			err := decodeInto(dst, b, opt, fast)
			if err != nil {
				if !errors.Is(err, data.ErrImageFormat) && !errors.Is(err, data.ErrImageTooLarge) && !errors.Is(err, data.ErrEmptyImage) {
					t.Fatalf("fast=%v: error %v wraps no image sentinel", fast, err)
				}
				continue
			}
			for i, v := range dst {
				c := i / 256
				if math.IsNaN(float64(v)) || v < lo[c]-1e-4 || v > hi[c]+1e-4 {
					t.Fatalf("fast=%v: value %d = %v outside [%v, %v]", fast, i, v, lo[c], hi[c])
				}
			}
		}
	})
}
