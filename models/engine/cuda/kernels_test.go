package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestColumnSums: colsum, colsum_h and the dw and db sums of
// layernorm_bwd_h against float64 sums on the host, with widths that are
// and are not a multiple of 4, matrices 4 bytes off a 16-byte boundary,
// and row counts that leave a short last block. (A colsum with 16-byte
// loads, four columns a thread and one atomic a column a block measured
// no faster on an H200: the ViT block's bias gradients 0.337 → 0.329 ms
// a step; BenchmarkImageParts.)
func TestColumnSums(t *testing.T) {
	needGPU(t)
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.enter()()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ rows, cols, off int }{{3136, 768, 0}, {100, 770, 0}, {37, 12, 1}, {2304, 1024, 0}, {5, 150528, 0}} {
		t.Run(fmt.Sprintf("%dx%d_off%d", c.rows, c.cols, c.off), func(t *testing.T) {
			defer d.enter()()
			rows, cols, size := c.rows, c.cols, c.rows*c.cols
			vals := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = rng.Float32()*2 - 1
				}
				return v
			}
			// bf16-exact values, so the fp32 and the bf16 sources hold the same numbers
			src := vals(size + c.off)
			for i := range src {
				src[i] = math.Float32frombits(math.Float32bits(src[i]) &^ 0xffff)
			}
			x, mean, rstd := vals(size+c.off), vals(rows), vals(rows)
			bufs := make([]Buf, 4)
			for i, v := range [][]float32{src, x, mean, rstd} {
				if bufs[i], err = d.alloc(len(v)); err != nil {
					t.Fatal(err)
				}
				if err := upload(d, bufs[i], v); err != nil {
					t.Fatal(err)
				}
			}
			gh, err := d.alloc((size + c.off + 1) / 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.castBF16(gh, bufs[0], size+c.off); err != nil {
				t.Fatal(err)
			}
			sums, err := d.alloc(4 * cols)
			if err != nil {
				t.Fatal(err)
			}
			g, xb := bufs[0].Off(c.off), bufs[1].Off(c.off)
			ghOff := Buf{P: half(gh, c.off), N: size}
			if err := errors.Join(d.colsumAdd(sums, g, rows, cols), d.colsumAddH(sums.Off(cols), ghOff, rows, cols)); err != nil {
				t.Fatal(err)
			}
			norm := cols <= 32*lnSlots // the norm's rows fit its registers
			if norm {
				dx, err := d.alloc(size) // the input gradient, not checked here
				if err != nil {
					t.Fatal(err)
				}
				if err := d.layerNormBackwardH(dx, Buf{}, sums.Off(2*cols), sums.Off(3*cols), Buf{}, ghOff, xb, bufs[1], bufs[2], bufs[3], rows, cols); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]float32, 4*cols)
			if err := download(d, got, sums); err != nil {
				t.Fatal(err)
			}
			want := make([]float32, 4*cols)
			for j := range cols {
				var s, sw float64
				for r := range rows {
					gv := float64(src[c.off+r*cols+j])
					s += gv
					sw += gv * (float64(x[c.off+r*cols+j]) - float64(mean[r])) * float64(rstd[r])
				}
				want[j], want[cols+j], want[2*cols+j], want[3*cols+j] = float32(s), float32(s), float32(sw), float32(s)
			}
			for i, name := range []string{"colsum", "colsum_h", "layernorm_bwd_h dw", "layernorm_bwd_h db"} {
				if i >= 2 && !norm {
					break
				}
				if r := relDiffFloor(got[i*cols:(i+1)*cols], want[i*cols:(i+1)*cols], 1); r > 1e-5 || math.IsNaN(r) {
					t.Errorf("%s: relative difference %.3g (bound 1e-5)", name, r)
				}
			}
		})
	}
}
