package images

import (
	"image"
	"image/color"
	"sync"
)

// rgbImage is packed 8-bit RGB, row stride 3w: what both decode paths hand
// to the resampler.
type rgbImage struct {
	w, h int
	pix  []byte
}

// scratch holds one decode's temporary buffers. Pooling them keeps a decode
// worker's steady state free of large allocations (a 640×480 RGB image is
// 900 KB); the output never depends on what the pool returns.
type scratch struct {
	pix     []byte    // decoded RGB (or CMYK) pixels
	rows    []float32 // ring of horizontally filtered rows, each Resolution × 3
	ringRow []int     // source row held in each ring slot, −1 for none
	acc     []float32 // vertical pass accumulator: Resolution × 3
	wx, wy  taps
}

// maxPooledBytes keeps an occasional huge image's buffers out of the pool.
const maxPooledBytes = 16 << 20

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.pix) > maxPooledBytes || 4*cap(s.rows) > maxPooledBytes {
		return
	}
	scratchPool.Put(s)
}

func (s *scratch) bytes(n int) []byte {
	if cap(s.pix) < n {
		s.pix = make([]byte, n)
	}
	return s.pix[:n]
}

// toRGB converts any decoded image to packed RGB. Alpha is composited over
// white: out = c·a + 255·(1 − a) on straight (non-premultiplied) values, i.e.
// premultiplied c + (255 − a).
func toRGB(img image.Image, s *scratch) rgbImage {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := rgbImage{w: w, h: h, pix: s.bytes(3 * w * h)}
	p := out.pix
	switch m := img.(type) {
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			o := (y - b.Min.Y) * 3 * w
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				p[o], p[o+1], p[o+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				o += 3
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := y * 3 * w
			for _, v := range row {
				p[o], p[o+1], p[o+2] = v, v, v
				o += 3
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := y * 3 * w
			for i := 0; i < len(row); i += 4 {
				p[o], p[o+1], p[o+2] = color.CMYKToRGB(row[i], row[i+1], row[i+2], row[i+3])
				o += 3
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := y * 3 * w
			for i := 0; i < len(row); i += 4 {
				t := 255 - row[i+3]
				p[o], p[o+1], p[o+2] = row[i]+t, row[i+1]+t, row[i+2]+t
				o += 3
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			o := y * 3 * w
			for i := 0; i < len(row); i += 4 {
				a := uint32(row[i+3])
				p[o] = overWhite(row[i], a)
				p[o+1] = overWhite(row[i+1], a)
				p[o+2] = overWhite(row[i+2], a)
				o += 3
			}
		}
	case *image.Paletted:
		// Indices past the palette (legal in PNG) read as opaque black,
		// where Paletted.At would panic.
		var lut [256][3]byte
		for i, c := range m.Palette {
			lut[i] = colorOverWhite(c)
		}
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := y * 3 * w
			for _, v := range row {
				c := lut[v]
				p[o], p[o+1], p[o+2] = c[0], c[1], c[2]
				o += 3
			}
		}
	default:
		// 16-bit PNG, NYCbCrA WebP and anything rarer: slow but exact.
		o := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := colorOverWhite(m.At(x, y))
				p[o], p[o+1], p[o+2] = c[0], c[1], c[2]
				o += 3
			}
		}
	}
	return out
}

// overWhite composites one straight-alpha 8-bit channel over white, rounded.
func overWhite(c byte, a uint32) byte {
	return byte((uint32(c)*a + 255*(255-a) + 127) / 255)
}

// colorOverWhite composites c's 16-bit premultiplied RGBA over white.
func colorOverWhite(c color.Color) [3]byte {
	r, g, b, a := c.RGBA()
	t := 0xffff - a
	return [3]byte{byte((r + t) >> 8), byte((g + t) >> 8), byte((b + t) >> 8)}
}
