package shapes

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"image"
	"io"
)

// pngWriter writes opaque RGBA images as 8-bit RGB PNGs, faster than
// image/png for these images: every row uses the Up filter (flat
// backgrounds and vertical runs become zeros) instead of trying all five
// filters per row, and the rows are deflated at flate.BestSpeed.
type pngWriter struct {
	raw  []byte // filtered scanlines
	z    bytes.Buffer
	zw   *flate.Writer
	crc  [4]byte
	head [8]byte
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

func newPNGWriter() *pngWriter {
	p := &pngWriter{}
	p.zw, _ = flate.NewWriter(&p.z, flate.BestSpeed) // the level is valid
	return p
}

// encode writes img (alpha ignored: scenes are opaque) to w.
func (p *pngWriter) encode(w *bytes.Buffer, img *image.RGBA) error {
	width, height := img.Rect.Dx(), img.Rect.Dy()
	stride := 1 + 3*width
	if cap(p.raw) < stride*height {
		p.raw = make([]byte, stride*height)
	}
	raw := p.raw[:stride*height]
	for y := range height {
		row := raw[y*stride : (y+1)*stride]
		cur := img.Pix[y*img.Stride : y*img.Stride+4*width]
		row[0] = 2 // Up
		if y == 0 {
			for x := range width {
				row[1+3*x], row[2+3*x], row[3+3*x] = cur[4*x], cur[4*x+1], cur[4*x+2]
			}
			continue
		}
		prev := img.Pix[(y-1)*img.Stride : (y-1)*img.Stride+4*width]
		for x := range width {
			row[1+3*x] = cur[4*x] - prev[4*x]
			row[2+3*x] = cur[4*x+1] - prev[4*x+1]
			row[3+3*x] = cur[4*x+2] - prev[4*x+2]
		}
	}
	// zlib stream: header (deflate, 32 KiB window, fastest), data, Adler-32.
	p.z.Reset()
	p.z.Write([]byte{0x78, 0x01})
	p.zw.Reset(&p.z)
	if _, err := p.zw.Write(raw); err != nil {
		return err
	}
	if err := p.zw.Close(); err != nil {
		return err
	}
	binary.BigEndian.PutUint32(p.crc[:], adler32.Checksum(raw))
	p.z.Write(p.crc[:])

	w.Write(pngSignature)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = 8, 2 // 8-bit truecolour; compression, filter, interlace 0
	p.chunk(w, "IHDR", ihdr[:])
	p.chunk(w, "IDAT", p.z.Bytes())
	p.chunk(w, "IEND", nil)
	return nil
}

func (p *pngWriter) chunk(w io.Writer, typ string, data []byte) {
	binary.BigEndian.PutUint32(p.head[:4], uint32(len(data)))
	copy(p.head[4:], typ)
	w.Write(p.head[:])
	w.Write(data)
	crc := crc32.NewIEEE()
	crc.Write(p.head[4:])
	crc.Write(data)
	binary.BigEndian.PutUint32(p.crc[:], crc.Sum32())
	w.Write(p.crc[:])
}
