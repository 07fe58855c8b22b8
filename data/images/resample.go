package images

import (
	"math"

	"github.com/disintegration/imaging"
)

// filter is imaging.Linear, the triangle (bilinear) kernel, which the taps
// widen by the downscale factor so that shrinking averages every source
// pixel (antialiasing), as imaging.Resize and torchvision's default Resize
// do. It needs half the taps of a cubic, has no overshoot to clamp, and
// keeps the fast path's resample cheaper than its JPEG decode.
//
// imaging's filter, sizes and crop offsets are used, but not imaging.Resize
// itself: it resizes the whole image (then CropCenter discards the margins)
// through an NRGBA copy and 8-bit intermediates, on goroutines of its own.
// Filtering only the crop, in one ring of float rows, costs a fifth of that
// on one core (BenchmarkResample320x240 against its imaging baseline: about
// 350 against 1750 CPU-µs per 224 px crop); through imaging.Resize the
// libjpeg-turbo path would fall from about 750 to about 370 images/s/core,
// under the 600 target. TestStdMatchesImaging checks the output against
// imaging.Resize + imaging.CropCenter.
var filter = imaging.Linear

// taps are one axis's filter weights, the same number n for every output:
// output i is Σ_k w[i*n+k] · src[first[i]+k].
type taps struct {
	first []int
	n     int
	w     []float32

	// compute's working space, kept to avoid allocating per image.
	begins, lens []int
	ws           []float64
}

// compute fills t for outputs off … off+count−1 of an axis resized so that
// one output pixel spans du source pixels, over a source of srcSize pixels.
// The weights are imaging's precomputeWeights restricted to those outputs
// (so a crop costs only what it keeps), then padded with zeros to a common
// tap count so that the inner loops have a fixed length.
func (t *taps) compute(count, off, srcSize int, du float64) {
	scale := max(du, 1)
	ru := math.Ceil(scale * filter.Support)
	span := 2*int(ru) + 1
	t.begins = resize(t.begins, count)
	t.lens = resize(t.lens, count)
	t.ws = resize(t.ws, count*span)
	begins, lens, ws := t.begins, t.lens, t.ws
	t.n = 1
	for i := range count {
		fu := (float64(off+i)+0.5)*du - 0.5
		begin := max(int(math.Ceil(fu-ru)), 0)
		end := min(int(math.Floor(fu+ru)), srcSize-1)
		w := ws[i*span : (i+1)*span]
		var sum float64
		for u := begin; u <= end; u++ {
			w[u-begin] = filter.Kernel((float64(u) - fu) / scale)
			sum += w[u-begin]
		}
		// Drop zero weights at either end: the kernel's support is
		// shorter than the integer span around fu.
		for begin < end && w[0] == 0 {
			copy(w, w[1:end-begin+1])
			begin++
		}
		for end > begin && w[end-begin] == 0 {
			end--
		}
		if end < begin || sum == 0 {
			// Only for a degenerate source: take the nearest pixel.
			begin = min(max(int(math.Round(fu)), 0), srcSize-1)
			end = begin
			w[0], sum = 1, 1
		}
		for k := range end - begin + 1 {
			w[k] /= sum
		}
		begins[i], lens[i] = begin, end-begin+1
		t.n = max(t.n, lens[i])
	}
	t.first = resize(t.first, count)
	t.w = resize(t.w, count*t.n)
	clear(t.w)
	for i := range count {
		// Start early enough that n taps stay inside the source.
		first := min(begins[i], srcSize-t.n)
		shift := begins[i] - first
		for k := range lens[i] {
			t.w[i*t.n+shift+k] = float32(ws[i*span+k])
		}
		t.first[i] = first
	}
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// resample writes the normalised centre crop of src into dst (CHW,
// 3×R×R). effW×effH is the size of src in the units that decide the output
// geometry: the original image's size times the DCT scale for a JPEG decoded
// smaller by libjpeg-turbo, src's own size otherwise. Sizes and crop offsets
// follow imaging: the shorter side becomes R, the longer round(R·long/short),
// the crop starts at (size−R)/2.
func resample(dst []float32, src rgbImage, effW, effH float64, opt Options, s *scratch) {
	r := opt.Resolution
	nw, nh := r, r
	if effW < effH {
		nh = max(1, int(math.Floor(float64(r)*effH/effW+0.5)))
	} else {
		nw = max(1, int(math.Floor(float64(r)*effW/effH+0.5)))
	}
	s.wx.compute(r, (nw-r)/2, src.w, effW/float64(nw))
	s.wy.compute(r, (nh-r)/2, src.h, effH/float64(nh))

	// Normalisation (v/255 − mean)/std = v·mul + add, folded into the
	// vertical pass.
	var mul, add [3]float32
	for c := range 3 {
		mul[c] = 1 / (255 * opt.Std[c])
		add[c] = -opt.Mean[c] / opt.Std[c]
	}

	// The horizontal pass fills a ring of n filtered source rows (n = the
	// vertical tap count); output rows read consecutive source rows in
	// non-decreasing order, so each source row is filtered once and the
	// intermediate is n rows (8 KB at 224) rather than the whole band.
	wy := &s.wy
	n := wy.n
	rowLen := 3 * r
	s.rows = resize(s.rows, n*rowLen)
	s.ringRow = resize(s.ringRow, n)
	for k := range s.ringRow {
		s.ringRow[k] = -1
	}
	row := func(y int) []float32 {
		slot := y % n
		out := s.rows[slot*rowLen : (slot+1)*rowLen]
		if s.ringRow[slot] != y {
			horizontal(out, src.pix[y*3*src.w:(y+1)*3*src.w], &s.wx)
			s.ringRow[slot] = y
		}
		return out
	}
	s.acc = resize(s.acc, rowLen)
	plane := r * r
	for i := range r {
		y := wy.first[i]
		w := wy.w[i*n : (i+1)*n]
		out := [3][]float32{dst[i*r : (i+1)*r], dst[plane+i*r : plane+(i+1)*r], dst[2*plane+i*r : 2*plane+(i+1)*r]}
		switch n {
		case 2:
			vertical2(out, row(y), row(y+1), w[0], w[1], mul, add)
		case 3:
			vertical3(out, row(y), row(y+1), row(y+2), w[0], w[1], w[2], mul, add)
		default:
			acc := s.acc
			clear(acc)
			for k, wt := range w {
				in := row(y + k)[:len(acc)]
				for j, v := range in {
					acc[j] += wt * v
				}
			}
			vertical2(out, acc, acc, 1, 0, mul, add)
		}
	}
}

// horizontal filters one RGB row: out[3j+c] = Σ_k w[j*n+k]·in[3(first[j]+k)+c].
// Two- and three-tap kernels, the common cases after DCT prescaling, get
// straight-line code.
func horizontal(out []float32, in []byte, t *taps) {
	switch t.n {
	case 2:
		for j := range len(out) / 3 {
			i := 3 * t.first[j]
			p := in[i : i+6 : i+6]
			w := t.w[2*j : 2*j+2 : 2*j+2]
			o := out[3*j : 3*j+3 : 3*j+3]
			o[0] = w[0]*float32(p[0]) + w[1]*float32(p[3])
			o[1] = w[0]*float32(p[1]) + w[1]*float32(p[4])
			o[2] = w[0]*float32(p[2]) + w[1]*float32(p[5])
		}
	case 3:
		for j := range len(out) / 3 {
			i := 3 * t.first[j]
			p := in[i : i+9 : i+9]
			w := t.w[3*j : 3*j+3 : 3*j+3]
			o := out[3*j : 3*j+3 : 3*j+3]
			o[0] = w[0]*float32(p[0]) + w[1]*float32(p[3]) + w[2]*float32(p[6])
			o[1] = w[0]*float32(p[1]) + w[1]*float32(p[4]) + w[2]*float32(p[7])
			o[2] = w[0]*float32(p[2]) + w[1]*float32(p[5]) + w[2]*float32(p[8])
		}
	default:
		n := t.n
		for j := range len(out) / 3 {
			i := 3 * t.first[j]
			p := in[i : i+3*n]
			var a0, a1, a2 float32
			for k, wt := range t.w[j*n : (j+1)*n] {
				q := p[3*k : 3*k+3 : 3*k+3]
				a0 += wt * float32(q[0])
				a1 += wt * float32(q[1])
				a2 += wt * float32(q[2])
			}
			o := out[3*j : 3*j+3 : 3*j+3]
			o[0], o[1], o[2] = a0, a1, a2
		}
	}
}

// vertical2 and vertical3 blend two or three filtered rows (interleaved
// RGB) and write the normalised result into the three output planes.
func vertical2(out [3][]float32, r0, r1 []float32, w0, w1 float32, mul, add [3]float32) {
	d0, d1, d2 := out[0], out[1][:len(out[0])], out[2][:len(out[0])]
	r0 = r0[:3*len(d0)]
	r1 = r1[:3*len(d0)]
	for j := range d0 {
		a, b := r0[3*j:3*j+3:3*j+3], r1[3*j:3*j+3:3*j+3]
		d0[j] = (w0*a[0]+w1*b[0])*mul[0] + add[0]
		d1[j] = (w0*a[1]+w1*b[1])*mul[1] + add[1]
		d2[j] = (w0*a[2]+w1*b[2])*mul[2] + add[2]
	}
}

func vertical3(out [3][]float32, r0, r1, r2 []float32, w0, w1, w2 float32, mul, add [3]float32) {
	d0, d1, d2 := out[0], out[1][:len(out[0])], out[2][:len(out[0])]
	r0 = r0[:3*len(d0)]
	r1 = r1[:3*len(d0)]
	r2 = r2[:3*len(d0)]
	for j := range d0 {
		a, b, c := r0[3*j:3*j+3:3*j+3], r1[3*j:3*j+3:3*j+3], r2[3*j:3*j+3:3*j+3]
		d0[j] = (w0*a[0]+w1*b[0]+w2*c[0])*mul[0] + add[0]
		d1[j] = (w0*a[1]+w1*b[1]+w2*c[1])*mul[1] + add[1]
		d2[j] = (w0*a[2]+w1*b[2]+w2*c[2])*mul[2] + add[2]
	}
}
