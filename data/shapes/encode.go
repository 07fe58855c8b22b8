package shapes

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// JPEGQuality is fixed so that the same scene always gives the same bytes.
const JPEGQuality = 90

// encoder encodes scenes' images; one per worker, reusing its buffers.
type encoder struct {
	buf bytes.Buffer
	png *pngWriter
}

func newEncoder() *encoder { return &encoder{png: newPNGWriter()} }

// encode returns a fresh copy of img encoded as JPEG or PNG.
func (e *encoder) encode(img *image.RGBA, asJPEG bool) ([]byte, error) {
	e.buf.Reset()
	var err error
	if asJPEG {
		err = jpeg.Encode(&e.buf, img, &jpeg.Options{Quality: JPEGQuality})
	} else {
		err = e.png.encode(&e.buf, img)
	}
	if err != nil {
		return nil, fmt.Errorf("shapes: encode image: %w", err)
	}
	return bytes.Clone(e.buf.Bytes()), nil
}
