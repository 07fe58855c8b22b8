package vision

import (
	"fmt"

	"github.com/mmablate/mmablate/models/engine"
)

// ResizePosEmbed resamples a learned position embedding trained on a
// from×from patch grid to a to×to grid: dst [to², dim] from src [from², dim],
// both row-major over (row, column) of the grid. Each channel is resampled
// bilinearly with align_corners=False, exactly as
// torch.nn.functional.interpolate(mode="bilinear") does on the embedding
// reshaped to (1, dim, from, from), so an encoder trained at one resolution
// can be loaded at another (MM1 raises the resolution this way). With
// from == to it copies. dst must not overlap src. It returns an error, naming the sizes, when src or dst
// has the wrong length.
func ResizePosEmbed[T engine.Float](dst, src []T, from, to, dim int) error {
	if from <= 0 || to <= 0 || dim <= 0 {
		return fmt.Errorf("vision: resize pos_embed: grid %d→%d, width %d must be positive", from, to, dim)
	}
	if len(src) != from*from*dim {
		return fmt.Errorf("vision: resize pos_embed: source has %d values, want %d×%d×%d = %d",
			len(src), from, from, dim, from*from*dim)
	}
	if len(dst) != to*to*dim {
		return fmt.Errorf("vision: resize pos_embed: destination has %d values, want %d×%d×%d = %d",
			len(dst), to, to, dim, to*to*dim)
	}
	if from == to {
		copy(dst, src)
		return nil
	}
	taps := bilinearTaps(from, to) // square grids: rows and columns sample alike
	for oy, ty := range taps {
		for ox, tx := range taps {
			out := dst[(oy*to+ox)*dim:][:dim]
			r0, r1 := src[ty.i0*from*dim:], src[ty.i1*from*dim:]
			p00, p01 := r0[tx.i0*dim:][:dim], r0[tx.i1*dim:][:dim]
			p10, p11 := r1[tx.i0*dim:][:dim], r1[tx.i1*dim:][:dim]
			w00, w01 := T(ty.w0*tx.w0), T(ty.w0*tx.w1)
			w10, w11 := T(ty.w1*tx.w0), T(ty.w1*tx.w1)
			for c := range out {
				out[c] = w00*p00[c] + w01*p01[c] + w10*p10[c] + w11*p11[c]
			}
		}
	}
	return nil
}

// tap is one output coordinate's two source indices and their weights.
type tap struct {
	i0, i1 int
	w0, w1 float64
}

// bilinearTaps follows PyTorch's area_pixel_compute_source_index for
// align_corners=False: the source coordinate of output i is
// (i+0.5)·in/out − 0.5, clamped below at 0; the upper neighbour is clamped to
// the last index.
func bilinearTaps(in, out int) []tap {
	scale := float64(in) / float64(out)
	taps := make([]tap, out)
	for i := range taps {
		src := max(scale*(float64(i)+0.5)-0.5, 0)
		i0 := int(src)
		i1 := min(i0+1, in-1)
		l := src - float64(i0)
		taps[i] = tap{i0: i0, i1: i1, w0: 1 - l, w1: l}
	}
	return taps
}
