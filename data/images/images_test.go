package images

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/disintegration/imaging"
	"golang.org/x/image/webp"

	"github.com/mmablate/mmablate/data"
)

// picture is a deterministic w×h test image: colour gradients, a sharp
// diagonal edge and a checker patch, with alpha from alpha(x, y).
func picture(w, h int, alpha func(x, y int) uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{uint8(255 * x / max(w-1, 1)), uint8(255 * y / max(h-1, 1)), 90, alpha(x, y)}
			if x*h > y*w {
				c.B = 220
			}
			if (x/3+y/3)%2 == 0 && x < w/3 && y < h/3 {
				c.R, c.G = 250, 10
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func opaque(int, int) uint8 { return 255 }

func convert(src image.Image, dst draw.Image) image.Image {
	draw.Draw(dst, dst.Bounds(), src, src.Bounds().Min, draw.Src)
	return dst
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, frames ...*image.Paletted) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: make([]int, len(frames))}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func paletted(img image.Image) *image.Paletted {
	p := image.NewPaletted(img.Bounds(), palette.Plan9)
	draw.Draw(p, p.Bounds(), img, img.Bounds().Min, draw.Src)
	return p
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reference computes the expected output independently: the standard
// decoders, image/draw to composite over white, imaging.Resize (Linear) with
// the shorter side to R, imaging.CropCenter, then the normalisation.
func reference(t testing.TB, b []byte, opt Options) []float32 {
	t.Helper()
	var img image.Image
	var err error
	switch {
	case bytes.HasPrefix(b, []byte("RIFF")):
		img, err = webp.Decode(bytes.NewReader(b))
	default:
		img, _, err = image.Decode(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("reference decode: %v", err)
	}
	bnd := img.Bounds()
	white := image.NewRGBA(image.Rect(0, 0, bnd.Dx(), bnd.Dy()))
	draw.Draw(white, white.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(white, white.Bounds(), img, bnd.Min, draw.Over)
	r := opt.Resolution
	var res *image.NRGBA
	if bnd.Dx() < bnd.Dy() {
		res = imaging.Resize(white, r, 0, imaging.Linear)
	} else {
		res = imaging.Resize(white, 0, r, imaging.Linear)
	}
	crop := imaging.CropCenter(res, r, r)
	out := make([]float32, 3*r*r)
	for y := range r {
		for x := range r {
			for c := range 3 {
				v := float32(crop.Pix[y*crop.Stride+4*x+c]) / 255
				out[c*r*r+y*r+x] = (v - opt.Mean[c]) / opt.Std[c]
			}
		}
	}
	return out
}

// diff reports, per channel, the mean and max absolute difference of two
// CHW outputs in 8-bit pixel levels (normalised difference × std × 255).
func diff(a, b []float32, opt Options) (meanAbs, maxAbs [3]float64) {
	plane := len(a) / 3
	for c := range 3 {
		for i := range plane {
			d := math.Abs(float64(a[c*plane+i]-b[c*plane+i])) * float64(opt.Std[c]) * 255
			meanAbs[c] += d / float64(plane)
			maxAbs[c] = max(maxAbs[c], d)
		}
	}
	return meanAbs, maxAbs
}

type formatCase struct {
	name string
	b    []byte
}

func formatCases(t testing.TB) []formatCase {
	alphaRamp := func(x, y int) uint8 { return uint8(255 * x / 49) }
	rgba := convert(picture(64, 48, opaque), image.NewRGBA(image.Rect(0, 0, 64, 48)))
	gray := convert(picture(33, 17, opaque), image.NewGray(image.Rect(0, 0, 33, 17)))
	gray16 := convert(picture(40, 40, opaque), image.NewGray16(image.Rect(0, 0, 40, 40)))
	rgba64 := convert(picture(31, 45, opaque), image.NewRGBA64(image.Rect(0, 0, 31, 45)))
	grayJPEG := convert(picture(65, 129, opaque), image.NewGray(image.Rect(0, 0, 65, 129)))
	return []formatCase{
		{"png-rgba-64x48", encodePNG(t, rgba)},
		{"png-nrgba-alpha-50x70", encodePNG(t, picture(50, 70, alphaRamp))},
		{"png-gray-33x17", encodePNG(t, gray)},
		{"png-gray16-40x40", encodePNG(t, gray16)},
		{"png-rgba64-31x45", encodePNG(t, rgba64)},
		{"png-paletted-45x30", encodePNG(t, paletted(picture(45, 30, opaque)))},
		{"png-upscale-10x7", encodePNG(t, picture(10, 7, opaque))},
		{"png-exact-32x32", encodePNG(t, picture(32, 32, opaque))},
		{"png-1x1", encodePNG(t, picture(1, 1, opaque))},
		{"png-wide-300x2", encodePNG(t, picture(300, 2, opaque))},
		{"png-tall-3x500", encodePNG(t, picture(3, 500, opaque))},
		{"jpeg-ycbcr-97x61", encodeJPEG(t, picture(97, 61, opaque), 90)},
		{"jpeg-gray-65x129", encodeJPEG(t, grayJPEG, 90)},
		{"jpeg-cmyk-97x61", testdata(t, "cmyk.jpg")},
		{"jpeg-photo-640x480", SyntheticJPEG(640, 480, 3, 90)},
		{"gif-40x25", encodeGIF(t, paletted(picture(40, 25, opaque)))},
		{"webp-lossy", testdata(t, "blue-purple-pink.lossy.webp")},
		{"webp-lossless-1bpp", testdata(t, "gopher-doc.1bpp.lossless.webp")},
		{"webp-lossless-alpha", testdata(t, "gopher-doc.with-alpha.lossless.webp")},
	}
}

// TestStdMatchesImaging checks the pure-Go path against the reference for
// every format and colour model. The reference rounds to 8 bits three times
// (draw's composite, each imaging pass), so up to 2 levels apart at a pixel,
// half a level on average.
func TestStdMatchesImaging(t *testing.T) {
	for _, res := range []int{32, 224} {
		opt := DefaultOptions(res)
		for _, tc := range formatCases(t) {
			t.Run(fmt.Sprintf("%s/%d", tc.name, res), func(t *testing.T) {
				got := make([]float32, 3*res*res)
				if err := decodeInto(got, tc.b, opt, false); err != nil {
					t.Fatal(err)
				}
				meanAbs, maxAbs := diff(got, reference(t, tc.b, opt), opt)
				for c := range 3 {
					if meanAbs[c] > 0.5 || maxAbs[c] > 2 {
						t.Errorf("channel %d: mean |diff| %.3f levels (limit 0.5), max %.3f (limit 2)", c, meanAbs[c], maxAbs[c])
					}
				}
			})
		}
	}
}

// uniform reports whether every value of each output plane equals want[c].
func uniform(t *testing.T, got []float32, want [3]float32, tol float32) {
	t.Helper()
	plane := len(got) / 3
	for c := range 3 {
		for i := range plane {
			if d := got[c*plane+i] - want[c]; d > tol || d < -tol {
				t.Fatalf("channel %d pixel %d = %v, want %v", c, i, got[c*plane+i], want[c])
			}
		}
	}
}

func normalised(rgb [3]uint8, opt Options) [3]float32 {
	var out [3]float32
	for c := range 3 {
		out[c] = (float32(rgb[c])/255 - opt.Mean[c]) / opt.Std[c]
	}
	return out
}

func TestTransparentIsWhite(t *testing.T) {
	opt := DefaultOptions(16)
	clear := image.NewNRGBA(image.Rect(0, 0, 20, 30))
	draw.Draw(clear, clear.Bounds(), image.NewUniform(color.NRGBA{200, 0, 0, 0}), image.Point{}, draw.Src)
	img, err := Decode(encodePNG(t, clear), opt)
	if err != nil {
		t.Fatal(err)
	}
	uniform(t, img.Pix, normalised([3]uint8{255, 255, 255}, opt), 1e-5)
}

func TestGIFFirstFrame(t *testing.T) {
	opt := DefaultOptions(16)
	frame := func(c color.RGBA) *image.Paletted {
		p := image.NewPaletted(image.Rect(0, 0, 24, 24), color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}})
		draw.Draw(p, p.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
		return p
	}
	b := encodeGIF(t, frame(color.RGBA{255, 0, 0, 255}), frame(color.RGBA{0, 0, 255, 255}))
	img, err := Decode(b, opt)
	if err != nil {
		t.Fatal(err)
	}
	uniform(t, img.Pix, normalised([3]uint8{255, 0, 0}, opt), 1e-5)
}

// TestUniformColour: a flat colour stays that colour through every path and
// format (the filter's weights sum to one); JPEG may be off by a level or
// two from quantisation.
func TestUniformColour(t *testing.T) {
	opt := DefaultOptions(24)
	rgb := [3]uint8{30, 140, 220}
	flat := image.NewRGBA(image.Rect(0, 0, 123, 77))
	draw.Draw(flat, flat.Bounds(), image.NewUniform(color.RGBA{rgb[0], rgb[1], rgb[2], 255}), image.Point{}, draw.Src)
	want := normalised(rgb, opt)
	level := 1 / (255 * opt.Std[0]) // about one 8-bit level in normalised units
	for _, tc := range []struct {
		name string
		b    []byte
		tol  float32
	}{
		{"png", encodePNG(t, flat), 1e-5},
		{"gif", encodeGIF(t, flatPaletted(flat.Bounds(), rgb)), 1e-5},
		{"jpeg", encodeJPEG(t, flat, 95), 2 * level},
	} {
		for _, fast := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				got := make([]float32, 3*24*24)
				if err := decodeInto(got, tc.b, opt, fast); err != nil {
					t.Fatal(err)
				}
				uniform(t, got, want, tc.tol)
			})
		}
	}
}

func flatPaletted(r image.Rectangle, rgb [3]uint8) *image.Paletted {
	return image.NewPaletted(r, color.Palette{color.RGBA{rgb[0], rgb[1], rgb[2], 255}})
}

// pngHeader is a PNG signature and a valid IHDR (8-bit RGB) declaring w×h,
// with no image data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := []byte{0, 0, 0, 13, 'I', 'H', 'D', 'R',
		byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w),
		byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h),
		8, 2, 0, 0, 0}
	b.Write(chunk)
	crc := crc32IEEE(chunk[4:])
	b.Write([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	return b.Bytes()
}

// jpegWithSize rewrites the dimensions in a JPEG's SOF0 marker.
func jpegWithSize(t testing.TB, b []byte, w, h int) []byte {
	t.Helper()
	b = bytes.Clone(b)
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	b[i+5], b[i+6] = byte(h>>8), byte(h)
	b[i+7], b[i+8] = byte(w>>8), byte(w)
	return b
}

// scanBomb inserts n−1 extra SOS segments before the EOI marker of a
// single-scan JPEG: the shape of a progressive scan bomb.
func scanBomb(jpg []byte, n int) []byte {
	sos := []byte{0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00}
	out := bytes.Clone(jpg[:len(jpg)-2])
	for range n - 1 {
		out = append(out, sos...)
	}
	return append(out, 0xff, 0xd9)
}

func gifHeader(w, h int) []byte {
	return []byte{'G', 'I', 'F', '8', '9', 'a', byte(w), byte(w >> 8), byte(h), byte(h >> 8), 0, 0, 0}
}

// webpLosslessHeader is a VP8L bitstream header declaring w×h (each 1…16384).
func webpLosslessHeader(w, h int) []byte {
	bits := uint32(w-1) | uint32(h-1)<<14
	payload := []byte{0x2f, byte(bits), byte(bits >> 8), byte(bits >> 16), byte(bits >> 24), 0, 0, 0}
	b := []byte("RIFF\x00\x00\x00\x00WEBPVP8L")
	b = append(b, byte(len(payload)), 0, 0, 0)
	b = append(b, payload...)
	size := len(b) - 8
	b[4], b[5], b[6], b[7] = byte(size), byte(size>>8), byte(size>>16), byte(size>>24)
	return b
}

func TestErrors(t *testing.T) {
	opt := DefaultOptions(32)
	jpg := encodeJPEG(t, picture(97, 61, opaque), 90)
	pngBytes := encodePNG(t, picture(40, 30, opaque))
	for _, tc := range []struct {
		name string
		b    []byte
		want error
		says string // part of the message
	}{
		{"no-bytes", nil, data.ErrEmptyImage, "zero bytes"},
		{"not-an-image", []byte("hello, world: not an image"), data.ErrImageFormat, "68 65 6c 6c 6f"},
		{"bmp", []byte("BM\x3e\x00\x00\x00\x00\x00\x00\x00"), data.ErrImageFormat, "not a JPEG, PNG, GIF or WebP"},
		{"jpeg-truncated", jpg[:len(jpg)/2], data.ErrImageFormat, "JPEG"},
		{"jpeg-header-only", jpg[:20], data.ErrImageFormat, "JPEG"},
		{"jpeg-corrupt-scan", func() []byte {
			b := bytes.Clone(jpg)
			for i := len(b) / 2; i < len(b)-2; i++ {
				b[i] = 0xff
			}
			return b
		}(), data.ErrImageFormat, "JPEG"},
		{"png-truncated", pngBytes[:len(pngBytes)-30], data.ErrImageFormat, "PNG"},
		{"png-zero-width", pngHeader(0, 10), data.ErrEmptyImage, "0×10"},
		{"gif-zero-height", gifHeader(10, 0), data.ErrEmptyImage, "10×0"},
		{"jpeg-zero-width", jpegWithSize(t, jpg, 0, 61), data.ErrEmptyImage, "0×61"},
		{"png-bomb", pngHeader(50000, 50000), data.ErrImageTooLarge, "50000×50000"},
		{"jpeg-bomb", jpegWithSize(t, jpg, 50000, 50000), data.ErrImageTooLarge, "50000×50000"},
		{"gif-bomb", gifHeader(60000, 60000), data.ErrImageTooLarge, "60000×60000"},
		{"webp-bomb", webpLosslessHeader(16384, 16384), data.ErrImageTooLarge, "16384×16384"},
		{"jpeg-scan-bomb", scanBomb(jpg, 501), data.ErrImageFormat, "501 scans"},
		{"webp-truncated", testdata(t, "blue-purple-pink.lossy.webp")[:1000], data.ErrImageFormat, "WebP"},
	} {
		for _, fast := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				dst := make([]float32, 3*32*32)
				err := decodeInto(dst, tc.b, opt, fast)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("err %q does not say %q", err, tc.says)
				}
			})
		}
	}
}

// TestPixelBombAllocatesNothingLarge: a header declaring 50000×50000 (7.5 GB
// of RGB) is refused from the header; the Go heap grows by less than 64 KB
// per attempt (decoder state only).
func TestPixelBombAllocatesNothingLarge(t *testing.T) {
	opt := DefaultOptions(32)
	jpg := jpegWithSize(t, encodeJPEG(t, picture(16, 16, opaque), 90), 50000, 50000)
	dst := make([]float32, 3*32*32)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"png", pngHeader(50000, 50000)},
		{"jpeg", jpg},
		{"gif", gifHeader(50000, 50000)},
	} {
		for _, fast := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				const runs = 20
				var before, after runtimeMem
				before.read()
				for range runs {
					if err := decodeInto(dst, tc.b, opt, fast); !errors.Is(err, data.ErrImageTooLarge) {
						t.Fatalf("err = %v, want ErrImageTooLarge", err)
					}
				}
				after.read()
				if per := (after.total - before.total) / runs; per > 64<<10 {
					t.Errorf("allocated %d bytes per refused image, want < 64 KB", per)
				}
			})
		}
	}
}

func TestMaxPixelsOption(t *testing.T) {
	b := encodePNG(t, picture(100, 50, opaque))
	opt := DefaultOptions(16)
	opt.MaxPixels = 5000
	if _, err := Decode(b, opt); err != nil {
		t.Fatalf("100×50 at limit 5000: %v", err)
	}
	opt.MaxPixels = 4999
	if _, err := Decode(b, opt); !errors.Is(err, data.ErrImageTooLarge) {
		t.Fatalf("100×50 at limit 4999: err = %v, want ErrImageTooLarge", err)
	}
}

// TestDefaultMaxPixels: the default limit is 64 megapixels. An 8000×8000
// header passes the check (its decode then fails on the missing pixel data,
// an ErrImageFormat); one more row is refused from the header.
func TestDefaultMaxPixels(t *testing.T) {
	for _, opt := range []Options{DefaultOptions(16), {Resolution: 16, Std: clipStd}} { // set, and 0 meaning the default
		err := decodeInto(make([]float32, 3*16*16), pngHeader(8000, 8000), opt, false)
		if !errors.Is(err, data.ErrImageFormat) || errors.Is(err, data.ErrImageTooLarge) {
			t.Errorf("MaxPixels %d: 8000×8000: %v, want a format error past the size check", opt.MaxPixels, err)
		}
		err = decodeInto(make([]float32, 3*16*16), pngHeader(8000, 8001), opt, false)
		if !errors.Is(err, data.ErrImageTooLarge) || !strings.Contains(err.Error(), "limit 64000000") {
			t.Errorf("MaxPixels %d: 8000×8001: %v, want ErrImageTooLarge at limit 64000000", opt.MaxPixels, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := DefaultOptions(224)
	for _, tc := range []struct {
		name string
		edit func(*Options)
		says string
	}{
		{"zero-resolution", func(o *Options) { o.Resolution = 0 }, "resolution 0"},
		{"huge-resolution", func(o *Options) { o.Resolution = 100000 }, "resolution 100000"},
		{"zero-std", func(o *Options) { o.Std[1] = 0 }, "std[1]"},
		{"nan-std", func(o *Options) { o.Std[2] = float32(math.NaN()) }, "std[2]"},
		{"negative-max-pixels", func(o *Options) { o.MaxPixels = -1 }, "max pixels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Validate() = %v, want an error saying %q", err, tc.says)
			}
			if _, err := Decode(encodePNG(t, picture(4, 4, opaque)), o); err == nil {
				t.Fatal("Decode accepted invalid options")
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("DefaultOptions(224).Validate() = %v", err)
	}
	zeroMax := ok
	zeroMax.MaxPixels = 0 // means the default
	if _, err := Decode(encodePNG(t, picture(8, 8, opaque)), zeroMax); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeIntoWrongLengthPanics(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "len(dst) = 10") {
			t.Fatalf("panic = %v, want one naming len(dst)", p)
		}
	}()
	_ = DecodeInto(make([]float32, 10), encodePNG(t, picture(4, 4, opaque)), DefaultOptions(8))
}

func TestDecodeShape(t *testing.T) {
	img, err := Decode(encodePNG(t, picture(40, 30, opaque)), DefaultOptions(20))
	if err != nil {
		t.Fatal(err)
	}
	if img.C != 3 || img.H != 20 || img.W != 20 || len(img.Pix) != 3*20*20 {
		t.Fatalf("got C,H,W = %d,%d,%d len %d, want 3,20,20 len 1200", img.C, img.H, img.W, len(img.Pix))
	}
}

// TestSteadyStateAllocations: decoding into a caller's buffer reuses the
// pooled scratch, so the fast path allocates only small decoder state.
func TestSteadyStateAllocations(t *testing.T) {
	if !FastPathAvailable() {
		t.Skip("libjpeg-turbo not compiled in")
	}
	jpg := SyntheticJPEG(320, 240, 1, 90)
	opt := DefaultOptions(64)
	dst := make([]float32, 3*64*64)
	allocs := testing.AllocsPerRun(20, func() {
		if err := DecodeInto(dst, jpg, opt); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("%.1f allocations per fast-path decode, want ≤ 2", allocs)
	}
}

// TestConcurrentDecodes: decode workers share the scratch pool; results
// must not depend on what another goroutine decoded.
func TestConcurrentDecodes(t *testing.T) {
	opt := DefaultOptions(48)
	inputs := [][]byte{
		SyntheticJPEG(200, 150, 1, 90),
		encodePNG(t, picture(90, 120, opaque)),
		SyntheticJPEG(64, 300, 2, 80),
		testdata(t, "blue-purple-pink.lossy.webp"),
	}
	want := make([][]float32, len(inputs))
	for i, b := range inputs {
		img, err := Decode(b, opt)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = img.Pix
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			dst := make([]float32, 3*48*48)
			for k := range 20 {
				i := (g + k) % len(inputs)
				if err := DecodeInto(dst, inputs[i], opt); err != nil {
					errs <- err
					return
				}
				for j := range dst {
					if dst[j] != want[i][j] {
						errs <- fmt.Errorf("goroutine %d, input %d: value %d = %v, serial %v", g, i, j, dst[j], want[i][j])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
