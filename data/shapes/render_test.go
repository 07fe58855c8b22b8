package shapes

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

func rgbAt(img *image.RGBA, x, y int) [3]uint8 {
	p := img.Pix[y*img.Stride+4*x:]
	return [3]uint8{p[0], p[1], p[2]}
}

func TestRenderShapes(t *testing.T) {
	const n = 96
	bg := backgroundRGB[White]
	for sh := range numShapes {
		s := &Scene{Background: White, Objects: []Object{{Shape: sh, Color: Blue, Size: Large, Position: Center, X: 0.5, Y: 0.5, R: 0.3}}}
		img := image.NewRGBA(image.Rect(0, 0, n, n))
		Render(img, s)
		covered, partial := 0, 0
		for y := range n {
			for x := range n {
				switch c := rgbAt(img, x, y); {
				case c == colorRGB[Blue]:
					covered++
				case c != bg:
					partial++
					// Anti-aliased pixels lie between the two colours.
					for k := range 3 {
						lo, hi := min(bg[k], colorRGB[Blue][k]), max(bg[k], colorRGB[Blue][k])
						if c[k] < lo || c[k] > hi {
							t.Fatalf("%s: pixel (%d,%d) = %v is not a blend", sh, x, y, c)
						}
					}
				}
			}
		}
		if rgbAt(img, 0, 0) != bg || rgbAt(img, n-1, n-1) != bg {
			t.Errorf("%s: corners are not background", sh)
		}
		// Every shape but the ring covers its centre.
		if centre := rgbAt(img, n/2, n/2); (centre == colorRGB[Blue]) == (sh == Ring) {
			t.Errorf("%s: centre pixel %v", sh, centre)
		}
		if partial == 0 || covered < 100 {
			t.Errorf("%s: %d covered and %d edge pixels", sh, covered, partial)
		}
	}
}

// TestRenderTinyVisible: a tiny object still leaves its colour at the
// default size, so the full-resolution image shows it.
func TestRenderTinyVisible(t *testing.T) {
	for sh := range numShapes {
		s := &Scene{Background: Cream, Objects: []Object{{Shape: sh, Color: Red, Size: Tiny, X: 0.3, Y: 0.3, R: sizeRadius[Tiny]}}}
		img := image.NewRGBA(image.Rect(0, 0, 128, 128))
		Render(img, s)
		changed := 0
		for y := range 128 {
			for x := range 128 {
				if rgbAt(img, x, y) != backgroundRGB[Cream] {
					changed++
				}
			}
		}
		if changed < 4 || changed > 60 {
			t.Errorf("tiny %s changes %d pixels", sh, changed)
		}
	}
}

func TestPNGWriterLossless(t *testing.T) {
	for i, tex := range []Texture{Plain, Gradient, Speckle} {
		s := NewScene(recordRNG(3, "png", i, 0), SceneOptions{MaxObjects: 8, CrowdedFraction: 1})
		s.Texture = tex
		img := image.NewRGBA(image.Rect(0, 0, 77, 77)) // odd size: no row happens to align
		Render(img, s)
		var buf bytes.Buffer
		if err := newPNGWriter().encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		dec, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("%s: %v", tex, err)
		}
		for y := range 77 {
			for x := range 77 {
				r, g, b, a := dec.At(x, y).RGBA()
				want := rgbAt(img, x, y)
				if [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)} != want || a != 0xFFFF {
					t.Fatalf("%s: pixel (%d,%d) decodes as %v, want %v", tex, x, y, dec.At(x, y), want)
				}
			}
		}
	}
}
