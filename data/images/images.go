// Package images turns encoded image bytes (JPEG, PNG, WebP, GIF) into the
// model's input tensor: RGB, the shorter side resized to Resolution, a centred
// Resolution×Resolution crop, normalised per channel with Mean and Std, as
// float32 in channel-major order (data.Image's layout).
//
// The pipeline, for every format:
//
//	header → bounds check (before any pixel buffer exists)
//	      → decode → packed 8-bit RGB (alpha composited over white)
//	      → separable bilinear resample of just the crop → (v/255 − mean)/std
//
// JPEG has a fast path through libjpeg-turbo (cgo, built unless the
// noturbojpeg tag is set or cgo is off): it decodes with the DCT scaled down
// to the smallest size still at least Resolution on the shorter side, then runs
// the same resample. FastPathAvailable says whether it was compiled in. When
// libjpeg-turbo fails or warns (a truncated scan, say), image/jpeg decodes the
// file instead, so a broken JPEG gets image/jpeg's verdict and error message
// in every build. The two paths' outputs differ slightly (TestTurboMatchesStd:
// mean |difference| under one 8-bit level per channel).
//
// Choices, so that results can be reproduced elsewhere:
//   - Filter: imaging.Linear, the triangle (bilinear) kernel, widened by the
//     downscale factor (antialiased), as imaging.Resize and torchvision's
//     default Resize apply it; only the kept crop is filtered (resample.go says
//     why this is not a call to imaging.Resize).
//     Output sizes and crop offsets match imaging.Resize (shorter side to
//     Resolution) followed by imaging.CropCenter; TestStdMatchesImaging checks
//     the values against imaging.
//   - Alpha: composited over white, as browsers show transparent logos and
//     drawings on a page.
//   - GIF: the first frame only.
//   - CMYK JPEG: Adobe's inverted convention, as image/jpeg reads it.
//   - EXIF orientation and ICC profiles are ignored, as PIL and torchvision
//     ignore them by default.
//   - Bounds: MaxPixels from the header before decoding; JPEGs with more than
//     500 scans are refused (libjpeg-turbo's limit, applied to both paths).
package images

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"

	"github.com/mmablate/mmablate/data"
)

// DefaultMaxPixels bounds width×height read from a header: 64 megapixels,
// decimal as camera makers count them (an 8000×8000 photo is just within),
// which costs at most ~256 MB of RGBA while decoding.
const DefaultMaxPixels = 64_000_000

// maxJPEGScans is libjpeg-turbo's TJFLAG_LIMITSCANS limit, applied to
// image/jpeg too: each progressive scan revisits the whole image, so a few
// kilobytes of repeated scan headers would otherwise cost minutes of CPU.
// Entropy-coded data never contains 0xFF 0xDA (0xFF is stuffed), so counting
// that pair counts SOS markers.
const maxJPEGScans = 500

// CLIP's normalisation (OpenAI CLIP, open_clip's OPENAI_DATASET_MEAN/STD).
var (
	clipMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// Options say what DecodeInto produces.
type Options struct {
	// Resolution is the output's side: the shorter side is resized to it and
	// the centre Resolution×Resolution square is kept.
	Resolution int
	// Mean and Std normalise each channel of v/255 (v in 0..255) to
	// (v/255 − Mean[c]) / Std[c].
	Mean, Std [3]float32
	// MaxPixels refuses images whose header declares more than this many
	// pixels, before any pixel buffer is allocated; 0 means DefaultMaxPixels.
	MaxPixels int64
}

// DefaultOptions are CLIP's mean and std and DefaultMaxPixels.
func DefaultOptions(resolution int) Options {
	return Options{Resolution: resolution, Mean: clipMean, Std: clipStd, MaxPixels: DefaultMaxPixels}
}

// Validate reports options no image could satisfy; readers call it once at
// open so that a bad config is not reported as a bad image per row.
func (o Options) Validate() error {
	if o.Resolution <= 0 || o.Resolution > 8192 {
		return fmt.Errorf("images: resolution %d out of range 1..8192", o.Resolution)
	}
	for c, s := range o.Std {
		if !(s > 0) {
			return fmt.Errorf("images: std[%d] = %v, must be > 0", c, s)
		}
	}
	if o.MaxPixels < 0 {
		return fmt.Errorf("images: max pixels %d is negative", o.MaxPixels)
	}
	return nil
}

func (o Options) maxPixels() int64 {
	if o.MaxPixels == 0 {
		return DefaultMaxPixels
	}
	return o.MaxPixels
}

// FastPathAvailable reports whether JPEGs are decoded by libjpeg-turbo.
func FastPathAvailable() bool { return turboAvailable }

// Decode returns b as a 3×Resolution×Resolution image. Errors wrap
// data.ErrEmptyImage, data.ErrImageTooLarge or data.ErrImageFormat, except
// for invalid Options.
func Decode(b []byte, opt Options) (*data.Image, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	r := opt.Resolution
	img := &data.Image{C: 3, H: r, W: r, Pix: make([]float32, 3*r*r)}
	if err := DecodeInto(img.Pix, b, opt); err != nil {
		return nil, err
	}
	return img, nil
}

// DecodeInto is Decode writing into dst, which must hold exactly
// 3×Resolution×Resolution floats (it panics otherwise: a caller's sizing bug,
// not bad data). dst is left in an unspecified state on error.
func DecodeInto(dst []float32, b []byte, opt Options) error {
	return decodeInto(dst, b, opt, true)
}

// decodeInto is DecodeInto with the JPEG fast path optional, so tests and
// benchmarks can run the pure-Go path whatever the build tags.
func decodeInto(dst []float32, b []byte, opt Options, fast bool) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	if n := 3 * opt.Resolution * opt.Resolution; len(dst) != n {
		panic(fmt.Sprintf("images: DecodeInto: len(dst) = %d, want 3×%d×%d = %d", len(dst), opt.Resolution, opt.Resolution, n))
	}
	if len(b) == 0 {
		return fmt.Errorf("%w: zero bytes", data.ErrEmptyImage)
	}
	f, err := sniff(b)
	if err != nil {
		return err
	}
	s := getScratch()
	defer putScratch(s)
	if f == formatJPEG && fast && turboAvailable {
		if err := decodeJPEGTurbo(dst, b, opt, s); err != errTurboFailed {
			return err
		}
	}
	return decodeStd(dst, b, f, opt, s)
}

type format int

const (
	formatJPEG format = iota
	formatPNG
	formatGIF
	formatWebP
)

func (f format) String() string {
	return [...]string{"JPEG", "PNG", "GIF", "WebP"}[f]
}

// sniff identifies the format from its magic bytes rather than trying each
// decoder, so the error for unknown bytes says what was found.
func sniff(b []byte) (format, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8}):
		return formatJPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return formatGIF, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return formatWebP, nil
	}
	head := b[:min(len(b), 8)]
	return 0, fmt.Errorf("%w: not a JPEG, PNG, GIF or WebP (starts with % x)", data.ErrImageFormat, head)
}

// checkSize applies the empty and pixel-count limits to header dimensions.
func checkSize(f format, w, h int, opt Options) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %s header declares %d×%d", data.ErrEmptyImage, f, w, h)
	}
	if n := int64(w) * int64(h); n > opt.maxPixels() {
		return fmt.Errorf("%w: %s is %d×%d = %d pixels, limit %d", data.ErrImageTooLarge, f, w, h, n, opt.maxPixels())
	}
	return nil
}

// pngDims reads IHDR's width and height; png.DecodeConfig rejects zero
// dimensions as a format error, but zero is an empty image.
func pngDims(b []byte) (w, h uint32, ok bool) {
	if len(b) < 24 || string(b[12:16]) != "IHDR" {
		return 0, 0, false
	}
	be := func(p []byte) uint32 { return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]) }
	return be(b[16:20]), be(b[20:24]), true
}

// decodeStd is the pure-Go path: header, bounds, decode with the standard
// library (and x/image/webp), convert to RGB, resample.
func decodeStd(dst []float32, b []byte, f format, opt Options, s *scratch) error {
	if f == formatPNG {
		if w, h, ok := pngDims(b); ok && (w == 0 || h == 0) {
			return checkSize(f, int(w), int(h), opt)
		}
	}
	var cfg image.Config
	var err error
	switch f {
	case formatJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
	case formatPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
	case formatGIF:
		cfg, err = gif.DecodeConfig(bytes.NewReader(b))
	case formatWebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(b))
	}
	if err != nil {
		return fmt.Errorf("%w: %s header: %v", data.ErrImageFormat, f, err)
	}
	if err := checkSize(f, cfg.Width, cfg.Height, opt); err != nil {
		return err
	}
	if f == formatJPEG {
		if n := bytes.Count(b, []byte{0xff, 0xda}); n > maxJPEGScans {
			return fmt.Errorf("%w: JPEG has %d scans, limit %d", data.ErrImageFormat, n, maxJPEGScans)
		}
	}
	img, err := guardedDecode(f, b)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", data.ErrImageFormat, f, err)
	}
	bnd := img.Bounds()
	// A GIF frame or WebP canvas may disagree with the header; bound what
	// was actually decoded too, since the resampler sizes buffers from it.
	if err := checkSize(f, bnd.Dx(), bnd.Dy(), opt); err != nil {
		return err
	}
	src := toRGB(img, s)
	resample(dst, src, float64(src.w), float64(src.h), opt, s)
	return nil
}

// guardedDecode turns a decoder panic into an error: x/image/webp and the
// standard decoders are fuzzed, but a panic on one bad row must not take a
// training job down with it.
func guardedDecode(f format, b []byte) (img image.Image, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("decoder panic: %v", p)
		}
	}()
	r := bytes.NewReader(b)
	switch f {
	case formatJPEG:
		return jpeg.Decode(r)
	case formatPNG:
		return png.Decode(r)
	case formatGIF:
		return gif.Decode(r)
	default:
		return webp.Decode(r)
	}
}

// errTurboFailed: libjpeg-turbo could not decode the JPEG cleanly; the
// pure-Go decoder gives the verdict and the error message.
var errTurboFailed = errors.New("libjpeg-turbo failed")
